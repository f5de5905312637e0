"""WSGI applications served by plugd in tests/wsgi.rs, one per path, each wrapped in the standard library's
wsgiref.validate.validator with its warnings turned into errors: any breach of PEP 3333 by plugd (or by
the application) raises, which plugd answers with a 500 and logs with the traceback.

Paths under /raw/ are served without the validator: they break the rules on purpose (a header with CR LF),
or block, or report what the other applications saw.
"""

import contextvars
import io
import json
import os
import sys
import threading
import time
import urllib.parse
import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

# How many returned iterables plugd has closed, by path: close() must be called even when iterating raised.
closed = {}
closed_lock = threading.Lock()

# Exceptions Python could not raise anywhere, such as the validator's "Iterator garbage collected without
# being closed" from a __del__: reported by /raw/closed, so a test sees them.
unraisable = []
sys.unraisablehook = lambda hook_args: unraisable.append(repr(hook_args.exc_value))

# Set by /raw/release: /raw/block waits for it, to prove that a blocked application stalls nothing else.
released = threading.Event()
blocked_now = 0


def record_close(path):
    with closed_lock:
        closed[path] = closed.get(path, 0) + 1


class Tracked:
    """An iterable with close(), counting its closes under its path."""

    def __init__(self, path, chunks, fail_after=None):
        self.path = path
        self.chunks = chunks
        self.fail_after = fail_after

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("failed while producing the body")
            yield chunk

    def close(self):
        record_close(self.path)


ENVIRON_KEYS = [
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "wsgi.url_scheme", "wsgi.multithread",
    "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated",
]


def text(start_response, body, status="200 OK", content_type="text/plain; charset=utf-8"):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def environ_app(environ, start_response):
    seen = {key: environ.get(key) for key in ENVIRON_KEYS}
    seen["wsgi.version"] = list(environ["wsgi.version"])
    seen["HTTP"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    seen["types"] = sorted({type(v).__name__ for k, v in environ.items() if k.isupper()})
    return text(start_response, json.dumps(seen).encode(), content_type="application/json")


def form_app(environ, start_response):
    # A chunked upload has no CONTENT_LENGTH: wsgi.input_terminated says reading to the end is safe.
    length = environ.get("CONTENT_LENGTH")
    body = environ["wsgi.input"].read(int(length) if length else -1)
    fields = dict(pair.split("=", 1) for pair in body.decode().split("&") if pair)
    return text(start_response, json.dumps(fields).encode(), content_type="application/json")


def lines_app(environ, start_response):
    stream = environ["wsgi.input"]
    first = stream.readline()
    partial = stream.readline(3)
    two = stream.readlines(1)
    rest = [line for line in stream]
    after = stream.read(10)
    report = {"first": first.decode(), "partial": partial.decode(), "hinted": [l.decode() for l in two],
              "rest": [l.decode() for l in rest], "after": after.decode()}
    return text(start_response, json.dumps(report).encode(), content_type="application/json")


def upload_app(environ, start_response):
    stream = environ["wsgi.input"]
    total, chunks = 0, 0
    while True:
        chunk = stream.read(1000)
        if not chunk:
            break
        total += len(chunk)
        chunks += 1
    return text(start_response, f"{total} bytes in {chunks} reads".encode())


def stream_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Tracked("/stream", [b"one ", b"", b"two ", b"three"])


def write_app(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return Tracked("/write", [b"then returned"])


def error_before_app(environ, start_response):
    raise ValueError("the application failed before start_response")


def error_after_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Tracked("/error-after", [b"partial ", b"never"], fail_after=1)


def exc_info_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise KeyError("missing thing")
    except KeyError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "5")],
                       sys.exc_info())
        return [b"handled with exc_info"]


def file_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](open(__file__, "rb"), 4096)


def errors_app(environ, start_response):
    errors = environ["wsgi.errors"]
    print("a line for plugd's log", file=errors)
    errors.writelines(["first of two\n", "second of two\n"])
    errors.flush()
    return text(start_response, b"logged")


def status_app(environ, start_response):
    code = environ["PATH_INFO"].rsplit("/", 1)[-1]
    reasons = {"201": "Created", "204": "No Content", "404": "Not Found", "418": "I'm a teapot"}
    if code == "204":
        start_response("204 No Content", [])
        return []
    return text(start_response, f"status {code}".encode(), status=f"{code} {reasons.get(code, 'Other')}")


def latin1_app(environ, start_response):
    # PATH_INFO and header values are latin-1 native strings: the bytes received, one code point each.
    path = environ["PATH_INFO"].encode("latin-1")
    header = environ.get("HTTP_X_LATIN", "").encode("latin-1")
    return text(start_response, path + b"|" + header)


VALIDATED = {
    "/environ": environ_app,
    "/form": form_app,
    "/lines": lines_app,
    "/upload": upload_app,
    "/stream": stream_app,
    "/write": write_app,
    "/error-before": error_before_app,
    "/error-after": error_after_app,
    "/exc-info": exc_info_app,
    "/file": file_app,
    "/errors": errors_app,
}


