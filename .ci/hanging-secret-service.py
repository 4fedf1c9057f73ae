#!/usr/bin/env python3
"""Fake Secret Service that never answers: for "keychain call hangs" tests.

Connects to the session bus ($DBUS_SESSION_BUS_ADDRESS), takes the name
org.freedesktop.secrets (or --name NAME), prints "READY" on its own line on
stdout, then reads and silently drops every message forever: no method call
ever gets a reply or an error, so clients block until their own timeout.

Zero dependencies: a few dozen lines of raw D-Bus wire protocol over a Unix
socket, Python 3 standard library only (apt: python3).

Exit codes: 0 when the bus goes away, 1 when the name is already owned or
the bus is unreachable. Stop it with SIGTERM/SIGKILL.

Usage:
    DBUS_SESSION_BUS_ADDRESS=unix:path=... .ci/hanging-secret-service.py
    # wait for the line "READY" on stdout before calling the service

From a Rust test (needs no gnome-keyring on that bus):
  1. spawn `dbus-daemon --session --nofork --print-address=1`, stdout piped;
     its first stdout line is the bus address;
  2. spawn this script with DBUS_SESSION_BUS_ADDRESS=<address>, stdout piped;
     read lines until "READY" (the name is owned by then, so the client can't
     trigger D-Bus activation of the real gnome-keyring);
  3. point the client at <address>, expect it to time out;
  4. kill both children (this script also exits 0 when the bus goes away).
For comparison, without their own timeout `secret-tool` gives up after ~50 s
and `dbus-send` after 25 s (libdbus/GDBus default reply timeouts).
"""
import os
import socket
import struct
import sys
import urllib.parse


def connect(address):
    """Connect to the first usable unix: address of a D-Bus address string."""
    for addr in address.split(";"):
        kind, _, params = addr.partition(":")
        if kind != "unix":
            continue
        kv = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if "path" in kv:
            target = unquote(kv["path"])
        elif "abstract" in kv:
            target = "\0" + unquote(kv["abstract"])
        else:
            continue
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(target)
        return s
    raise OSError("no usable unix: address in %r" % address)


def unquote(v):
    # D-Bus addresses escape bytes as %XX.
    return urllib.parse.unquote(v)


def pad(buf, n):
    return buf + b"\0" * (-len(buf) % n)


def method_call(serial, dest, path, iface, member, sig="", body=b""):
    """Marshal a little-endian METHOD_CALL message."""
    fields = b""
    items = [(1, "o", path), (2, "s", iface), (3, "s", member), (6, "s", dest)]
    if sig:
        items.append((8, "g", sig))
    for code, t, val in items:
        fields = pad(fields, 8)  # struct alignment; array starts at offset 16
        fields += struct.pack("<B", code) + b"\x01" + t.encode() + b"\0"
        v = val.encode()
        if t == "g":
            fields += struct.pack("<B", len(v)) + v + b"\0"
        else:
            fields = pad(fields, 4)
            fields += struct.pack("<I", len(v)) + v + b"\0"
    head = struct.pack("<cBBBIII", b"l", 1, 0, 1, len(body), serial, len(fields))
    return pad(head + fields, 8) + body


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            sys.exit(0)  # bus closed
        buf += chunk
    return buf


def read_message(s):
    """Return (type, reply_serial or None, body, endianness) of the next message."""
    fixed = read_exact(s, 16)
    e = "<" if fixed[0:1] == b"l" else ">"
    mtype = fixed[1]
    body_len, _, fields_len = struct.unpack(e + "III", fixed[4:16])
    rest = read_exact(s, fields_len + (-(16 + fields_len) % 8) + body_len)
    fields, body = rest[:fields_len], rest[len(rest) - body_len:]
    reply_serial, pos = None, 0
    while pos < len(fields):  # walk the (code, variant) header fields
        pos += -pos % 8
        code, siglen = fields[pos], fields[pos + 1]
        t = chr(fields[pos + 2])
        pos += 3 + siglen
        if t == "g":
            pos += 1 + fields[pos] + 1
        else:
            pos += -pos % 4  # fields start at offset 16, so local == global
            (n,) = struct.unpack(e + "I", fields[pos:pos + 4])
            if code == 5:
                reply_serial = n
            pos += 4 if t == "u" else 4 + n + 1
    return mtype, reply_serial, body, e


def main():
    name = "org.freedesktop.secrets"
    if len(sys.argv) == 3 and sys.argv[1] == "--name":
        name = sys.argv[2]
    address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if not address:
        sys.exit("DBUS_SESSION_BUS_ADDRESS is not set")
    s = connect(address)

    # SASL EXTERNAL auth with our uid, then switch to the binary protocol.
    s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
    line = b""
    while not line.endswith(b"\r\n"):
        line += read_exact(s, 1)
    if not line.startswith(b"OK"):
        sys.exit("auth failed: %r" % line)
    s.sendall(b"BEGIN\r\n")

    bus = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
    s.sendall(method_call(1, *bus, "Hello"))
    # RequestName(name, DO_NOT_QUEUE=4): body "su"
    v = name.encode()
    body = pad(struct.pack("<I", len(v)) + v + b"\0", 4) + struct.pack("<I", 4)
    s.sendall(method_call(2, *bus, "RequestName", "su", body))

    while True:
        mtype, reply_serial, body, e = read_message(s)
        if reply_serial == 2:
            if mtype == 3:  # ERROR
                sys.exit("RequestName failed")
            (code,) = struct.unpack(e + "I", body[:4])
            if code != 1:  # 1 = PRIMARY_OWNER
                sys.exit("could not own %s (RequestName returned %d)" % (name, code))
            break

    print("READY", flush=True)
    while True:  # swallow everything, answer nothing
        read_message(s)


if __name__ == "__main__":
    main()
