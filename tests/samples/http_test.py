#!/usr/bin/env python3
"""Drives samples/http_server from outside with clients weft did not write:
curl and Python's http.client (plus raw sockets for what those cannot send).

  http_test.py HTTP_SERVER_BINARY

Checks keep-alive reuse, pipelined requests, the body limit (413), the
request deadline against a slow client (408), malformed requests (400),
resets in the middle of a request, and SIGTERM: the server survives every
client and exits 0 with "stopped cleanly". Loopback only; every wait has a
deadline.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time


def fail(message, server=None):
    detail = ""
    if server is not None:
        detail = "\n--- server stderr ---\n" + server.stderr_text()
    sys.exit("FAILED: " + message + detail)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    fail("timed out waiting for " + what)


class Server:
    def __init__(self, binary, *args):
        self.dir = tempfile.mkdtemp(prefix="weft-http-test-")
        self.err_path = os.path.join(self.dir, "stderr")
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.kill()
            fail("no port line from the server: %r" % line)
        self.port = int(m.group(1))

    def stderr_text(self):
        self.err.flush()
        with open(self.err_path) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("the server did not stop within 15 s of SIGTERM", self)
        if self.proc.returncode != 0 or "stopped cleanly" not in out:
            fail("the server exited with %s: %r" % (self.proc.returncode, out), self)
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.settimeout(10)
        return s


def read_responses(sock, count):
    """Reads `count` HTTP responses (with Content-Length) from a raw socket."""
    data = b""
    responses = []
    while len(responses) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1")
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            length = int(m.group(1)) if m else 0
            if len(data) >= head_end + 4 + length:
                status = int(head.split(" ", 2)[1])
                body = data[head_end + 4:head_end + 4 + length]
                responses.append((status, head, body))
                data = data[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return responses


def test_curl_keepalive(binary):
    server = Server(binary)
    try:
        url = "http://127.0.0.1:%d" % server.port
        r = subprocess.run(["curl", "-sS", "-v", url + "/", url + "/async", url + "/legacy", url + "/nowhere"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            fail("curl failed: " + r.stderr, server)
        if r.stdout != "hello from weft\nWEFT 42.00\nreport from a blocking call\nnot found\n":
            fail("curl got %r" % r.stdout, server)
        if r.stderr.count("Re-using existing connection") < 3:
            fail("curl did not reuse its connection:\n" + r.stderr, server)
        post = subprocess.run(["curl", "-sS", "--data-binary", "@-", url + "/echo"], input="posted body",
                              capture_output=True, text=True, timeout=30)
        if post.stdout != "posted body":
            fail("curl POST /echo got %r" % post.stdout, server)
        server.stop()
    finally:
        server.kill()
    print("ok: curl, keep-alive reuse over 4 requests, POST")


def test_http_client(binary):
    server = Server(binary, "--body-limit", "100000")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for i in range(50):  # one connection, 50 requests
            body = ("request %d " % i) * 100
            conn.request("POST", "/echo", body=body)
            r = conn.getresponse()
            got = r.read().decode()
            if r.status != 200 or got != body:
                fail("http.client request %d: %s %r" % (i, r.status, got[:80]), server)
        conn.request("POST", "/echo", body=b"x" * 200000)  # above the body limit
        r = conn.getresponse()
        r.read()
        if r.status != 413 or r.getheader("Connection", "").lower() != "close":
            fail("an oversized body got %s (Connection: %s)" % (r.status, r.getheader("Connection")), server)
        conn.close()
        if not server.alive():
            fail("the server died", server)
        server.stop()
    finally:
        server.kill()
    print("ok: http.client, 50 requests on one connection, oversized body -> 413")


def test_pipelined(binary):
    server = Server(binary)
    try:
        s = server.connect()
        requests = b"".join(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" for _ in range(20))
        requests += b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        s.sendall(requests)
        responses = read_responses(s, 21)
        if len(responses) != 21 or any(st != 200 for st, _, _ in responses):
            fail("pipelined: got %d responses: %r" % (len(responses), [st for st, _, _ in responses]), server)
        if responses[-1][2] != b"hello":
            fail("pipelined POST answered %r" % responses[-1][2], server)
        s.close()
        server.stop()
    finally:
        server.kill()
    print("ok: 21 pipelined requests answered in order")


def test_malformed(binary):
    server = Server(binary)
    try:
        for garbage in [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                        b"POST /echo HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"\x00\x01\x02\r\n\r\n"]:
            s = server.connect()
            s.sendall(garbage)
            responses = read_responses(s, 1)
            if not responses or responses[0][0] != 400:
                fail("malformed request %r got %r" % (garbage, responses), server)
            if s.recv(1) != b"":  # and the server closed the connection
                fail("the connection stayed open after a 400", server)
            s.close()
        # Resets in the middle of a request, in the middle of a body, and before anything.
        for partial in [b"GET / HT", b"POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc", b""]:
            s = server.connect()
            s.sendall(partial)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(0.2)
        if not server.alive():
            fail("the server died after resets", server)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/")
        if conn.getresponse().read() != b"hello from weft\n":
            fail("no answer after the malformed requests", server)
        conn.close()
        server.stop()
    finally:
        server.kill()
    print("ok: malformed requests -> 400 and close; resets mid-request; still serving")


def test_slow_client(binary):
    server = Server(binary, "--deadline", "1", "--idle", "30")
    try:
        s = server.connect()
        start = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\n")
        # A slowloris: one header byte every 0.2 s, never finishing in time.
        closed_by_server = False
        try:
            for _ in range(40):
                time.sleep(0.2)
                s.sendall(b"X")
        except (BrokenPipeError, ConnectionResetError):
            closed_by_server = True
        responses = [] if closed_by_server else read_responses(s, 1)
        elapsed = time.monotonic() - start
        if not closed_by_server and (not responses or responses[0][0] != 408):
            fail("the slow client got %r" % responses, server)
        if elapsed > 6:
            fail("the deadline took %.1f s" % elapsed, server)
        s.close()
        server.stop()
    finally:
        server.kill()
    print("ok: a slow client gets 408 at its request deadline")


def test_idle_and_shutdown(binary):
    server = Server(binary, "--idle", "1", "--grace", "20")
    try:
        idle = server.connect()  # connects, never sends: closed by the idle timeout
        start = time.monotonic()
        if idle.recv(1) != b"":
            fail("the idle connection got data", server)
        if time.monotonic() - start > 5:
            fail("the idle timeout took too long", server)
        # A keep-alive connection between requests at SIGTERM is closed at once,
        # not after the grace.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/")
        conn.getresponse().read()
        server.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: server.proc.poll() is not None, 5, "the server to exit after SIGTERM")
        if server.proc.returncode != 0:
            fail("exit status %s" % server.proc.returncode, server)
        out = server.proc.stdout.read()
        if "stopped cleanly" not in out:
            fail("no clean stop: %r" % out, server)
        conn.close()
    finally:
        server.kill()
    print("ok: idle connections closed; SIGTERM drops idle keep-alive connections at once and exits 0")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: http_test.py HTTP_SERVER_BINARY")
    binary = sys.argv[1]
    if shutil.which("curl") is None:
        sys.exit("curl is not installed")
    for test in (test_curl_keepalive, test_http_client, test_pipelined, test_malformed, test_slow_client,
                 test_idle_and_shutdown):
        test(binary)


if __name__ == "__main__":
    main()
