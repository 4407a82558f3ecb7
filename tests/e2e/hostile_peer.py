#!/usr/bin/python3
"""A hostile (or merely foreign) peer for tests/e2e/test_cluster_security.sh: connects to an
Ember port on 127.0.0.1 and sends one kind of bad input, or runs the connection handshake
written here from the protocol's description (src/net/proto.h, messages.def, auth.h), not from
Ember's code. Standard library only.

  hostile_peer.py PORT MODE [--role N] [--secret S]

First line printed: "local 127.0.0.1:P", the address the daemon's log names. Then one line:
  closed            the peer closed the connection (what every bad-input mode expects)
  open              still open after 10 s (the bad input was not noticed)
  accepted          (auth) the handshake completed and the peer's own proof checked out
  refused: REASON   (auth) the peer answered auth_result{ok=0, REASON}

Modes:
  garbage         4 KiB of fixed pseudo-random bytes
  oversize        a header announcing a frame one byte over ember.rpc.message.maxSize
                  (default 128 MiB), then 64 KiB of its body
  version         a well-formed hello frame whose header says protocol version 2
  hello-version   a version 1 frame whose hello announces protocol version 2
  badbody         a hello frame whose app_id length runs past the end of the frame
  half            after the peer's hello, the first 20 bytes of a 60-byte hello frame, then
                  the end of the stream (shutdown for writing)
  auth            the handshake: hello (with a nonce when --secret is given), the proof
  auth-unknown    the handshake, then a frame of an unknown message type (999)
"""
import argparse
import hashlib
import hmac
import os
import random
import socket
import struct
import sys

VERSION = 1
HELLO, AUTH_RESPONSE, AUTH_RESULT = 1, 3, 4
MAX_FRAME = 128 << 20
LABEL = b"ember-auth-v1"
INITIATOR, ACCEPTOR = 1, 2


def frame(msg_type, body, version=VERSION, length=None):
    """length: the u32 length field, by default 4 + len(body)."""
    if length is None:
        length = 4 + len(body)
    return struct.pack("<IHH", length, version, msg_type) + body


def hello_body(role, app_id=b"", nonce=b"", version=VERSION):
    return (struct.pack("<IB", version, role) + struct.pack("<I", len(app_id)) + app_id
            + struct.pack("<I", len(nonce)) + nonce)


def proof(secret, direction, role, receiver_nonce, sender_nonce):
    return hmac.new(secret, LABEL + bytes([direction, role]) + receiver_nonce + sender_nonce,
                    hashlib.sha256).digest()


class Closed(Exception):
    pass


def read_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise Closed()
        out += chunk
    return out


def read_frame(s):
    length, version, msg_type = struct.unpack("<IHH", read_exact(s, 8))
    if length < 4 or length > 1 << 20:
        sys.exit(f"peer sent a frame of length {length}")
    return msg_type, read_exact(s, length - 4)


def field_bytes(body, pos):
    (n,) = struct.unpack_from("<I", body, pos)
    return body[pos + 4:pos + 4 + n], pos + 4 + n


def wait_closed(s, seconds=10.0):
    """Reads and drops whatever comes until the peer closes ("closed") or seconds pass."""
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
        return "closed"
    except socket.timeout:
        return "open"
    except OSError:  # reset
        return "closed"


def send_ignoring_reset(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass  # the peer may close before everything is written: that is the point


def handshake(s, role, secret):
    """Runs the initiator's side. Returns "accepted" or "refused: ..."; raises Closed."""
    nonce = os.urandom(32) if secret else b""
    s.sendall(frame(HELLO, hello_body(role, b"", nonce)))
    msg_type, body = read_frame(s)
    if msg_type == AUTH_RESULT:
        reason, _ = field_bytes(body, 1)
        return "refused: " + reason.decode(errors="replace")
    if msg_type != HELLO:
        sys.exit(f"expected hello, got message type {msg_type}")
    version, peer_role = struct.unpack_from("<IB", body, 0)
    _, pos = field_bytes(body, 5)
    peer_nonce, _ = field_bytes(body, pos)
    if not secret:
        if peer_nonce:  # the peer wants authentication: it refuses after its hello
            msg_type, body = read_frame(s)
            if msg_type == AUTH_RESULT and body[0] == 0:
                reason, _ = field_bytes(body, 1)
                return "refused: " + reason.decode(errors="replace")
            sys.exit(f"unexpected message type {msg_type} after hello")
        return "accepted"
    mac = proof(secret, INITIATOR, role, peer_nonce, nonce)
    s.sendall(frame(AUTH_RESPONSE, struct.pack("<I", len(mac)) + mac))
    while True:
        msg_type, body = read_frame(s)
        if msg_type == AUTH_RESPONSE:
            peer_mac, _ = field_bytes(body, 0)
            want = proof(secret, ACCEPTOR, peer_role, nonce, peer_nonce)
            if not hmac.compare_digest(peer_mac, want):
                sys.exit("the peer's proof is wrong")
        elif msg_type == AUTH_RESULT:
            if body[0] == 1:
                return "accepted"
            reason, _ = field_bytes(body, 1)
            return "refused: " + reason.decode(errors="replace")
        else:
            sys.exit(f"unexpected message type {msg_type} during the handshake")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("mode")
    ap.add_argument("--role", type=int, default=2)
    ap.add_argument("--secret", default="")
    a = ap.parse_args()
    secret = a.secret.encode()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    print("local %s:%d" % s.getsockname(), flush=True)
    if a.mode == "garbage":
        rnd = random.Random(20240601)
        send_ignoring_reset(s, bytes(rnd.randrange(256) for _ in range(4096)))
    elif a.mode == "oversize":
        length = MAX_FRAME - 4 + 1  # 4 + length = maxSize + 1
        send_ignoring_reset(s, frame(HELLO, b"\0" * 65536, length=length))
    elif a.mode == "version":
        send_ignoring_reset(s, frame(HELLO, hello_body(a.role), version=2))
    elif a.mode == "hello-version":
        send_ignoring_reset(s, frame(HELLO, hello_body(a.role, version=2)))
    elif a.mode == "badbody":
        body = struct.pack("<IB", VERSION, a.role) + struct.pack("<I", 1000) + b"x" * 8
        send_ignoring_reset(s, frame(HELLO, body))
    elif a.mode == "half":
        read_frame(s)  # the peer's hello first, so that closing does not reset
        whole = frame(HELLO, hello_body(a.role, b"a" * 39))
        assert len(whole) == 60
        s.sendall(whole[:20])
        s.shutdown(socket.SHUT_WR)
    elif a.mode in ("auth", "auth-unknown"):
        try:
            outcome = handshake(s, a.role, secret)
        except Closed:
            print("closed")
            return
        if a.mode == "auth" or outcome != "accepted":
            print(outcome)
            return
        send_ignoring_reset(s, frame(999, b"\0\0\0\0"))
    else:
        sys.exit(f"unknown mode {a.mode}")
    print(wait_closed(s))


if __name__ == "__main__":
    main()
