"""Sends flat JSON events (contract section 3) to Cordon with the real OpenTelemetry
Python SDK: one LoggerProvider per producer (host and service) as each endpoint would
have, a BatchLogRecordProcessor, and the chosen OTLP exporter.

usage: otel_send.py --exporter grpc|http-protobuf|http-json --endpoint URL --events FILE
                    [--gzip] [--body TEXT]
Exits 1 if any export failed, and prints what the exporter said.
"""

import argparse
import json
import os
import sys

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

RESOURCE_KEYS = ("host.id", "host.name", "service.name")


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

        return OTLPLogExporter(endpoint=endpoint, insecure=True)
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

    with open(args.events) as handle:
        events = [json.loads(line) for line in handle if line.strip()]

    producers = {}
    for event in events:
        key = tuple(event.get(name) for name in RESOURCE_KEYS)
        producers.setdefault(key, []).append(event)

    exporters = []
    for key, group in producers.items():
        resource = Resource.create({name: value for name, value in zip(RESOURCE_KEYS, key) if value is not None})
        exporter = RecordingExporter(make_exporter(args.exporter, args.endpoint))
        exporters.append(exporter)
        provider = LoggerProvider(resource=resource)
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=200))
        logger = provider.get_logger("cordon.tests")
        for event in group:
            attributes = {
                name: value
                for name, value in event.items()
                if name not in RESOURCE_KEYS and name not in ("time", "event.name")
            }
            logger.emit(
                timestamp=int(event["time"]),
                event_name=event["event.name"],
                attributes=attributes,
                body=args.body,
            )
        provider.shutdown()

    results = [result for exporter in exporters for result in exporter.results]
    failed = [result for result in results if result != LogRecordExportResult.SUCCESS]
    print(json.dumps({"exports": len(results), "failed": len(failed), "events": len(events)}))
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
