"""The two benchmark endpoints as a bare WSGI callable (no framework), so the figures show what each server
adds around Python rather than what Flask costs."""

import json

HELLO = b"Hello, World!"


def app(environ, start_response):
    if environ["PATH_INFO"] == "/json":
        body = json.dumps({"message": "Hello, World!"}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]
