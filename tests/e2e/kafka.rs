//! The Kafka source against a real Kafka-protocol broker (tansu, see kafka_broker.rs),
//! with an independent producer (Python confluent-kafka and the OpenTelemetry SDK's
//! OTLP encoders), the dead-letter topic, consumer lag and the alert topic. SIGKILL
//! and takeover in a consumer group: kafka_failover.rs.

use std::process::Command;
use std::time::{Duration, Instant};

use cordon::Config;
use cordon_ingest::kafka::{KafkaConfig, MessageFormat, TopicConfig};
use cordon_schemas::FlatEvent;

use crate::common::*;
use crate::kafka_broker::Broker;

const SDK_RESOURCE_ATTRIBUTES: &[&str] = &[
    "telemetry.sdk.language",
    "telemetry.sdk.name",
    "telemetry.sdk.version",
    "service.instance.id",
];

pub fn kafka_config(broker: &Broker, group: &str, topics: &[(&str, MessageFormat)]) -> KafkaConfig {
    KafkaConfig {
        enabled: true,
        brokers: broker.address.clone(),
        group_id: group.into(),
        topics: topics
            .iter()
            .map(|(name, format)| TopicConfig::new(*name, *format))
            .collect(),
        dead_letter_topic: "dead-letters".into(),
        commit_interval: Duration::from_millis(200),
        lag_interval: Duration::from_millis(200),
        ..KafkaConfig::default()
    }
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Events the producers sent that are stored (not Cordon's own signals and risk).
async fn stored(test: &TestServer) -> i64 {
    count(
        &test.storage(),
        "SELECT count(*) FROM events WHERE transport <> 'detections'",
    )
    .await
}

/// A partition's lag gauge; `None` until the consumer has reported it.
fn lag(test: &TestServer, topic: &str, partition: i32) -> Option<i64> {
    let labels = vec![("topic", topic.to_string()), ("partition", partition.to_string())];
    test.server
        .ingestor
        .metrics()
        .kafka
        .consumer_lag
        .get(&labels)
        .map(|gauge| gauge.get())
}

/// The broker under test is sound: tansu (SQLite engine) resumes a group from an
/// offset committed inside a record batch. Its memory engine does not; neither does
/// librdkafka's mock cluster once the group has emptied (measured: 0 of 200 after the
/// restart), which is why the mock serves only the takeover test, whose group never
/// empties.
#[test]
fn the_test_broker_resumes_a_group_where_it_committed() {
    let broker = Broker::start();
    broker.create_topic("resume-check", 1);
    let answer = broker.tool(&["resume-check", "--topic", "resume-check"]);
    assert!(answer.contains("\"after_restart\": 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_independent_producer_in_every_format_is_stored_field_by_field() {
    let broker = Broker::start();
    for (topic, partitions) in [
        ("otlp-proto", 3),
        ("otlp-json", 1),
        ("flat-json", 2),
        ("dead-letters", 1),
    ] {
        broker.create_topic(topic, partitions);
    }
    let test = TestServer::start_with(|config| {
        config.kafka = kafka_config(
            &broker,
            "formats",
            &[
                ("otlp-proto", MessageFormat::OtlpProto),
                ("otlp-json", MessageFormat::OtlpJson),
                ("flat-json", MessageFormat::Json),
            ],
        );
    })
    .await;

    let mut sent: Vec<FlatEvent> = Vec::new();
    for (seed, topic, format) in [
        (61, "otlp-proto", "otlp_proto"),
        (62, "otlp-json", "otlp_json"),
        (63, "flat-json", "json"),
    ] {
        let events = simulated(seed, 300, &[]);
        broker.produce(topic, format, &events, &[]);
        sent.extend(events);
    }
    let total = sent.len() as i64;
    wait_for("every event stored", Duration::from_secs(60), async || {
        stored(&test).await >= total
    })
    .await;
    let rows = stored_rows(&test.storage()).await;
    assert_rows_match(&sent, &rows, SDK_RESOURCE_ATTRIBUTES);

    let kafka = &test.server.ingestor.metrics().kafka;
    for topic in ["otlp-proto", "otlp-json", "flat-json"] {
        assert!(
            kafka.messages_count(topic, "stored") > 0,
            "{topic}: no messages counted"
        );
        assert_eq!(kafka.messages_count(topic, "dead_letter"), 0, "{topic}");
    }
    // One flat event per message; a rebalance while joining may hand a message over twice
    // (stored once: the duplicate is dropped by event.id).
    assert!(kafka.messages_count("flat-json", "stored") >= 300);
    // Every partition's lag is known and drains to zero once offsets are committed.
    wait_for("lag to drain", Duration::from_secs(30), async || {
        [
            ("otlp-proto", 0),
            ("otlp-proto", 1),
            ("otlp-proto", 2),
            ("otlp-json", 0),
            ("flat-json", 0),
            ("flat-json", 1),
        ]
        .iter()
        .all(|(topic, partition)| lag(&test, topic, *partition) == Some(0))
    })
    .await;
    test.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_is_dead_lettered_and_the_partition_flows_on() {
    let broker = Broker::start();
    broker.create_topic("events", 1);
    // The dead-letter topic does not exist yet: the partition must wait, not skip.
    let test = TestServer::start_with(|config| {
        config.kafka = kafka_config(&broker, "poison", &[("events", MessageFormat::Json)]);
    })
    .await;
    let first = simulated(71, 20, &[]);
    broker.produce("events", "json", &first, &[]);
    let first_count = first.len() as i64;
    wait_for("the first events", Duration::from_secs(30), async || {
        stored(&test).await == first_count
    })
    .await;
    wait_for("lag 0 after the first batch", Duration::from_secs(30), async || {
        lag(&test, "events", 0) == Some(0)
    })
    .await;

    // More, with a poison message in their middle.
    let second = simulated(72, 20, &[]);
    broker.produce("events", "json", &second, &["--raw", "this is not JSON {"]);
    let kafka = &test.server.ingestor.metrics().kafka;
    let undecodable = || {
        kafka
            .dead_letters
            .get_or_create(&vec![("topic", "events".into()), ("reason", "undecodable".into())])
            .get()
    };
    wait_for("the poison message", Duration::from_secs(30), async || {
        undecodable() == 1
    })
    .await;
    // Its dead letter cannot be written yet: the partition waits, and its lag shows it
    // (measured every 200 ms; well past that, it is still there).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        lag(&test, "events", 0).is_some_and(|lag| lag > 0),
        "{:?}",
        lag(&test, "events", 0)
    );
    assert_eq!(undecodable(), 1);

    broker.create_topic("dead-letters", 1);
    let total = (first.len() + second.len()) as i64;
    wait_for("every good event", Duration::from_secs(60), async || {
        stored(&test).await == total
    })
    .await;
    wait_for("lag 0 after the dead letter", Duration::from_secs(30), async || {
        lag(&test, "events", 0) == Some(0)
    })
    .await;
    let letters = broker.consume("dead-letters", 5, Duration::from_secs(15));
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["value"], "this is not JSON {");
    assert_eq!(letter["key"], "poison");
    let headers = &letter["headers"];
    assert_eq!(headers["cordon.source.topic"], "events");
    assert_eq!(headers["cordon.source.partition"], "0");
    let poison_offset = first.len() + second.len() / 2;
    assert_eq!(headers["cordon.source.offset"], poison_offset.to_string().as_str());
    assert_eq!(headers["cordon.reason"], "undecodable");
    assert!(
        headers["cordon.error"]
            .as_str()
            .unwrap()
            .contains("not a flat JSON event"),
        "{headers}"
    );
    assert_eq!(kafka.messages_count("events", "dead_letter"), 1);
    assert_eq!(kafka.messages_count("events", "stored"), total as u64);
    let ingest = &test.server.ingestor.metrics();
    assert_eq!(ingest.rejected_count("missing_host_id"), 0);
    test.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_simulator_produces_every_format_and_alerts_are_published_keyed_by_host() {
    let broker = Broker::start();
    for topic in ["sim-proto", "sim-json", "sim-flat", "dead-letters", "cordon-alerts"] {
        broker.create_topic(topic, 2);
    }
    let test = TestServer::start_with(|config: &mut Config| {
        config.kafka = kafka_config(
            &broker,
            "simulator",
            &[
                ("sim-proto", MessageFormat::OtlpProto),
                ("sim-json", MessageFormat::OtlpJson),
                ("sim-flat", MessageFormat::Json),
            ],
        );
        config.kafka.alerts_topic = "cordon-alerts".into();
    })
    .await;
    let mut expected = 0;
    for (topic, format, seed, scenario) in [
        ("sim-proto", "otlp-proto", "11", "repeated-policy-denies"),
        ("sim-json", "otlp-json", "12", ""),
        ("sim-flat", "json", "13", ""),
    ] {
        let plan = tempfile::NamedTempFile::new().unwrap();
        let mut args = vec![
            "simulate",
            "--to",
            "kafka",
            "--endpoint",
            &broker.address,
            "--topic",
            topic,
            "--kafka-format",
            format,
            "--seed",
            seed,
            "--rate",
            "50",
            "--duration",
            "20s",
            "--pace",
            "fast",
            "--batch",
            "100",
        ];
        if !scenario.is_empty() {
            args.extend(["--scenario", scenario]);
        }
        let jsonl: Vec<&str> = args
            .iter()
            .map(|arg| match *arg {
                "kafka" => "jsonl",
                other => other,
            })
            .collect();
        // The same run written as JSON lines says how many events went to Kafka.
        let counted = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(&jsonl)
            .arg("--output")
            .arg(plan.path())
            .env("CORDON_LOG", "warn")
            .output()
            .unwrap();
        assert!(counted.status.success(), "{}", String::from_utf8_lossy(&counted.stderr));
        expected += std::fs::read_to_string(plan.path()).unwrap().lines().count() as i64;
        let sent = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(&args)
            .env("CORDON_LOG", "warn")
            .output()
            .unwrap();
        assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    }
    wait_for("every simulated event", Duration::from_secs(60), async || {
        stored(&test).await == expected
    })
    .await;
    test.detections_idle().await;
    let alerts = test.alerts().await;
    let denies: Vec<_> = alerts
        .iter()
        .filter(|alert| alert["rule_id"] == "repeated-policy-denies")
        .collect();
    assert!(!denies.is_empty(), "no repeated-policy-denies alert: {alerts:?}");
    let published = broker.consume("cordon-alerts", alerts.len(), Duration::from_secs(30));
    assert_eq!(published.len(), alerts.len(), "one message per alert");
    for alert in &alerts {
        let message = published
            .iter()
            .find(|message| {
                serde_json::from_str::<serde_json::Value>(message["value"].as_str().unwrap()).unwrap()["id"]
                    == alert["id"]
            })
            .unwrap_or_else(|| panic!("alert {} not published", alert["id"]));
        assert_eq!(message["key"], alert["host_id"], "keyed by host");
    }
    test.stop().await;
}
