#!/usr/bin/env python3
"""Resets connections mid-request until the deadline: connect, send part of a request, close with SO_LINGER 0
(an RST, not a FIN). Usage: reset_client.py PORT SECONDS. Prints how many resets it made. 127.0.0.1 only."""

import socket
import struct
import sys
import time

PARTIALS = [
    b"GET /plaintext HTTP/1.1\r\nHo",                                             # inside the head
    b"POST /echo HTTP/1.1\r\nHost: r\r\nContent-Length: 4096\r\n\r\n" + b"x" * 100,  # inside a body
    b"POST /echo HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",  # inside a chunk
    b"GET /static/test.html HTTP/1.1\r\nHost: r\r\n\r\nGET /plain",               # one whole, one partial
]


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    deadline = time.time() + seconds
    resets = errors = 0
    linger = struct.pack("ii", 1, 0)
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(PARTIALS[resets % len(PARTIALS)])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            s.close()
            resets += 1
        except OSError:
            errors += 1
            time.sleep(0.01)
        # About 200 resets a second: a steady stream, not a flood that would only measure accept().
        time.sleep(0.005)
    print(f"reset client: {resets} connections reset mid-request, {errors} connect/send errors")


if __name__ == "__main__":
    main()
