#!/usr/bin/env python3
"""A fake RingCentral platform for rctoken's tests: loopback only, Python
stdlib only, faithful to the rules rctoken relies on.

- POST /restapi/oauth/token: the JWT grant, the refresh grant and the
  authorization code grant (PKCE S256 checked). Client authentication as
  RingCentral does it: HTTP Basic with the client secret, or, for a public
  app (started with --public), no Authorization header and client_id in the
  body. Refresh tokens are single use: the old one returns the *same* new
  pair until the new access token is first used, then it is dead
  (invalid_grant, OAU-213).
- POST /restapi/oauth/revoke: ends the whole session (200 even when there
  was nothing to revoke).
- GET  /restapi/oauth/authorize: redirects to redirect_uri with code and
  state (the test plays the browser).
- Any other /restapi/ path: demands the session's current access token
  (401 OAU-129 otherwise) and answers a small JSON.
- GET /_stats: request counts, as JSON. POST /_control (JSON): change
  behaviour: {"expires_in": N} for tokens issued from now on,
  {"fail": [[status, retry_after_or_null], ...]} for the next token
  requests, {"latency_ms": N}, {"invalidate_access": true} (the current
  access token now gets 401, the refresh token still works),
  {"kill_sessions": true} (every token is dead).

Prints "PORT <n>" on stdout once it listens, then serves until killed.
"""

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
CLIENT_ID = ARGS.get("client_id", "test-client")
CLIENT_SECRET = ARGS.get("client_secret", "test-client-secret")
PUBLIC = "--public" in sys.argv
JWT = ARGS.get("jwt", "test-jwt")
OWNER = ARGS.get("owner", "1000001")
# Token prefixes (the allocator test issues its secret markers).
ACCESS_PREFIX = ARGS.get("access_prefix", "AT")
REFRESH_PREFIX = ARGS.get("refresh_prefix", "RT")

LOCK = threading.RLock()
STATE = {
    "expires_in": 3600,
    "fail": [],
    "latency_ms": 0,
    "sessions": {},  # session id -> {"access", "refresh", "used", "prev_refresh", "dead"}
    "codes": {},  # code -> (challenge, redirect_uri)
    "counts": {
        "jwt": 0,
        "refresh": 0,
        "refresh_with_endpoint": 0,
        "refresh_reused": 0,
        "code": 0,
        "token_errors": 0,
        "revoke": 0,
        "api": 0,
        "api_401": 0,
    },
}


