#!/usr/bin/env python3
"""What sealing costs a reader: `rctoken token` on the sealed store (key in
keyutils) against `rctoken token` on plain keyutils and against
`keyctl pipe` of one key, side by side in one run (interleaved, so machine
noise hits all alike); and `rctoken list` at 1,000 profiles, sealed against
plain keyutils' metadata (list never reads secrets). Prints Markdown tables
of medians and ratios. Cleans up its stores and keys.

Usage: bench-sealed.py RCTOKEN_BIN [ROUNDS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def token(owner, expires_in=3600):
    # A realistic RingCentral token: 1.3 KB access and refresh tokens, 3 KB id_token.
    fill = lambda n: (owner + "-" + "x" * n)[:n]
    return json.dumps({
        "access_token": "A" + fill(1300),
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": "R" + fill(1300),
        "refresh_token_expires_in": 604800,
        "id_token": "I" + fill(3000),
        "scope": "ReadAccounts",
        "owner_id": owner,
    })


def run(cmd, env, stdin=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{cmd}: exit {p.returncode}: {p.stderr.decode()}")
    return dt, p.stdout


def main():
    binary = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    tmp = tempfile.mkdtemp(prefix="rctoken-bench-sealed-")
    app = f"bench-sealed-{os.getpid()}"
    base = dict(os.environ, RCTOKEN_APP=app)
    base.pop("DBUS_SESSION_BUS_ADDRESS", None)
    base.pop("RCTOKEN_KEY_FILE", None)
    envs = {
        "keyutils": dict(base, RCTOKEN_BACKEND="keyutils", RCTOKEN_DIR=f"{tmp}/plain"),
        "sealed": dict(base, RCTOKEN_BACKEND="sealed", RCTOKEN_DIR=f"{tmp}/sealed"),
    }
    try:
        for env in envs.values():
            run([binary, "import"], env, token("256440016").encode())
        # The plain store's item 0 (the same token), for `keyctl pipe`.
        plain_item = json.load(open(f"{tmp}/plain/profiles/256440016.json"))["secret"]
        desc = f"rctoken:{app}:256440016.{plain_item['generation']}.0"
        key_id = subprocess.run(["keyctl", "search", "@u", "user", desc],
                                stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        cases = {
            "rctoken token (plain keyutils)": lambda: run([binary, "token"], envs["keyutils"]),
            "rctoken token (sealed, key in keyutils)": lambda: run([binary, "token"], envs["sealed"]),
            "keyctl pipe (one key, the floor)": lambda: run(["keyctl", "pipe", key_id], base),
        }
        times = {name: [] for name in cases}
        for _ in range(rounds):
            for name, f in cases.items():
                times[name].append(f()[0])
        med = {n: statistics.median(v) for n, v in times.items()}
        print(f"\n#### `rctoken token`, {rounds} interleaved rounds\n")
        print("| command | median | ratio to plain keyutils |")
        print("|---|---:|---:|")
        plain = med["rctoken token (plain keyutils)"]
        for n, m in med.items():
            print(f"| {n} | {m * 1000:.2f} ms | {m / plain:.2f}x |")
        floor = med["keyctl pipe (one key, the floor)"]
        sealed = med["rctoken token (sealed, key in keyutils)"]
        print(f"\nsealed / plain keyutils: {sealed / plain:.3f}x; "
              f"sealed / keyctl pipe: {sealed / floor:.2f}x")

        # list at 1,000 profiles: metadata only, the same code for both.
        for env in envs.values():
            for i in range(999):
                run([binary, "import", "--no-switch"], env, token(str(300000 + i)).encode())
        lt = {n: [] for n in envs}
        for _ in range(max(10, rounds // 10)):
            for n, env in envs.items():
                lt[n].append(run([binary, "list"], env)[0])
        lm = {n: statistics.median(v) for n, v in lt.items()}
        print("\n#### `rctoken list` at 1,000 profiles\n")
        print("| store | median | ratio |")
        print("|---|---:|---:|")
        for n, m in lm.items():
            print(f"| {n} | {m * 1000:.1f} ms | {m / lm['keyutils']:.2f}x |")
    finally:
        for env in envs.values():
            subprocess.run([binary, "logout", "--all"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The sealed store's key: logout leaves it (it opens nothing alone).
        try:
            sid = open(f"{tmp}/sealed/sealed/.store-id").read().strip()
            kid = subprocess.run(["keyctl", "search", "@u", "user", f"rctoken-key:{app}:{sid}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode().strip()
            if kid:
                subprocess.run(["keyctl", "unlink", kid, "@u"], stdout=subprocess.DEVNULL)
                subprocess.run(["keyctl", "invalidate", kid], stdout=subprocess.DEVNULL)
        except OSError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
