"""A small Flask application served by plugd in tests/wsgi.rs and by bench/wsgi.sh: pages, a form POST, a
JSON API, a streamed response and a file upload."""

import hashlib
import threading

from flask import Flask, Response, jsonify, redirect, request, stream_with_context, url_for

app = Flask(__name__)

items = {}
items_lock = threading.Lock()


@app.get("/")
def hello():
    return "Hello, World!", 200, {"Content-Type": "text/plain"}


@app.get("/json")
def json_hello():
    return jsonify(message="Hello, World!")


@app.get("/greet/<name>")
def greet(name):
    return f"<p>Hello, {name}!</p>"


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "POST":
        name = request.form.get("name", "")
        if not name:
            return "name is required", 400
        return redirect(url_for("greet", name=name))
    return '<form method="post"><input name="name"><button>Send</button></form>'


@app.get("/api/items")
def list_items():
    with items_lock:
        return jsonify(sorted(items.values(), key=lambda item: item["id"]))


@app.post("/api/items")
def create_item():
    data = request.get_json()
    if not isinstance(data, dict) or "name" not in data:
        return jsonify(error="a JSON object with a name is required"), 400
    with items_lock:
        item = {"id": len(items) + 1, "name": data["name"]}
        items[item["id"]] = item
    return jsonify(item), 201, {"Location": url_for("get_item", item_id=item["id"])}


@app.get("/api/items/<int:item_id>")
def get_item(item_id):
    with items_lock:
        item = items.get(item_id)
    if item is None:
        return jsonify(error=f"no item {item_id}"), 404
    return jsonify(item)


@app.get("/stream")
def stream():
    count = request.args.get("n", 5, type=int)

    def lines():
        for i in range(count):
            yield f"line {i} of {count}\n"

    return Response(stream_with_context(lines()), mimetype="text/plain")


@app.post("/upload")
def upload():
    file = request.files.get("file")
    if file is None:
        return jsonify(error="no file"), 400
    data = file.read()
    return jsonify(filename=file.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                   note=request.form.get("note"))


@app.get("/boom")
def boom():
    raise RuntimeError("Flask route failed on purpose")
