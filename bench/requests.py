#!/usr/bin/env python3
"""A deterministic HTTP/1.1 client for instruction counts: COUNT keep-alive requests on one connection,
each sent after the previous response was read whole (or DEPTH at a time, pipelined), the same bytes
every run, so a server's instruction count is exactly repeatable.

usage: bench/requests.py PORT PATH COUNT [--depth D] [--body BYTES]
  Sends what wrk sends (`GET PATH HTTP/1.1`, `Host: 127.0.0.1:PORT`); with --body, a POST of that many
  bytes (Content-Length) as wrk's echo scenario does. Exits 1 on any response that is not 200.
"""
import argparse
import socket
import sys


def request_bytes(port, path, body):
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {body}\r\n\r\n"
    return head.encode() + b"x" * body


class Reader:
    """Reads whole responses (Content-Length framed) from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buf) < length:
            self.fill()
        self.buf = self.buf[length:]
        return status


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("count", type=int)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--body", type=int)
    args = parser.parse_args()
    one = request_bytes(args.port, args.path, args.body)
    sock = socket.create_connection(("127.0.0.1", args.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = Reader(sock)
    left = args.count
    while left > 0:
        batch = min(args.depth, left)
        sock.sendall(one * batch)
        for _ in range(batch):
            status = reader.response()
            if status != 200:
                print(f"got status {status}", file=sys.stderr)
                sys.exit(1)
        left -= batch
    sock.close()


if __name__ == "__main__":
    main()