def raw_crlf_header(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Injected", "a\r\nSet-Cookie: evil=1")])
    return [b"should never be sent"]


def raw_block(environ, start_response):
    global blocked_now
    with closed_lock:
        blocked_now += 1
    released.wait(60)
    with closed_lock:
        blocked_now -= 1
    return text(start_response, b"released")


def raw_blocked(environ, start_response):
    with closed_lock:
        return text(start_response, str(blocked_now).encode())


def raw_release(environ, start_response):
    released.set()
    return text(start_response, b"released all")


def raw_wait_for_file(environ, start_response):
    """Waits (releasing the GIL) until the file named by the query exists: released from outside plugd,
    when every Python thread may be taken."""
    path = urllib.parse.unquote(environ["QUERY_STRING"])
    print(f"waiting for {path}", file=environ["wsgi.errors"])
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return text(start_response, b"released")


class Unreadable(io.FileIO):
    """A real file whose reads in Python fail: answered in full only when plugd sends the file itself."""

    def read(self, *args):
        raise AssertionError("the file was read in Python instead of being sent by plugd")

    readall = readinto = read


def raw_file(environ, start_response):
    query = urllib.parse.parse_qs(environ["QUERY_STRING"])
    wrapped = Unreadable(__file__)
    wrapped.seek(int(query.get("from", ["0"])[0]))
    headers = [("Content-Type", "text/x-python")]
    if "length" in query:
        headers.append(("Content-Length", query["length"][0]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](wrapped)


def raw_file_like(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"not a file " * 1000), 100)


def raw_closed(environ, start_response):
    with closed_lock:
        report = {"closed": closed, "unraisable": unraisable}
    return text(start_response, json.dumps(report).encode(), content_type="application/json")


def raw_extensions(environ, start_response):
    import _ctypes
    import numpy
    return text(start_response, f"{_ctypes.__name__} numpy {numpy.arange(5).sum()}".encode())


stream_released = threading.Event()


def raw_slow_stream(environ, start_response):
    def body():
        yield b"first\n"
        stream_released.wait(60)
        yield b"second\n"

    start_response("200 OK", [("Content-Type", "text/plain")])
    return body()


def raw_release_stream(environ, start_response):
    stream_released.set()
    return text(start_response, b"released the stream")


def raw_endless(environ, start_response):
    def forever():
        while True:
            yield b"x" * 4096

    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Tracked("/raw/endless", forever())


def raw_line_by_line(environ, start_response):
    count = 0
    for line in environ["wsgi.input"]:
        count += 1
        print(f"line {count}: {line.decode().strip()}", file=environ["wsgi.errors"])
    return text(start_response, f"{count} lines".encode())


# Set by each /raw/context request to its query: no request may find another's value.
request_var = contextvars.ContextVar("request_var", default="unset")
# What each /raw/context request's close() found, by query.
closed_with = {}


class ContextReport:
    """A streamed body that reads the context variable in each step of its request."""

    def __init__(self, query, found):
        self.query = query
        self.found = found

    def __iter__(self):
        yield f"found {self.found}\n".encode()
        yield f"next {request_var.get()}\n".encode()
        yield f"then {request_var.get()}\n".encode()

    def close(self):
        with closed_lock:
            closed_with[self.query] = request_var.get()


def raw_context(environ, start_response):
    query = environ["QUERY_STRING"]
    if query == "closed":
        with closed_lock:
            return text(start_response, json.dumps(closed_with).encode(), content_type="application/json")
    found = request_var.get()
    request_var.set(query)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ContextReport(query, found)


def raw_not_bytes(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


def raw_no_start(environ, start_response):
    return [b"body without start_response"]


RAW = {
    "/raw/crlf-header": raw_crlf_header,
    "/raw/block": raw_block,
    "/raw/blocked": raw_blocked,
    "/raw/release": raw_release,
    "/raw/wait-for-file": raw_wait_for_file,
    "/raw/file": raw_file,
    "/raw/file-like": raw_file_like,
    "/raw/closed": raw_closed,
    "/raw/extensions": raw_extensions,
    "/raw/not-bytes": raw_not_bytes,
    "/raw/line-by-line": raw_line_by_line,
    "/raw/slow-stream": raw_slow_stream,
    "/raw/release-stream": raw_release_stream,
    "/raw/endless": raw_endless,
    "/raw/no-start": raw_no_start,
    "/raw/context": raw_context,
}


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path in RAW:
        return RAW[path](environ, start_response)
    if path.startswith("/status/"):
        return validator(status_app)(environ, start_response)
    if path.startswith("/latin1/"):
        return validator(latin1_app)(environ, start_response)
    app = VALIDATED.get(path)
    if app is None:
        return text(start_response, f"no test application at {path}".encode(), status="404 Not Found")
    return validator(app)(environ, start_response)
