"""A tracer provider exporting to Cordon as a real agent process would set one up:
OTLP/HTTP protobuf to `$CORDON_OTLP_HTTP/v1/traces`, or OTLP/gRPC to
`$CORDON_OTLP_GRPC` when that is set, the producer's bearer token in `authorization`,
the resource from `OTEL_RESOURCE_ATTRIBUTES` plus `service.name`; compression as
`OTEL_EXPORTER_OTLP_COMPRESSION` says."""

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def tracer_provider(service_name: str) -> TracerProvider:
    headers = {}
    token = os.environ.get("CORDON_TOKEN")
    if token:
        headers["authorization"] = f"Bearer {token}"
    if os.environ.get("CORDON_OTLP_GRPC"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=os.environ["CORDON_OTLP_GRPC"], insecure=True, headers=headers)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=os.environ["CORDON_OTLP_HTTP"] + "/v1/traces", headers=headers)
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    return provider
