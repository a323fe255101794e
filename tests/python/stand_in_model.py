"""A local stand-in for the Anthropic Messages API, so that the real Claude Code CLI can
run without a model: its first answer to a request that offers the shell tool (`Bash`)
is a call to that tool running the command given on the command line; once the tool's
result comes back, and to every other request (titles, summaries), it answers with text.

Usage: stand_in_model.py PORT_FILE COMMAND
Writes the port it listens on to PORT_FILE and serves until killed; `{port}` in COMMAND
is that port (so the command can reach this server, `GET /probe`, without a network).
Each request's path is appended to PORT_FILE + ".log" so a test can tell the CLI really
asked.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT_FILE, COMMAND = sys.argv[1], sys.argv[2]


def has_tool_result(messages):
    last = messages[-1] if messages else {}
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def offers_shell(body):
    return any(tool.get("name") == "Bash" for tool in body.get("tools") or [])


def events(model, blocks, stop_reason):
    message = {
        "id": "msg_stand_in",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    yield "message_start", {"type": "message_start", "message": message}
    for index, block in enumerate(blocks):
        if block["type"] == "tool_use":
            start = dict(block, input={})
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            yield "content_block_start", {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            delta = {"type": "text_delta", "text": block["text"]}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": 9},
    }
    yield "message_stop", {"type": "message_stop"}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        with open(PORT_FILE + ".log", "a") as log:
            log.write("GET " + self.path + "\n")
        self.respond_json({"ok": True})

    def do_HEAD(self):
        self.send_response(200)
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with open(PORT_FILE + ".log", "a") as log:
            log.write(self.path + "\n")
        if not self.path.startswith("/v1/messages") or self.path.startswith("/v1/messages/count_tokens"):
            self.respond_json({"input_tokens": 12})
            return
        model = body.get("model", "stand-in")
        if offers_shell(body) and not has_tool_result(body.get("messages", [])):
            blocks = [
                {
                    "type": "tool_use",
                    "id": "toolu_stand_in_01",
                    "name": "Bash",
                    "input": {"command": COMMAND, "description": "Check the endpoint"},
                }
            ]
            stop = "tool_use"
        else:
            blocks = [{"type": "text", "text": os.environ.get("STAND_IN_ANSWER", "Done.")}]
            stop = "end_turn"
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for name, data in events(model, blocks, stop):
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
            return
        self.respond_json(
            {
                "id": "msg_stand_in",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 9},
            }
        )

    def respond_json(self, value):
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
COMMAND = COMMAND.replace("{port}", str(server.server_address[1]))
with open(PORT_FILE + ".tmp", "w") as out:
    out.write(str(server.server_address[1]))
os.replace(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
