"""Flat JSON events (contract section 3) emitted through the OpenTelemetry Python SDK as
each endpoint would: one LoggerProvider per producer (host, host name, service) with that
resource, and a BatchLogRecordProcessor around the exporter the caller gives."""

import json

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

RESOURCE_KEYS = ("host.id", "host.name", "service.name")


def load_events(path):
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def emit_per_producer(events, make_exporter, batch_size, body=None, **processor_options):
    """Emits `events` producer by producer; `make_exporter(host_id)` gives each its exporter.
    Returns the exporters, in producer order, once every provider has shut down."""
    producers = {}
    for event in events:
        key = tuple(event.get(name) for name in RESOURCE_KEYS)
        producers.setdefault(key, []).append(event)
    exporters = []
    for key, group in producers.items():
        resource = Resource.create({name: value for name, value in zip(RESOURCE_KEYS, key) if value is not None})
        exporter = make_exporter(key[0])
        exporters.append(exporter)
        provider = LoggerProvider(resource=resource)
        provider.add_log_record_processor(
            BatchLogRecordProcessor(exporter, max_export_batch_size=batch_size, **processor_options)
        )
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
                body=body,
            )
        provider.shutdown()
    return exporters
