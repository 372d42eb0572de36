#!/usr/bin/env python3
# isle — MIT licensed.
"""Integration tests of the sample servers (samples/echo, http, kv).

    servers.py SUITE BINARY

SUITE is echo, http or kv (the protocol, with real clients: a socket
client for echo, curl for http, redis-cli for kv) or echo-abuse,
http-abuse, kv-abuse (many concurrent connections, malformed and truncated
input, slow peers closed at --idle-ms, vanishing peers that reset, a peer
that never reads closed at --max-output, and SIGTERM with connections
open). Each suite starts BINARY on a free loopback port (--port 0, the
port read from its "NAME: listening on 127.0.0.1:PORT" line), checks, and
ends it with SIGTERM: it must exit 0 within its shutdown deadline and say
"bye" (under ASan, a leak or memory error makes it exit non-zero).

Exit status: 0 passed, 1 failed, 77 skipped (a client tool is missing).
"""
import json
import ctypes
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

SKIP = 77
WAIT = 20.0  # seconds any expected answer may take (sanitizer builds)
IDLE_MS = 600  # --idle-ms of the abuse suites
SHUTDOWN_S = 2.0  # the servers' shutdown deadline (server_common.h)


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ----- The server process ---------------------------------------------------


def die_with_parent():
    """Popen's preexec_fn: the child gets SIGKILL when the test process
    ends, however it ends (ctest's timeout kills it without a finally), so
    no server or load generator outlives its test."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Server:
    """BINARY on a free port; stdout and stderr collected by threads."""

    def __init__(self, binary, args=()):
        self.name = os.path.basename(binary)
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--workers", "2", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        self.lines = queue.Queue()
        self.err = []
        threading.Thread(target=self._out, daemon=True).start()
        self.err_thread = threading.Thread(target=self._err, daemon=True)
        self.err_thread.start()
        try:
            line = self.lines.get(timeout=WAIT)
        except queue.Empty:
            self.proc.kill()
            raise Failure("%s printed no listening line" % self.name)
        m = re.fullmatch(r"(\w+): listening on 127\.0\.0\.1:(\d+)", line.strip())
        check(m is not None, "unexpected first line %r" % line)
        check(m.group(1) == self.name, "named %r" % m.group(1))
        self.port = int(m.group(2))
        check(self.port > 0, "port 0")

    def _out(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode(errors="replace"))

    def _err(self):
        for line in self.proc.stderr:
            self.err.append(line.decode(errors="replace"))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, limit=SHUTDOWN_S + 8.0):
        """SIGTERM: exits 0 within `limit` seconds and says bye."""
        check(self.alive(), "%s died early: %s" % (self.name, self.stderr()))
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("%s still running %.1f s after SIGTERM" % (self.name, limit))
        took = time.monotonic() - t0
        self.err_thread.join(timeout=WAIT)
        err = self.stderr()
        check(rc == 0, "%s exited %d:\n%s" % (self.name, rc, err))
        check(re.search(r"; bye$", err, re.M) is not None, "no bye line:\n" + err)
        return took

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stderr(self):
        return "".join(self.err)


# ----- Socket clients -------------------------------------------------------


def connect(port, timeout=WAIT):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise Failure("EOF after %d of %d bytes" % (len(buf), n))
        buf += b
    return bytes(buf)


def recv_until_closed(s):
    """Everything until the peer closes; a reset counts as a close."""
    buf = bytearray()
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return bytes(buf)
        if not b:
            return bytes(buf)
        buf += b


def reset(s):
    """Vanishes: close with RST (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def closed_within(s, lo, hi):
    """The peer closes s between lo and hi seconds from now (no input)."""
    t0 = time.monotonic()
    s.settimeout(hi + 1.0)
    try:
        data = recv_until_closed(s)
    except socket.timeout:
        raise Failure("not closed within %.1f s" % hi)
    took = time.monotonic() - t0
    check(lo <= took <= hi, "closed after %.2f s, not in [%.2f, %.2f]" % (took, lo, hi))
    return data


def never_reads(port, payload, limit=512 << 20):
    """Sends payload again and again, never reading: the server must close
    the connection (its replies exceed --max-output) before `limit` bytes."""
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = 0
    try:
        while sent < limit:
            s.sendall(payload)
            sent += len(payload)
    except (ConnectionResetError, BrokenPipeError):
        s.close()
        return sent
    except socket.timeout:
        raise Failure("a peer that never reads was not closed (send blocked)")
    raise Failure("a peer that never reads was not closed after %d bytes" % sent)


def silent_slow_reader_gets_its_echo(port, idle_ms):
    """A peer that sends, then neither sends nor reads for longer than the
    idle timeout: the server closes it, and what the server had written is
    still delivered (FIN after it, no reset), so a slow reader gets all of
    its echo, then EOF."""
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    data = b"q" * (32 << 10)  # echoed into the kernels; under max-output
    s.sendall(data)
    time.sleep(idle_ms / 1000 + 1.0)
    got = recv_until_closed(s)
    s.close()
    check(got == data, "a slow reader got %d of its %d echoed bytes, then "
          "the close" % (len(got), len(data)))


def many_at_once(port, n, request, answer_len, check_answer):
    """n connections open together, each sends `request(i)` and reads
    answer_len(i) bytes, checked by check_answer(i, bytes)."""
    socks = [connect(port) for _ in range(n)]
    for i, s in enumerate(socks):
        s.sendall(request(i))
    for i, s in enumerate(socks):
        check_answer(i, recv_exact(s, answer_len(i)))
    for s in socks:
        s.close()


# ----- echo -----------------------------------------------------------------


def suite_echo(binary):
    srv = Server(binary)
    try:
        s = connect(srv.port)
        s.sendall(b"hello, echo\n")
        check(recv_exact(s, 12) == b"hello, echo\n", "echo of a line")
        # 1 MB of every byte value, sent while it is read back.
        data = os.urandom(1 << 20)
        got = bytearray()

        def reader():
            while len(got) < len(data):
                b = s.recv(65536)
                if not b:
                    break
                got.extend(b)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        t.join(timeout=WAIT * 3)
        check(bytes(got) == data, "1 MB echoed intact (%d bytes back)" % len(got))
        # The client finishes: the echo of its last bytes, then FIN.
        s.sendall(b"tail")
        s.shutdown(socket.SHUT_WR)
        check(recv_until_closed(s) == b"tail", "echo then close after EOF")
        s.close()
        srv.stop()
    finally:
        srv.kill()


def suite_echo_abuse(binary):
    srv = Server(binary, ["--idle-ms", str(IDLE_MS), "--max-output", "65536"])
    try:
        many_at_once(
            srv.port, 200,
            lambda i: b"client %d\n" % i,
            lambda i: len(b"client %d\n" % i),
            lambda i, b: check(b == b"client %d\n" % i, "conn %d echoed" % i),
        )
        # Slow peers: silent, closed at the idle timeout (never early).
        s = connect(srv.port)
        closed_within(s, IDLE_MS / 1000 - 0.05, IDLE_MS / 1000 + 5)
        s.close()
        # Vanishing peers: send part, then reset.
        for i in range(50):
            s = connect(srv.port)
            s.sendall(b"x" * (i * 100 + 1))
            reset(s)
        # A peer that reads its echo only after the idle timeout; and one
        # that never reads and keeps sending.
        silent_slow_reader_gets_its_echo(srv.port, IDLE_MS)
        never_reads(srv.port, b"y" * 65536)
        # Still serving.
        s = connect(srv.port)
        s.sendall(b"alive")
        check(recv_exact(s, 5) == b"alive", "serves after the abuse")
        s.close()
        # SIGTERM with connections open, one in the middle of a stream.
        open_ = [connect(srv.port) for _ in range(10)]
        open_[0].sendall(b"z" * 100000)
        took = srv.stop()
        check(took <= SHUTDOWN_S + 5, "shutdown took %.1f s" % took)
        for s in open_:
            s.settimeout(WAIT)
            recv_until_closed(s)
            s.close()
    finally:
        srv.kill()


# ----- http -----------------------------------------------------------------

HTTP_LIMITS = ["--max-header", "4096", "--max-body", "1024"]


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", str(int(WAIT)), *args],
                       capture_output=True, timeout=WAIT + 5)
    check(r.returncode == 0, "curl %s: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout.decode()


class Reader:
    """HTTP/1.1 responses from a socket, one at a time (pipelined answers
    may come in one read)."""

    def __init__(self, s):
        self.s = s
        self.buf = bytearray()

    def _fill(self):
        b = self.s.recv(65536)
        if not b:
            raise Failure("EOF inside a response: %r" % bytes(self.buf[:80]))
        self.buf += b

    def response(self, head_only=False):
        """status, head, body (a HEAD answer's body is not sent)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n") + 4
        head = self.buf[:end].decode()
        status = int(head.split()[1])
        m = re.search(r"(?im)^content-length:\s*(\d+)\r?$", head)
        n = 0 if head_only or not m else int(m.group(1))
        while len(self.buf) < end + n:
            self._fill()
        body = bytes(self.buf[end:end + n])
        del self.buf[:end + n]
        return status, head, body

    def rest(self):
        return bytes(self.buf) + recv_until_closed(self.s)


def read_response(s):
    return Reader(s).response()


def raw_http(port, request):
    """Sends request on a fresh connection; the first response."""
    s = connect(port)
    s.sendall(request)
    r = read_response(s)
    s.close()
    return r


def suite_http(binary):
    if not shutil.which("curl"):
        print("skipped: curl is not installed (tools/deps.sh)")
        return SKIP
    srv = Server(binary, HTTP_LIMITS)
    base = "http://127.0.0.1:%d" % srv.port
    try:
        out = curl("-w", "\n%{http_code}", base + "/")
        check(out == "Hello, World!\n200", "GET /: %r" % out)
        stats = json.loads(curl(base + "/stats"))
        check(isinstance(stats.get("threads"), list) and stats["threads"],
              "/stats has threads: %r" % stats)
        check(all("live_bytes" in t and "name" in t for t in stats["threads"]),
              "thread figures")
        check(stats["runtime"]["workers"] == 2, "workers in /stats")
        check(curl("-o", "/dev/null", "-w", "%{http_code}", base + "/nope") == "404",
              "404")
        head = curl("-i", "-X", "POST", "-d", "x=1", base + "/")
        check(head.startswith("HTTP/1.1 405"), "405: %r" % head[:40])
        check(re.search(r"(?im)^allow: GET, HEAD\r?$", head), "Allow header")
        # Keep-alive: three requests, one connection.
        out = curl("-w", "%{num_connects}\n", "-o", "/dev/null", base + "/",
                   "-o", "/dev/null", base + "/", "-o", "/dev/null", base + "/stats")
        check(out.split() == ["1", "0", "0"], "one connection for three: %r" % out)
        # A Content-Length body is consumed, then the next request served.
        s = connect(srv.port)
        s.sendall(b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                  b"helloGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = Reader(s)
        check(r.response()[0] == 404, "POST with body")
        st, _, body = r.response()
        check((st, body) == (200, b"Hello, World!"), "request after a body")
        s.close()
        s = connect(srv.port)
        # Pipelined: four requests in one write, answered in order.
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = Reader(s)
        got = [r.response()[0::2], r.response()[0::2], r.response(head_only=True)[0::2],
               r.response()[0::2]]
        check(got == [(200, b"Hello, World!"), (404, b"Not Found\n"), (200, b""),
                      (200, b"Hello, World!")], "pipelined answers: %r" % got)
        check(r.rest() == b"", "closed after Connection: close")
        s.close()
        # Bad requests.
        check(raw_http(srv.port, b"GARBAGE\r\n\r\n")[0] == 400, "400 for garbage")
        check(raw_http(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 100000\r\n\r\n")[0] == 413, "413")
        check(raw_http(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " +
                       b"a" * 20000 + b"\r\n\r\n")[0] == 431, "431")
        srv.stop()
    finally:
        srv.kill()


def suite_http_abuse(binary):
    srv = Server(binary, HTTP_LIMITS +
                 ["--idle-ms", str(IDLE_MS), "--max-output", "65536"])
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        expect = raw_http(srv.port, req)
        s = connect(srv.port)
        s.sendall(req)
        _, head, body = Reader(s).response()
        s.close()
        first = head.encode() + body
        one = len(first)
        check(expect[0] == 200 and first.endswith(b"Hello, World!"), "baseline")
        many_at_once(srv.port, 200, lambda i: req, lambda i: one,
                     lambda i, b: check(b == first, "conn %d answered" % i))
        # Malformed: each answered 400 and closed, or closed.
        for bad in [b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                    b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
                    b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                    b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"]:
            s = connect(srv.port)
            s.sendall(bad)
            out = recv_until_closed(s)
            check(re.match(rb"HTTP/1.1 (400|501|505) ", out) is not None,
                  "%r answered %r" % (bad, out[:30]))
            s.close()
        # Truncated: half a request, then EOF: closed without an answer.
        s = connect(srv.port)
        s.sendall(b"GET / HTTP/1.1\r\nHo")
        s.shutdown(socket.SHUT_WR)
        check(recv_until_closed(s) == b"", "truncated request closed")
        s.close()
        # Slow peer: half a request and no more, closed at the idle timeout.
        s = connect(srv.port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        check(closed_within(s, IDLE_MS / 1000 - 0.05, IDLE_MS / 1000 + 5) == b"",
              "slow peer got no answer")
        s.close()
        # Vanishing peers.
        for i in range(50):
            s = connect(srv.port)
            s.sendall(req[: 1 + i % (len(req) - 1)])
            reset(s)
        # Never reads its answers: pipelines without reading.
        never_reads(srv.port, req * 2000)
        check(raw_http(srv.port, req)[0] == 200, "serves after the abuse")
        # SIGTERM with connections open (idle, and in the middle of one).
        open_ = [connect(srv.port) for _ in range(10)]
        open_[0].sendall(b"GET / HTTP/1.1\r\n")
        took = srv.stop()
        check(took <= SHUTDOWN_S + 5, "shutdown took %.1f s" % took)
        for s in open_:
            recv_until_closed(s)
            s.close()
    finally:
        srv.kill()


# ----- kv -------------------------------------------------------------------


class Cli:
    def __init__(self, port):
        self.port = port

    def __call__(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                           capture_output=True, timeout=WAIT)
        check(r.returncode == 0, "redis-cli %s: %s" % (args, r.stderr.decode()))
        return r.stdout.decode().rstrip("\n")

    def expect(self, want, *args):
        got = self(*args)
        check(got == want, "%s: %r, expected %r" % (" ".join(args), got, want))


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def suite_kv(binary):
    if not shutil.which("redis-cli"):
        print("skipped: redis-cli is not installed (tools/deps.sh)")
        return SKIP
    srv = Server(binary)
    cli = Cli(srv.port)
    try:
        cli.expect("PONG", "PING")
        cli.expect("hi there", "PING", "hi there")
        cli.expect("echo me", "ECHO", "echo me")
        cli.expect("OK", "FLUSHALL")
        cli.expect("0", "DBSIZE")
        cli.expect("OK", "SET", "k", "v")
        cli.expect("v", "GET", "k")
        cli.expect("", "GET", "missing")  # nil prints as an empty line
        cli.expect("", "SET", "k", "w", "NX")
        cli.expect("v", "GET", "k")
        cli.expect("OK", "SET", "k", "w", "XX")
        cli.expect("w", "GET", "k")
        cli.expect("", "SET", "nokey", "x", "XX")
        cli.expect("0", "EXISTS", "nokey")
        cli.expect("OK", "SET", "ex", "1", "EX", "100")
        ttl = int(cli("TTL", "ex"))
        check(98 <= ttl <= 100, "TTL after EX 100: %d" % ttl)
        cli.expect("OK", "SET", "px", "1", "PX", "300")
        cli.expect("1", "EXISTS", "px")
        cli.expect("-1", "TTL", "k")
        cli.expect("-2", "TTL", "missing")
        cli.expect("1", "EXPIRE", "k", "50")
        ttl = int(cli("TTL", "k"))
        check(48 <= ttl <= 50, "TTL after EXPIRE 50: %d" % ttl)
        cli.expect("0", "EXPIRE", "missing", "50")
        # PX 300 has passed (a timeout we set, not a synchronisation).
        time.sleep(0.4)
        cli.expect("0", "EXISTS", "px")
        cli.expect("", "GET", "px")
        cli.expect("1", "INCR", "n")
        cli.expect("11", "INCRBY", "n", "10")
        cli.expect("10", "DECR", "n")
        cli.expect("-5", "INCRBY", "n", "-15")
        cli.expect("ERR value is not an integer or out of range", "INCR", "k")
        cli.expect("OK", "MSET", "a", "1", "b", "2", "c", "3")
        cli.expect("1\n2\n\n3", "MGET", "a", "b", "nope", "c")
        cli.expect("3", "EXISTS", "a", "b", "c", "nope")
        cli.expect("2", "DEL", "a", "b", "nope")
        cli.expect("0", "EXISTS", "a", "b")
        n = int(cli("DBSIZE"))
        check(n == 4, "DBSIZE: %d (k ex n c)" % n)
        cli.expect("OK", "FLUSHALL")
        cli.expect("0", "DBSIZE")
        count = int(cli("COMMAND", "COUNT"))
        check(count > 0, "COMMAND COUNT %d" % count)
        s = connect(srv.port)
        s.sendall(resp("COMMAND"))  # an array (redis-cli: "no hints")
        check(s.recv(65536).startswith(b"*"), "COMMAND answers an array")
        s.close()
        info = cli("INFO")
        check("redis_version" in info or "# Server" in info, "INFO: %r" % info[:60])
        check("# Isle" in info, "INFO has the runtime's figures")
        # Errors as Redis writes them.
        cli.expect("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ",
                   "FOO", "a", "b")
        cli.expect("ERR wrong number of arguments for 'get' command", "GET")
        cli.expect("ERR wrong number of arguments for 'set' command", "SET", "k")
        cli.expect("ERR syntax error", "SET", "k", "v", "NX", "XX")
        cli.expect("ERR invalid expire time in 'set' command", "SET", "k", "v", "EX", "0")
        # The exact bytes on the wire, pipelined, in order.
        s = connect(srv.port)
        s.sendall(resp("FOO", "a") + resp("GET") + resp("SET", "p", "1") +
                  resp("GET", "p") + resp("PING"))
        want = (b"-ERR unknown command 'FOO', with args beginning with: 'a' \r\n"
                b"-ERR wrong number of arguments for 'get' command\r\n"
                b"+OK\r\n$1\r\n1\r\n+PONG\r\n")
        check(recv_exact(s, len(want)) == want, "pipelined replies in order")
        # A protocol error is answered, then the connection closed.
        s.sendall(b"*1\r\n$abc\r\n")
        out = recv_until_closed(s)
        check(out == b"-ERR Protocol error: invalid bulk length\r\n",
              "protocol error: %r" % out)
        s.close()
        # Inline commands (redis-cli's and telnet's).
        s = connect(srv.port)
        s.sendall(b"PING\r\n")
        check(recv_exact(s, 7) == b"+PONG\r\n", "inline PING")
        s.close()
        srv.stop()
    finally:
        srv.kill()


def suite_kv_abuse(binary):
    srv = Server(binary, ["--idle-ms", str(IDLE_MS), "--max-output", "65536",
                          "--max-bulk", "65536"])
    try:
        many_at_once(srv.port, 200, lambda i: resp("SET", "k%d" % i, "v%d" % i) +
                     resp("GET", "k%d" % i),
                     lambda i: 5 + len(b"$%d\r\nv%d\r\n" % (len(b"v%d" % i), i)),
                     lambda i, b: check(b == b"+OK\r\n$%d\r\nv%d\r\n" %
                                        (len(b"v%d" % i), i), "conn %d: %r" % (i, b)))
        # Malformed: answered with a protocol error and closed.
        for bad in [b"*abc\r\n", b"*2\r\n$3\r\nGET\r\n:1\r\n", b"*1\r\n$-5\r\n",
                    b"*1\r\n$100000000\r\n", b'SET "unbalanced\r\n']:
            s = connect(srv.port)
            s.sendall(bad)
            out = recv_until_closed(s)
            check(out.startswith(b"-ERR Protocol error"), "%r: %r" % (bad, out))
            s.close()
        # Truncated: half a command, then EOF: closed without a reply.
        s = connect(srv.port)
        s.sendall(b"*2\r\n$3\r\nGET\r\n$5\r\nab")
        s.shutdown(socket.SHUT_WR)
        check(recv_until_closed(s) == b"", "truncated command closed")
        s.close()
        # Slow peer: half a command, closed at the idle timeout.
        s = connect(srv.port)
        s.sendall(b"*2\r\n$3\r\nGET")
        check(closed_within(s, IDLE_MS / 1000 - 0.05, IDLE_MS / 1000 + 5) == b"",
              "slow peer got no reply")
        s.close()
        # Vanishing peers.
        full = resp("SET", "vanish", "x" * 1000)
        for i in range(50):
            s = connect(srv.port)
            s.sendall(full[: 1 + (i * 37) % (len(full) - 1)])
            reset(s)
        # Never reads its replies.
        never_reads(srv.port, resp("PING") * 4000)
        s = connect(srv.port)
        s.sendall(resp("PING"))
        check(recv_exact(s, 7) == b"+PONG\r\n", "serves after the abuse")
        s.close()
        open_ = [connect(srv.port) for _ in range(10)]
        open_[0].sendall(b"*3\r\n$3\r\nSET\r\n")
        took = srv.stop()
        check(took <= SHUTDOWN_S + 5, "shutdown took %.1f s" % took)
        for s in open_:
            recv_until_closed(s)
            s.close()
    finally:
        srv.kill()


SUITES = {
    "echo": suite_echo, "echo-abuse": suite_echo_abuse,
    "http": suite_http, "http-abuse": suite_http_abuse,
    "kv": suite_kv, "kv-abuse": suite_kv_abuse,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in SUITES:
        print("usage: servers.py {%s} BINARY" % ",".join(SUITES), file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        rc = SUITES[sys.argv[1]](sys.argv[2])
    except Failure as e:
        print("FAILED: %s" % e)
        return 1
    if rc == SKIP:
        return SKIP
    print("passed in %.1f s" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
