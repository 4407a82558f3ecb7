#!/usr/bin/python3
"""Tests of tests/chaos/chaos_proxy.c (run by ctest as chaos/proxy, and by `make chaos`).

  test_proxy.py PATH_TO_CHAOS_PROXY

A threaded echo server on 127.0.0.1 stands behind the proxy; each check drives the proxy's
control socket and looks at what a client receives. Byte checks compare against the bytes the
client sent (random data). Time is only ever checked as a lower bound that the configured fault
implies (a round trip through 150 ms of latency each way cannot take less than 300 ms), never
as an upper bound, so a slow machine cannot fail them.

Transparent mode (the way chaos.py interposes the proxy) needs root and network namespaces: an
nft `redirect` in a private namespace sends a connection to 127.0.0.1:ECHO through the proxy,
which finds the original destination and skips its own marked connection. Without root it is
skipped with a line saying why. Standard library only; nothing here calls Ember.
"""
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

PROXY = None
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""))


def echo_server():
    """Echoes every connection until EOF, then closes it. Returns the listening port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def serve(c):
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        finally:
            c.close()

    def accept():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1]


class Proxy:
    def __init__(self, args, netns=None, control="127.0.0.1:0"):
        cmd = [PROXY, "--listen", "127.0.0.1:0", "--control", control, "--seed", "7"] + args
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        # Its log, checked for sanitizer reports at the end (CHAOS_PROXY_LOG=1: on the console).
        self.log = None if os.environ.get("CHAOS_PROXY_LOG") else tempfile.TemporaryFile()
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.port = where = None
        for line in self.p.stdout:
            k, _, v = line.strip().partition(" ")
            if k == "listen":
                self.port = int(v.rsplit(":", 1)[1])
            elif k == "control":
                where = v
            elif k == "ready":
                break
        if not self.port:
            raise RuntimeError("chaos_proxy did not start")
        if "/" in where:  # a Unix socket: reachable from any network namespace
            self.ctl = socket.socket(socket.AF_UNIX)
            self.ctl.settimeout(10)
            self.ctl.connect(where)
        else:
            self.ctl = socket.create_connection(("127.0.0.1", int(where.rsplit(":", 1)[1])),
                                                timeout=10)
        self.ctl_file = self.ctl.makefile("r")

    def cmd(self, line):
        self.ctl.sendall(line.encode() + b"\n")
        out = []
        while True:
            reply = self.ctl_file.readline().strip()
            out.append(reply)
            if reply.startswith(("ok", "error")):
                return "\n".join(out)

    def stop(self):
        self.ctl.close()
        self.p.kill()
        self.p.wait()
        if self.log:
            self.log.seek(0)
            text = self.log.read()
            check("no sanitizer report in the proxy's log",
                  not re.search(rb"ERROR: (Address|Leak)Sanitizer|runtime error:", text),
                  text[-300:].decode(errors="replace"))


def roundtrip(port, data, timeout=20):
    """Sends data, half-closes, reads until EOF. Returns (bytes received, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = bytearray()

    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)

    th = threading.Thread(target=send)
    th.start()
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    th.join()
    s.close()
    return bytes(got), time.monotonic() - t0


