"""An independent Kafka client for Cordon's Kafka tests (confluent-kafka, librdkafka 2.16).

  produce  --brokers B --topic T --format otlp_proto|otlp_json|json --events FILE
           Produces flat JSON events (contract section 3). OTLP formats are encoded by
           the OpenTelemetry Python SDK's own OTLP encoders (as the Collector's Kafka
           exporter writes them): one ExportLogsServiceRequest per message, per producer
           (host, service), keyed by host.id. `json` writes one event per message.
           --raw TEXT produces TEXT as one extra message (a poison message).
           --one-per-batch puts each message in a record batch of its own.
  consume  --brokers B --topic T --count N [--timeout S]
           Prints up to N messages as JSON lines: key, value, headers, partition, offset.
  resume-check --brokers B --topic T [--one-per-batch]
           The broker soundness test: 300 messages produced in batches (or one per record
           batch) to a one-partition topic, 100 consumed and committed, the consumer
           restarted in the same group: it must get the other 200. Exits 1 otherwise.
  create-topics --brokers B --topic T:PARTITIONS ...
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from sdk_producers import emit_per_producer, load_events



def producer(brokers, **extra):
    return Producer({"bootstrap.servers": brokers, "linger.ms": 20, **extra})


def deliver_all(prod, topic, sent):
    failures = []

    def report(error, _message):
        if error is not None:
            failures.append(str(error))

    for key, value in sent:
        while True:
            try:
                prod.produce(topic, value=value, key=key, on_delivery=report)
                break
            except BufferError:
                prod.poll(0.1)
        prod.poll(0)
    remaining = prod.flush(60)
    if failures or remaining:
        raise SystemExit(f"produce failed: {failures[:3]} ({remaining} not delivered)")


class KafkaLogExporter:
    """An SDK log exporter that writes each export batch as one Kafka message."""

    def __init__(self, encode, host):
        self.encode = encode
        self.host = host
        self.messages = []

    def export(self, batch):
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        self.messages.append((self.host, self.encode(batch)))
        return LogRecordExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def otlp_messages(events, fmt, per_message):
    if fmt == "otlp_proto":
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        def encode(batch):
            return encode_logs(batch).SerializeToString()

    else:
        from opentelemetry.exporter.otlp.json.common._log_encoder import encode_logs

        def encode(batch):
            return encode_logs(batch).to_json().encode()

    exporters = emit_per_producer(
        events,
        lambda host: KafkaLogExporter(encode, host),
        batch_size=per_message,
        schedule_delay_millis=60_000,
    )
    return [message for exporter in exporters for message in exporter.messages]


def produce(args):
    events = load_events(args.events)
    if args.format == "json":
        messages = [(event.get("host.id"), json.dumps(event).encode()) for event in events]
    else:
        messages = otlp_messages(events, args.format, args.per_message)
    if args.raw is not None:
        messages.insert(len(messages) // 2, ("poison", args.raw.encode()))
    prod = producer(args.brokers, **one_per_batch(args))
    deliver_all(prod, args.topic, [(key.encode() if key else None, value) for key, value in messages])
    print(json.dumps({"messages": len(messages), "events": len(events)}))


def consume(args):
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": f"kafka-tool-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    deadline = time.time() + args.timeout
    seen = 0
    try:
        while seen < args.count and time.time() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                continue
            seen += 1
            headers = {key: (value.decode() if value is not None else None) for key, value in (message.headers() or [])}
            print(
                json.dumps(
                    {
                        "key": message.key().decode() if message.key() else None,
                        "value": message.value().decode(errors="replace") if message.value() else None,
                        "headers": headers,
                        "partition": message.partition(),
                        "offset": message.offset(),
                    }
                ),
                flush=True,
            )
    finally:
        consumer.close()


def one_per_batch(args):
    """Producer settings that put each message in a record batch of its own."""
    return {"linger.ms": 0, "batch.num.messages": 1} if args.one_per_batch else {}


def resume_check(args):
    batched = {"linger.ms": 100, "batch.num.messages": 100}
    prod = producer(args.brokers, **(one_per_batch(args) or batched))
    deliver_all(prod, args.topic, [(None, f"message-{index}".encode()) for index in range(300)])
    group = f"resume-check-{uuid.uuid4()}"

    def consumer():
        c = Consumer(
            {
                "bootstrap.servers": args.brokers,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        c.subscribe([args.topic])
        return c

    first = consumer()
    taken = 0
    deadline = time.time() + 60
    while taken < 100 and time.time() < deadline:
        message = first.poll(0.5)
        if message is None or message.error():
            continue
        taken += 1
        if taken == 100:
            first.commit(message=message, asynchronous=False)
    first.close()
    second = consumer()
    rest = 0
    idle_until = time.time() + 10
    while time.time() < idle_until:
        message = second.poll(0.5)
        if message is None or message.error():
            continue
        rest += 1
        idle_until = time.time() + 3
    second.close()
    print(json.dumps({"first": taken, "after_restart": rest}))
    sys.exit(0 if taken == 100 and rest == 200 else 1)


def create_topics(args):
    admin = AdminClient({"bootstrap.servers": args.brokers})
    wanted = []
    for spec in args.topic:
        name, _, partitions = spec.partition(":")
        wanted.append(NewTopic(name, num_partitions=int(partitions or 1), replication_factor=1))
    for name, future in admin.create_topics(wanted, operation_timeout=10).items():
        try:
            future.result()
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("produce")
    p.add_argument("--brokers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--format", required=True, choices=["otlp_proto", "otlp_json", "json"])
    p.add_argument("--events", required=True)
    p.add_argument("--per-message", type=int, default=50)
    p.add_argument("--raw", default=None)
    p.add_argument("--one-per-batch", action="store_true")
    p.set_defaults(run=produce)
    c = commands.add_parser("consume")
    c.add_argument("--brokers", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--timeout", type=float, default=30)
    c.set_defaults(run=consume)
    r = commands.add_parser("resume-check")
    r.add_argument("--brokers", required=True)
    r.add_argument("--topic", required=True)
    r.add_argument("--one-per-batch", action="store_true")
    r.set_defaults(run=resume_check)
    t = commands.add_parser("create-topics")
    t.add_argument("--brokers", required=True)
    t.add_argument("--topic", action="append", required=True)
    t.set_defaults(run=create_topics)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
