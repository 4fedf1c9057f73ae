#!/usr/bin/env python3
"""Read `cargo test --no-run --message-format=json...` on stdin; write
RUN (one "KIND NAME PATH" line per test binary, in the order `cargo test`
runs them: lib, bins, then integration tests by name) and ALL (every
executable cargo built, test binaries and the ones tests run, such as the
CLI behind CARGO_BIN_EXE_rctoken, one path per line).

Usage: python3 .ci/lib/test-binaries.py RUN ALL
"""
import json
import sys

ORDER = {"lib": 0, "bin": 1, "test": 2}


def main(run_path, all_path):
    tests, everything = [], []
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue  # cargo prints only JSON on stdout, but be lenient
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        exe = msg["executable"]
        everything.append(exe)
        if not msg["profile"]["test"]:
            continue  # built for tests to run (the CLI), not a test harness
        kinds = msg["target"]["kind"]
        kind = next((k for k in ("lib", "bin", "test") if k in kinds), kinds[0])
        tests.append((ORDER.get(kind, 3), kind, msg["target"]["name"], exe))
    if not tests:
        sys.exit("ci: cargo reported no test binaries")
    tests.sort()
    with open(run_path, "w") as f:
        for _, kind, name, exe in tests:
            f.write(f"{kind} {name} {exe}\n")
    with open(all_path, "w") as f:
        f.write("".join(e + "\n" for e in sorted(set(everything))))
    print(f"ci: {len(tests)} test binaries", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
