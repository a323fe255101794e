"""Writes the fuzz targets' seed corpora from real producers: the OpenTelemetry Python
SDK's OTLP/HTTP protobuf and JSON exporters send the rules' fixture events to a local
capture server; flat JSON and OPA seeds are the fixtures' events and OPA's decision-log
shape. Run with the test virtualenv's Python from the repository root:
    $CORDON_VENV/bin/python fuzz/make_seeds.py
"""

import datetime
import glob
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")
FIXTURES = sorted(glob.glob(os.path.join(ROOT, "detections/rules/*/tests/*.jsonl")))


def write(target, data, corpus=CORPUS):
    directory = os.path.join(corpus, target)
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as out:
        out.write(data)


class Capture(http.server.BaseHTTPRequestHandler):
    target = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        write(Capture.target, body)
        self.send_response(200)
        kind = self.headers.get("Content-Type", "application/x-protobuf")
        self.send_header("Content-Type", kind)
        self.end_headers()
        self.wfile.write(b"{}" if "json" in kind else b"")

    def log_message(self, *args):
        pass


def capture_sdk(exporter, target, fixtures):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Capture)
    Capture.target = target
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}/v1/logs"
    for fixture in fixtures:
        # Fixtures have comment lines; the sender reads plain JSON lines.
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as events:
            events.writelines(json.dumps(nanos(event)) + "\n" for event in events_of(fixture))
            events.flush()
            subprocess.run(
                [sys.executable, os.path.join(ROOT, "tests/python/otel_send.py"),
                 "--exporter", exporter, "--endpoint", endpoint, "--events", events.name],
                check=True, stdout=subprocess.DEVNULL,
            )
    server.shutdown()


def nanos(event):
    """The sender takes times as Unix nanoseconds; fixtures write RFC 3339."""
    when = datetime.datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    return dict(event, time=int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000)


def events_of(fixture):
    with open(fixture) as lines:
        return [json.loads(line) for line in lines if line.strip() and not line.startswith("#")]


def rule_seeds():
    """Seeds for fuzz/rules: every rule as `rule.toml`, `---`, `input.sql`, `---`,
    `match.sql` (rule_load), and its SQL with the parameters filled in (hunt_guard)."""
    corpus = os.path.join(HERE, "rules", "corpus")
    for rule in sorted(glob.glob(os.path.join(ROOT, "detections/rules/*/rule.toml"))):
        folder = os.path.dirname(rule)
        texts = [open(os.path.join(folder, name)).read()
                 for name in ("rule.toml", "input.sql", "match.sql")]
        write("rule_load", "\n---\n".join(texts).encode(), corpus)
        for sql in texts[1:]:
            filled = re.sub(r"\$\{window\}|\$\{lateness\}", "INTERVAL '60000 milliseconds'", sql)
            write("hunt_guard", re.sub(r"\$\{[a-z_]+\}", "'x'", filled).encode(), corpus)
    for hunt in ("SELECT kind, count(*) FROM events GROUP BY kind",
                 "SELECT * FROM events WHERE host_id = 'wks-1' AND time > now() - INTERVAL '1 hour' LIMIT 10",
                 "WITH d AS (SELECT user_id FROM events WHERE kind = 'policy.decision') SELECT count(*) FROM d",
                 "SELECT 1+1+1", "DROP TABLE events", "COPY events TO 'x'"):
        write("hunt_guard", hunt.encode(), corpus)
    for target in ("rule_load", "hunt_guard"):
        print(target, len(os.listdir(os.path.join(corpus, target))), "seeds")


def main():
    # One fixture per rule is enough variety for the SDK captures.
    per_rule = {}
    for fixture in FIXTURES:
        per_rule.setdefault(fixture.split("/rules/")[1].split("/")[0], fixture)
    capture_sdk("http-protobuf", "otlp_protobuf", per_rule.values())
    capture_sdk("http-json", "otlp_json", per_rule.values())
    for fixture in per_rule.values():
        events = events_of(fixture)
        write("flat_json", json.dumps(events).encode())
        write("flat_json", json.dumps(events[0]).encode())
    decisions = [
        {"decision_id": "0b7e3c52-7d7a-4c6e-9a51-000000000001", "path": "cowork/file/allow",
         "timestamp": "2026-01-15T10:00:00.123456789Z",
         "input": {"user": "alice", "gen_ai.agent.id": "a1", "action": "file.read",
                   "path": "/srv/finance/q3.xlsx"},
         "result": {"allow": False, "reason": "path not allowed for agents"},
         "labels": {"id": "opa-1", "version": "v0.70.0", "host.id": "wks-1"},
         "metrics": {"timer_server_handler_ns": 1200}},
        {"decision_id": "0b7e3c52-7d7a-4c6e-9a51-000000000002", "path": "cowork/network/allow",
         "timestamp": "2026-01-15T10:00:01Z",
         "input": {"user": {"name": "bob"}, "action": "net.connect",
                   "destination": {"host": "api.example.com", "port": 443}},
         "result": True, "labels": {"host.id": "wks-2"}},
    ]
    write("opa_logs", json.dumps(decisions).encode())
    write("opa_logs", json.dumps(decisions[0]).encode())
    for target in ("otlp_protobuf", "otlp_json", "flat_json", "opa_logs"):
        print(target, len(os.listdir(os.path.join(CORPUS, target))), "seeds")
    rule_seeds()


if __name__ == "__main__":
    main()