def main():
    global PROXY
    PROXY = sys.argv[1]
    rnd = random.Random(42)
    echo = echo_server()
    px = Proxy(["--target", f"127.0.0.1:{echo}"])
    try:
        data = rnd.randbytes(3 << 20)
        got, _ = roundtrip(px.port, data)
        check("pass-through: 3 MiB echoed intact, end of stream propagated", got == data,
              f"{len(got)} bytes back of {len(data)}")

        check("control answers 'ok' / 'error'",
              px.cmd("latency 150").startswith("ok") and px.cmd("bogus").startswith("error")
              and px.cmd("latency x").startswith("error"))
        small = b"ping" * 10
        got, secs = roundtrip(px.port, small)
        check("latency 150 ms: bytes intact, a round trip takes at least 300 ms",
              got == small and secs >= 0.3, f"{secs:.3f} s, {got[:20]!r}")
        px.cmd("latency 5 20")
        data = rnd.randbytes(1 << 20)
        got, _ = roundtrip(px.port, data)
        check("latency with jitter keeps the byte order (1 MiB)", got == data)
        px.cmd("latency 0")

        px.cmd("bandwidth 200000")
        data = rnd.randbytes(300000)
        got, secs = roundtrip(px.port, data)
        check("bandwidth 200000 B/s: 300000 bytes intact, no faster than 1.5 s",
              got == data and secs >= 1.5, f"{secs:.3f} s")
        px.cmd("bandwidth 0")

        s = socket.create_connection(("127.0.0.1", px.port), timeout=20)
        s.sendall(b"a")
        first = s.recv(10)
        reply = px.cmd("stall 800")
        t0 = time.monotonic()
        s.sendall(b"b")
        second = s.recv(10)
        secs = time.monotonic() - t0
        s.close()
        check("stall 800 ms: an open connection forwards nothing for 800 ms, then resumes",
              first == b"a" and second == b"b" and secs >= 0.8 and "stalled 1 " in reply,
              f"{secs:.3f} s, {reply}")

        px.cmd("reset 100")
        try:
            s = socket.create_connection(("127.0.0.1", px.port), timeout=20)
            s.sendall(b"x")
            r = s.recv(10)
            outcome = "eof" if r == b"" else f"data {r!r}"
        except ConnectionResetError:
            outcome = "reset"
        except OSError as e:
            outcome = f"{e}"
        check("reset 100: a new connection is reset", outcome == "reset", outcome)
        px.cmd("reset 0")

        s = socket.create_connection(("127.0.0.1", px.port), timeout=20)
        s.sendall(b"q")
        ok_before = s.recv(10) == b"q"
        conns = px.cmd("conns")
        reply = px.cmd("reset-open")
        try:
            r = s.recv(10)
            outcome = "eof" if r == b"" else f"data {r!r}"
        except ConnectionResetError:
            outcome = "reset"
        s.close()
        check("reset-open: an open connection is reset", ok_before and outcome == "reset"
              and "reset 1 " in reply and f"-> 127.0.0.1:{echo} up 1 down 1" in conns,
              f"{outcome}; {reply}; {conns}")

        px.cmd("blackhole on")
        s = socket.create_connection(("127.0.0.1", px.port), timeout=1.0)
        s.sendall(b"hello")
        try:
            r = s.recv(10)
            outcome = f"got {r!r}"
        except socket.timeout:
            outcome = "silence"
        check("blackhole: a new connection is accepted and never answered", outcome == "silence",
              outcome)
        status = px.cmd("status")
        px.cmd("clear")
        s.settimeout(20)
        try:
            r = s.recv(10)
            outcome = "eof" if r == b"" else f"data {r!r}"
        except ConnectionResetError:
            outcome = "reset"
        s.close()
        check("clear resets the blackholed connection", outcome == "reset", outcome)
        check("status counts the connections",
              "blackhole on" in status and "blackholed 1" in status and "resets 2" in status,
              status)
        data = rnd.randbytes(100000)
        got, _ = roundtrip(px.port, data)
        check("after clear, connections are forwarded again", got == data)
    finally:
        px.stop()

    transparent()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def transparent():
    """nft redirect inside a private namespace + --transparent --mark."""
    if os.geteuid() != 0:
        print("# transparent mode: skipped (needs root for a network namespace and nft)")
        return
    ns = f"chaos-proxytest-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        print("# transparent mode: skipped ('ip netns add' does not work here)")
        return
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        # An echo server inside the namespace, on a port the client asks for directly.
        code = ("import socket,threading\n"
                "s=socket.socket();s.bind(('127.0.0.1',0));s.listen(8);print(s.getsockname()[1],"
                "flush=True)\n"
                "def serve(c):\n"
                "  while True:\n"
                "    b=c.recv(65536)\n"
                "    if not b: break\n"
                "    c.sendall(b)\n"
                "  c.close()\n"
                "while True:\n"
                "  c,_=s.accept();threading.Thread(target=serve,args=(c,),daemon=True).start()\n")
        echo = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                                stdout=subprocess.PIPE, text=True)
        port = int(echo.stdout.readline())
        sock = f"/tmp/{ns}.ctl"
        px = Proxy(["--transparent", "--mark", "0x4348"], netns=ns, control=sock)
        rules = (f"table ip chaos_test {{\n chain out {{\n type nat hook output priority -100;\n"
                 f" meta mark 0x4348 return\n tcp dport {port} redirect to :{px.port}\n }}\n}}\n")
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True,
                           capture_output=True)
        if r.returncode != 0:
            check("transparent: nft accepts the redirect rule", False, r.stderr.strip())
        else:
            px.cmd("latency 200")
            client = ("import socket,sys,time\n"
                      f"t=time.monotonic();s=socket.create_connection(('127.0.0.1',{port}))\n"
                      "s.sendall(b'through');print(s.recv(100).decode(),"
                      "round(time.monotonic()-t,3))\n")
            out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", client],
                                 capture_output=True, text=True, timeout=30).stdout.split()
            conns = px.cmd("conns")
            check("transparent: a redirected connection reaches its original destination "
                  "through the proxy (latency applied, own connection not looped)",
                  len(out) == 2 and out[0] == "through" and float(out[1]) >= 0.4
                  and f"-> 127.0.0.1:{port}" in conns, f"{out}; {conns}")
        px.stop()
        echo.kill()
        echo.wait()
        os.unlink(sock)
    finally:
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split():
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
