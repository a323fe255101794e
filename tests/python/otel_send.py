"""Sends flat JSON events (contract section 3) to Cordon with the real OpenTelemetry
Python SDK: one LoggerProvider per producer (host and service) as each endpoint would
have, a BatchLogRecordProcessor, and the chosen OTLP exporter.

usage: otel_send.py --exporter grpc|http-protobuf|http-json --endpoint URL --events FILE
                    [--gzip] [--body TEXT]
Exits 1 if any export failed, and prints what the exporter said.

Credentials and TLS come the way a real endpoint gives them, from the SDK's own
environment variables: OTEL_EXPORTER_OTLP_HEADERS ("authorization=Bearer%20<token>"),
OTEL_EXPORTER_OTLP_CERTIFICATE (the CA that signed Cordon's certificate), and
OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / OTEL_EXPORTER_OTLP_CLIENT_KEY (mutual TLS).
"""

import argparse
import json
import os
import sys

from opentelemetry.sdk._logs.export import LogRecordExportResult
from sdk_producers import emit_per_producer, load_events


class RecordingExporter:
    """Delegates to a real exporter and remembers every result."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, batch):
        result = self.inner.export(batch)
        self.results.append(result)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def make_exporter(kind, endpoint):
    if kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        # https:// endpoints use TLS with the OTEL_EXPORTER_OTLP_CERTIFICATE variables.
        return OTLPLogExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"))
    if kind == "http-protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint)
    if kind == "http-json":
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint)
    raise SystemExit(f"unknown exporter {kind}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--exporter", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--body", default=None)
    args = parser.parse_args()
    if args.gzip:
        os.environ["OTEL_EXPORTER_OTLP_LOGS_COMPRESSION"] = "gzip"

    events = load_events(args.events)
    exporters = emit_per_producer(
        events,
        lambda _host: RecordingExporter(make_exporter(args.exporter, args.endpoint)),
        batch_size=200,
        body=args.body,
    )

    results = [result for exporter in exporters for result in exporter.results]
    failed = [result for result in results if result != LogRecordExportResult.SUCCESS]
    print(json.dumps({"exports": len(results), "failed": len(failed), "events": len(events)}))
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
