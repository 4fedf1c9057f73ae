#!/usr/bin/env python3
"""What a refresh costs: `rctoken token --refresh-with CMD` on an expired
token, for two builds side by side in one run (interleaved, so machine noise
hits both alike). Prints a Markdown table of medians and the ratio.

Usage (inside .ci/with-keyring.sh, see .ci/bench-refresh.sh):
    bench-refresh.py NEW_BIN OLD_BIN [ROUNDS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def token(tag, expires_in):
    # A realistic RingCentral token: 1.3 KB access and refresh tokens, 3 KB id_token.
    fill = lambda n: (tag + "-" + "x" * n)[:n]
    return json.dumps({
        "access_token": fill(1300),
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": "R" + fill(1300),
        "refresh_token_expires_in": 604800,
        "id_token": "I" + fill(3000),
        "scope": "ReadAccounts",
        "owner_id": "256440016",
    })


def run(binary, app, backend, store, args, stdin=None):
    cmd = [binary, "--app", app, "--backend", backend, "--dir", store] + args
    return subprocess.run(cmd, input=stdin, capture_output=True, check=False)


def one(binary, backend, work, refresher, n):
    app = f"bench-refresh-{os.getpid()}-{n}"
    store = os.path.join(work, f"store-{n}")
    out = run(binary, app, backend, store, ["import"], token("old", 0).encode())
    assert out.returncode == 0, out.stderr
    start = time.perf_counter()
    out = run(binary, app, backend, store, ["token", "--refresh-with", refresher])
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"new-"), "the refreshed token is printed"
    run(binary, app, backend, store, ["logout", "--all"])
    shutil.rmtree(store, ignore_errors=True)
    return elapsed


def main():
    new_bin, old_bin = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    work = tempfile.mkdtemp(prefix="rctoken-bench-refresh.")
    try:
        reply = os.path.join(work, "new.json")
        with open(reply, "w") as f:
            f.write(token("new", 3600))
        refresher = f"cat >/dev/null; cat '{reply}'"
        print("| backend | before (median) | now, with reservation (median) | now / before |")
        print("|---|---:|---:|---:|")
        for backend in ["keyutils", "secret-service"]:
            times = {new_bin: [], old_bin: []}
            for n in range(rounds):
                # Alternate which build goes first.
                order = [new_bin, old_bin] if n % 2 == 0 else [old_bin, new_bin]
                for b in order:
                    times[b].append(one(b, backend, work, refresher, f"{n}-{len(times[b])}-{b == new_bin}"))
            new_ms = statistics.median(times[new_bin]) * 1000
            old_ms = statistics.median(times[old_bin]) * 1000
            print(f"| {backend} | {old_ms:.2f} ms | {new_ms:.2f} ms | {new_ms / old_ms:.2f}x |")
        print(f"\n{rounds} rounds per build and backend, interleaved.")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