def new_pair(sid):
    at = ACCESS_PREFIX + "-" + secrets.token_urlsafe(24)
    rt = REFRESH_PREFIX + "-" + secrets.token_urlsafe(24)
    return {
        "access_token": at,
        "token_type": "bearer",
        "expires_in": STATE["expires_in"],
        "refresh_token": rt,
        "refresh_token_expires_in": 604800,
        "scope": "ReadAccounts",
        "owner_id": OWNER,
        "endpoint_id": "ep-" + sid[:6],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def oauth_error(self, status, error, code, message, headers=None):
        with LOCK:
            STATE["counts"]["token_errors"] += 1
        self.reply(
            status,
            {
                "error": error,
                "errors": [{"errorCode": code, "message": message}],
                "error_description": message,
            },
            headers,
        )

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def client_ok(self, form):
        auth = self.headers.get("Authorization")
        if PUBLIC:
            return auth is None and form.get("client_id") == CLIENT_ID
        if not auth or not auth.startswith("Basic "):
            return False
        try:
            pair = base64.b64decode(auth[6:]).decode()
        except Exception:
            return False
        return pair == CLIENT_ID + ":" + CLIENT_SECRET

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/_stats":
            with LOCK:
                return self.reply(200, STATE["counts"])
        if url.path == "/restapi/oauth/authorize":
            q = dict(urllib.parse.parse_qsl(url.query))
            if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256":
                return self.reply(400, {"error": "invalid_request"})
            code = "CODE-" + secrets.token_urlsafe(12)
            with LOCK:
                STATE["codes"][code] = (q.get("code_challenge"), q.get("redirect_uri"))
            target = q["redirect_uri"] + "?" + urllib.parse.urlencode(
                {"code": code, "state": q.get("state", "")}
            )
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        return self.api()

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        raw = self.body()
        if url.path == "/_control":
            ctl = json.loads(raw or b"{}")
            with LOCK:
                for k in ("expires_in", "latency_ms"):
                    if k in ctl:
                        STATE[k] = ctl[k]
                if "fail" in ctl:
                    STATE["fail"] = list(ctl["fail"])
                for s in STATE["sessions"].values():
                    if ctl.get("invalidate_access"):
                        s["access_dead"] = True
                    if ctl.get("kill_sessions"):
                        s["dead"] = True
            return self.reply(200, {"ok": True})
        if url.path == "/restapi/oauth/token":
            return self.token(dict(urllib.parse.parse_qsl(raw.decode())))
        if url.path == "/restapi/oauth/revoke":
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            if not self.client_ok(form):
                return self.oauth_error(401, "invalid_client", "OAU-153", "Invalid client")
            with LOCK:
                STATE["counts"]["revoke"] += 1
                for s in STATE["sessions"].values():
                    if form.get("token") in (s["access"], s["refresh"]):
                        s["dead"] = True
            return self.reply(200, b"")
        return self.api()

    def token(self, form):
        time.sleep(STATE["latency_ms"] / 1000.0)
        with LOCK:
            fail = STATE["fail"].pop(0) if STATE["fail"] else None
        if fail:
            status, retry_after = fail
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            if status == 429:
                return self.oauth_error(429, "rate_limited", "CMN-301", "Request rate exceeded", headers)
            return self.oauth_error(status, "server_error", "CMN-500", "Internal error", headers)
        if not self.client_ok(form):
            return self.oauth_error(401, "invalid_client", "OAU-153", "Invalid client")
        grant = form.get("grant_type")
        with LOCK:
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                if form.get("assertion") != JWT:
                    return self.oauth_error(400, "invalid_grant", "OAU-140", "Invalid JWT")
                STATE["counts"]["jwt"] += 1
                return self.issue_new_session()
            if grant == "authorization_code":
                entry = STATE["codes"].pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if entry is None or entry[0] != challenge or entry[1] != form.get("redirect_uri"):
                    return self.oauth_error(400, "invalid_grant", "OAU-109", "Invalid authorization code")
                STATE["counts"]["code"] += 1
                return self.issue_new_session()
            if grant == "refresh_token":
                rt = form.get("refresh_token")
                for s in STATE["sessions"].values():
                    if s["dead"]:
                        continue
                    if rt == s["refresh"]:
                        STATE["counts"]["refresh"] += 1
                        if form.get("endpoint_id") == s["pair"]["endpoint_id"]:
                            STATE["counts"]["refresh_with_endpoint"] += 1
                        s["prev_refresh"] = rt
                        s["pair"] = new_pair(s["id"])
                        s["access"], s["refresh"] = s["pair"]["access_token"], s["pair"]["refresh_token"]
                        s["used"] = False
                        s["access_dead"] = False
                        return self.reply(200, s["pair"])
                    if rt == s.get("prev_refresh") and not s["used"]:
                        # The grace window: the same new pair again.
                        STATE["counts"]["refresh_reused"] += 1
                        return self.reply(200, s["pair"])
                return self.oauth_error(400, "invalid_grant", "OAU-213", "Token not found")
        return self.oauth_error(400, "unsupported_grant_type", "OAU-250", "Unsupported grant type")

    def issue_new_session(self):
        sid = secrets.token_hex(8)
        pair = new_pair(sid)
        STATE["sessions"][sid] = {
            "id": sid,
            "pair": pair,
            "access": pair["access_token"],
            "refresh": pair["refresh_token"],
            "used": False,
            "dead": False,
            "access_dead": False,
        }
        return self.reply(200, pair)

    def api(self):
        auth = self.headers.get("Authorization", "")
        # The scheme is case-insensitive (the SDKs send their token_type, "bearer").
        token = auth[7:] if auth[:7].lower() == "bearer " else None
        with LOCK:
            STATE["counts"]["api"] += 1
            for s in STATE["sessions"].values():
                if token and token == s["access"] and not s["dead"] and not s["access_dead"]:
                    s["used"] = True
                    return self.reply(200, {"uri": self.path, "id": OWNER, "method": self.command})
            STATE["counts"]["api_401"] += 1
        return self.reply(401, {"errorCode": "OAU-129", "message": "Access token corrupted"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
