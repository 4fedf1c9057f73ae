#!/usr/bin/env python3
"""What talking to RingCentral costs, against the fake platform
(tests/support/fake_ringcentral.py on 127.0.0.1), side by side in one run
(interleaved, so machine noise hits all alike):

A. A valid-token `rctoken token` of this build against the same command of
   a build without the RingCentral client (OLD_BIN, e.g. the commit before
   it), on the same store (made by OLD_BIN, so both read it).
B. 16 processes auto-refreshing one expired token against a server with
   100 ms latency, against one process refreshing it.
C. `rctoken api GET` against `curl` with the token passed in a header file.

Prints Markdown tables of medians and ratios. Cleans up its stores and keys.

Usage: bench-oauth.py NEW_BIN OLD_BIN [ROUNDS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "tests", "support", "fake_ringcentral.py")
CLIENT_ID, SECRET, JWT = "bench-client", "bench-secret", "bench-jwt"
PATH = "/restapi/v1.0/account/~/extension/~"


def timed(cmd, env, stdin=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{cmd}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return dt, p.stdout


def http(port, method, path, body=b""):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return json.loads(data or b"{}")


def ms(s):
    return f"{s * 1000:.2f} ms"


def main():
    new, old = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    tmp = tempfile.mkdtemp(prefix="rctoken-bench-oauth-")
    srv = subprocess.Popen(
        [sys.executable, SERVER, f"client_id={CLIENT_ID}", f"client_secret={SECRET}", f"jwt={JWT}"],
        stdout=subprocess.PIPE,
    )
    port = int(srv.stdout.readline().split()[1])
    url = f"http://127.0.0.1:{port}"
    apps = []
    try:
        with open(os.path.join(tmp, "jwt"), "w") as f:
            f.write(JWT)
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write(SECRET)
        os.chmod(os.path.join(tmp, "secret"), 0o600)

        def env_for(app):
            apps.append(app)
            e = dict(os.environ)
            e.update(RCTOKEN_APP=app, RCTOKEN_DIR=os.path.join(tmp, app), RCTOKEN_BACKEND="sealed")
            for k in ("RCTOKEN_KEY_FILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
                e.pop(k, None)
            return e

        def login(env):
            timed([new, "login", "--jwt", os.path.join(tmp, "jwt"), "--client-id", CLIENT_ID,
                   "--client-secret-file", os.path.join(tmp, "secret"), "--server", url], env)

        # A. Valid-token `token`: this build against one without the client.
        env = env_for(f"bench-oauth-a-{os.getpid()}")
        tok = json.dumps({"access_token": "A" * 1300, "token_type": "bearer", "expires_in": 86400,
                          "refresh_token": "R" * 1300, "refresh_token_expires_in": 604800,
                          "id_token": "I" * 3000, "scope": "ReadAccounts", "owner_id": "77"}).encode()
        timed([old, "import"], env, stdin=tok)
        a = {"new": [], "old": []}
        for _ in range(rounds):
            for name, binary in (("new", new), ("old", old)):
                a[name].append(timed([binary, "token"], env)[0])
        a_new, a_old = statistics.median(a["new"]), statistics.median(a["old"])

        # B. 16 processes on one expired token, 100 ms server latency.
        env = env_for(f"bench-oauth-b-{os.getpid()}")
        http(port, "POST", "/_control", json.dumps({"latency_ms": 100}).encode())
        b1, b16 = [], []
        b_rounds = max(3, rounds // 6)
        for _ in range(b_rounds):
            for n, out in ((1, b1), (16, b16)):
                http(port, "POST", "/_control", json.dumps({"expires_in": 1}).encode())
                login(env)
                time.sleep(1.1)
                http(port, "POST", "/_control", json.dumps({"expires_in": 3600}).encode())
                before = http(port, "GET", "/_stats")["refresh"]
                t = time.perf_counter()
                procs = [subprocess.Popen([new, "token"], env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE) for _ in range(n)]
                outs = {p.communicate()[0] for p in procs}
                out.append(time.perf_counter() - t)
                if any(p.returncode for p in procs) or len(outs) != 1:
                    sys.exit(f"B: {n} processes did not all print one token")
                if http(port, "GET", "/_stats")["refresh"] - before != 1:
                    sys.exit(f"B: {n} processes made more than one refresh")
        http(port, "POST", "/_control", json.dumps({"latency_ms": 0}).encode())
        b_1, b_16 = statistics.median(b1), statistics.median(b16)

        # C. `rctoken api GET` against curl with the token in a header file.
        env = env_for(f"bench-oauth-c-{os.getpid()}")
        login(env)
        _, at = timed([new, "token"], env)
        hdr = os.path.join(tmp, "header")
        with open(hdr, "w") as f:
            f.write("Authorization: Bearer " + at.decode().strip() + "\n")
        os.chmod(hdr, 0o600)
        c = {"api": [], "curl": []}
        for _ in range(rounds):
            c["api"].append(timed([new, "api", PATH], env)[0])
            c["curl"].append(timed(["curl", "-sf", "-H", "@" + hdr, url + PATH], env)[0])
        c_api, c_curl = statistics.median(c["api"]), statistics.median(c["curl"])

        print(f"#### RingCentral client ({rounds} rounds; B: {b_rounds} rounds of each)\n")
        print("| what | median | against | median | ratio | target |")
        print("|---|---:|---|---:|---:|---|")
        print(f"| A. `rctoken token`, valid token, this build | {ms(a_new)} | the build before the client | {ms(a_old)} | {a_new / a_old:.2f}× | ≤ 1.05× |")
        print(f"| B. 16 processes, expired token, 100 ms server | {ms(b_16)} | 1 process | {ms(b_1)} | {b_16 / b_1:.2f}× | ≤ 1.5× |")
        print(f"| C. `rctoken api GET` | {ms(c_api)} | `curl -H @file` | {ms(c_curl)} | {c_api / c_curl:.2f}× | ≤ 1.2× |")
        print(f"\nRESULT A {a_new / a_old:.3f} B {b_16 / b_1:.3f} C {c_api / c_curl:.3f}")
    finally:
        for app in apps:
            e = dict(os.environ, RCTOKEN_APP=app, RCTOKEN_DIR=os.path.join(tmp, app), RCTOKEN_BACKEND="sealed")
            subprocess.run([new, "logout", "--all", "--no-revoke"], env=e, capture_output=True)
        srv.kill()
        srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
