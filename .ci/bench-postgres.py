#!/usr/bin/env python3
"""The PostgreSQL store's figures, side by side in one run (interleaved
where two things are compared, so machine noise hits both alike):

1. a valid-token `rctoken token` on the PostgreSQL store against
   `psql -XAtc 'select ...'` of the same row from the same server;
2. 64 processes on 4 hosts (network namespaces of their own, `unshare
   --net`) calling `rctoken token` on one expired token, against one
   process doing the same refresh, with a 100 ms token endpoint (a
   `--refresh-with` refresher that sleeps 100 ms); each round also checks
   that the endpoint was asked once;
3. saves (`rctoken import`) of distinct profiles: 4 hosts saving at once
   against 1 host alone, in saves per second.

Prints Markdown tables of medians and ratios. Runs as the user that owns
the server (see .ci/bench-postgres.sh); deletes its rows.

Usage: bench-postgres.py RCTOKEN_BIN [ROUNDS]   (RCTOKEN_TEST_DATABASE_URL set)
"""
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def token(owner, access, expires_in=3600):
    # A realistic RingCentral token: 1.3 KB access and refresh tokens, 3 KB id_token.
    fill = lambda p, n: (p + "-" + owner + "-" + "x" * n)[:n]
    return json.dumps({
        "access_token": fill(access, 1300),
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": fill("R", 1300),
        "refresh_token_expires_in": 604800,
        "id_token": fill("I", 3000),
        "scope": "ReadAccounts",
        "owner_id": owner,
    })


def run(cmd, env, stdin=None, check=True):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if check and p.returncode != 0:
        sys.exit(f"{cmd}: exit {p.returncode}: {p.stderr.decode()}")
    return dt, p.stdout


def main():
    binary = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    url = os.environ["RCTOKEN_TEST_DATABASE_URL"]
    tmp = tempfile.mkdtemp(prefix="rctoken-bench-pg-")
    app = f"bench-pg-{os.getpid()}"
    key = f"{tmp}/key"
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": tmp, "RCTOKEN_APP": app,
           "RCTOKEN_DATABASE_URL": url, "RCTOKEN_KEY_FILE": key}
    host = ["unshare", "--user", "--map-current-user", "--net", "--"]
    # The psql binary itself: Debian's /usr/bin/psql is a Perl wrapper
    # that would add its own start-up to the floor.
    pgbin = os.environ.get("RCTOKEN_TEST_PGBIN", "")
    psql = f"{pgbin}/psql" if pgbin and os.path.exists(f"{pgbin}/psql") else "psql"
    try:
        # 1. A valid token, read.
        run([binary, "import"], env, token("1001", "A").encode())
        sql = (f"SELECT encode(envelope, 'base64') FROM rctoken_profiles "
               f"WHERE app = '{app}' AND profile = '1001'")
        cases = {
            "rctoken token (PostgreSQL store)": lambda: run([binary, "token"], env),
            "psql -XAtc 'select …' (one row, the floor)": lambda: run([psql, url, "-XAtc", sql], env),
        }
        times = {n: [] for n in cases}
        for _ in range(rounds):
            for n, f in cases.items():
                times[n].append(f()[0])
        med = {n: statistics.median(v) for n, v in times.items()}
        floor = med["psql -XAtc 'select …' (one row, the floor)"]
        print(f"\n#### A valid token, {rounds} interleaved rounds\n")
        print("| command | median | ratio to psql |")
        print("|---|---:|---:|")
        for n, m in med.items():
            print(f"| {n} | {m * 1000:.2f} ms | {m / floor:.2f}x |")

        # 2. One expired token, 64 processes on 4 hosts against 1.
        new = f"{tmp}/new.json"
        with open(new, "w") as f:
            f.write(token("2001", "N"))
        count = f"{tmp}/count"
        refresher = f"echo x >> {count}; sleep 0.1; cat {new}"
        k = max(3, rounds // 20)
        one, many = [], []
        for _ in range(k):
            for mode in ("one", "many"):
                run([binary, "import"], env, token("2001", "OLD", expires_in=0).encode())
                open(count, "w").close()
                cmd = [binary, "token", "2001", "--refresh-with", refresher]
                t = time.perf_counter()
                if mode == "one":
                    run(cmd, env)
                else:
                    procs = [subprocess.Popen(host + cmd, env=dict(env, HOME=f"{tmp}/h{i % 4}"),
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                             for i in range(64)]
                    outs = [p.communicate() for p in procs]
                    if any(p.returncode for p in procs):
                        sys.exit(f"a process failed: {[o[1] for o in outs if o[1]][:1]}")
                    if len({o[0] for o in outs}) != 1:
                        sys.exit("the 64 processes printed different tokens")
                (one if mode == "one" else many).append(time.perf_counter() - t)
                asked = len(open(count).read().split())
                if asked != 1:
                    sys.exit(f"the endpoint was asked {asked} times")
        m1, m64 = statistics.median(one), statistics.median(many)
        print(f"\n#### One expired token, 100 ms endpoint, {k} rounds each\n")
        print("| who refreshes | median wall time | ratio | endpoint calls |")
        print("|---|---:|---:|---:|")
        print(f"| 1 process | {m1 * 1000:.0f} ms | 1.00x | 1 |")
        print(f"| 64 processes on 4 hosts | {m64 * 1000:.0f} ms | {m64 / m1:.2f}x | 1 |")

        # 3. Saves of distinct profiles: 4 hosts at once against 1.
        n = max(20, rounds)
        def saves(hosts, tag):
            scripts = []
            for h in range(hosts):
                lines = []
                for i in range(n // hosts):
                    tf = f"{tmp}/t-{tag}-{h}-{i}.json"
                    with open(tf, "w") as f:
                        f.write(token(f"{tag}{h}{i:05d}", "S"))
                    lines.append(f"{binary} import --no-switch {tf}\n")
                script = f"{tmp}/saves-{tag}-{h}.sh"
                with open(script, "w") as f:
                    f.write("".join(lines))
                scripts.append(script)
            t = time.perf_counter()
            procs = [subprocess.Popen(host + ["sh", "-e", s], env=dict(env, HOME=f"{tmp}/h{h}"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for h, s in enumerate(scripts)]
            for p in procs:
                _, err = p.communicate()
                if p.returncode:
                    sys.exit(f"saves failed: {err.decode()}")
            return (n // hosts) * hosts / (time.perf_counter() - t)
        r1, r4 = [], []
        for j in range(3):
            r1.append(saves(1, f"9{j}1"))
            r4.append(saves(4, f"9{j}4"))
        s1, s4 = statistics.median(r1), statistics.median(r4)
        print(f"\n#### Saves of distinct profiles, {n} per run, 3 runs each\n")
        print("| hosts | median saves/s | ratio |")
        print("|---|---:|---:|")
        print(f"| 1 | {s1:.0f} | 1.00x |")
        print(f"| 4 at once | {s4:.0f} | {s4 / s1:.2f}x |")
    finally:
        run([binary, "logout", "--all"], env, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
