"""Sends metrics to Cordon with the real OpenTelemetry Python SDK, as an agent does
beside its logs: a MeterProvider with a counter, a histogram and a gauge, collected
once and exported by the chosen OTLP metric exporter.

usage: otel_metrics.py --exporter grpc|http-protobuf|http-json --endpoint URL
Prints the number of data points sent; exits 1 if the export failed. Credentials come
from OTEL_EXPORTER_OTLP_HEADERS, as for a real agent.
"""

import argparse
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource


def make_exporter(kind, endpoint):
    if kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"))
    if kind == "http-protobuf":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
    if kind == "http-json":
        from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
    raise SystemExit(f"unknown exporter {kind}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--exporter", required=True)
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=Resource.create({"service.name": "claude-code", "host.id": "wks-metrics"}),
        metric_readers=[reader],
    )
    meter = provider.get_meter("com.anthropic.claude_code")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    for kind in ["input", "output", "cacheRead"]:
        tokens.add(100, {"type": kind, "session.id": "s-1"})
    meter.create_histogram("claude_code.tool.duration", unit="ms").record(114, {"tool_name": "Bash"})
    meter.create_up_down_counter("claude_code.session.active").add(1)
    data = reader.get_metrics_data()
    points = sum(
        len(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )
    result = make_exporter(args.exporter, args.endpoint).export(data)
    print(points)
    return 0 if result == MetricExportResult.SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main())
