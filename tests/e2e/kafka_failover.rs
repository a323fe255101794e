//! Kafka consumers as their own `cordon serve` processes against the real broker:
//! SIGKILL mid-stream and resume, and two instances of one group sharing the
//! partitions, one taking over when the other is killed.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::crash::{free_port, ids, stored_ids};
use crate::kafka_broker::Broker;

/// `cordon serve` as its own process, consuming `topic` in `group`.
struct Consumer {
    child: Child,
    data_dir: std::path::PathBuf,
    api: String,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const METRICS_TOKEN: &str = "kafka-test-admin-token-0123456789";

impl Consumer {
    fn start(broker: &Broker, data_dir: &Path, group: &str, topic: &str, batch: usize) -> Consumer {
        let api = format!("127.0.0.1:{}", free_port());
        let config = format!(
            r#"
[otlp]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"

[storage]
flush_interval = "200ms"

[api]
listen = "{api}"
[[api.tokens]]
name = "test"
role = "admin"
token = "{METRICS_TOKEN}"

[kafka]
enabled = true
brokers = "{brokers}"
group_id = "{group}"
dead_letter_topic = "dead-letters"
max_batch_messages = {batch}
commit_interval = "200ms"
lag_interval = "200ms"
topics = [{{ name = "{topic}", format = "otlp_proto" }}]
[kafka.client]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            brokers = broker.address,
        );
        std::fs::create_dir_all(data_dir).unwrap();
        let path = data_dir.join("cordon.toml");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args(["serve", "--config"])
            .arg(&path)
            .arg("--data-dir")
            .arg(data_dir)
            .env(FIXED_DATE_EVENT_AGE.0, FIXED_DATE_EVENT_AGE.1)
            .env("CORDON_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(api.as_str(), "cordon serve");
        Consumer {
            child,
            data_dir: data_dir.to_path_buf(),
            api,
        }
    }

    /// A metric's value summed over the series whose labels contain `labels`.
    async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
            .filter(|line| line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Every one of `partitions` partitions of `topic` reports lag, all zero.
    async fn lag_settled(&self, topic: &str, partitions: usize) -> bool {
        let text = self.metrics_text().await;
        let lags: Vec<f64> = text
            .lines()
            .filter(|line| {
                line.starts_with("cordon_kafka_consumer_lag{") && line.contains(&format!("topic=\"{topic}\""))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect();
        lags.len() == partitions && lags.iter().all(|lag| *lag == 0.0)
    }

    async fn metrics_text(&self) -> String {
        reqwest::Client::new()
            .get(format!("http://{}/metrics", self.api))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    fn kill(mut self) -> std::path::PathBuf {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.data_dir.clone()
    }

    /// SIGTERM: a clean stop that commits and flushes.
    fn stop(mut self) -> std::path::PathBuf {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "cordon serve exited with {status}");
        self.data_dir.clone()
    }
}

/// Compares stored and produced ids, printing a few differences rather than the sets.
fn assert_same(stored: &BTreeSet<String>, produced: &BTreeSet<String>) {
    let missing: Vec<_> = produced.difference(stored).collect();
    let extra: Vec<_> = stored.difference(produced).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} of {} produced events not stored (e.g. {:?}); {} stored events never produced (e.g. {:?})",
        missing.len(),
        produced.len(),
        missing.iter().take(3).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(3).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_resumes_with_nothing_lost_or_doubled() {
    let broker = Broker::start();
    broker.create_topic("stream", 3);
    broker.create_topic("dead-letters", 1);
    let events = simulated(81, 12_000, &[]);
    // 20 events a message, 5 messages a batch: many small durable batches to cut into.
    broker.produce("stream", "otlp_proto", &events, &["--per-message", "20"]);
    let dir = tempfile::tempdir().unwrap();
    let consumer = Consumer::start(&broker, dir.path(), "resume", "stream", 5);
    let total = events.len() as f64;
    let started = Instant::now();
    // Killed once offsets have been committed (every 200 ms), so the restart must resume
    // from them, and before the stream ends.
    loop {
        let committed = consumer.metric("cordon_kafka_commits_total", "result=\"ok\"").await;
        let done = consumer.metric("cordon_events_out_total", "stage=\"ingest\"").await;
        if committed >= 2.0 {
            assert!(
                done < total,
                "the consumer finished before it could be killed; make the stream longer"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "nothing committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data_dir = consumer.kill();
    // The dead member's session (6 s) ends before the restart joins: tansu gives a
    // joining member nothing while the group still holds a live session of the dead
    // one, and does not rebalance when that session expires (seen when the kill came
    // within 4 s of the first assignment).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let partial = stored_ids(&data_dir).len();
    assert!(
        partial > 0 && partial < events.len(),
        "killed mid-stream: {partial} of {}",
        events.len()
    );

    let consumer = Consumer::start(&broker, &data_dir, "resume", "stream", 5);
    // Caught up: every partition's lag is known and zero (everything committed), so
    // whatever is missing now was lost.
    eventually(
        Duration::from_secs(90),
        "the restarted consumer to catch up",
        async || consumer.lag_settled("stream", 3).await.then_some(()),
    )
    .await;
    // It resumed from the committed offsets: it read again only what was stored but not
    // yet committed at the kill, not everything stored before it.
    let read_again = consumer.metric("cordon_events_duplicate_total", "").await;
    assert!(
        read_again < partial as f64,
        "the restart read again {read_again} of the {partial} stored events: it did not resume from a commit"
    );
    let data_dir = consumer.stop();
    let stored = stored_ids(&data_dir);
    let unique: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    assert_same(&unique, &ids(&events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_partitions_and_one_takes_over_when_killed() {
    let broker = Broker::mock(&[("shared", 4), ("dead-letters", 1)]);
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Consumer::start(&broker, dir_a.path(), "pair", "shared", 100);
    let b = Consumer::start(&broker, dir_b.path(), "pair", "shared", 100);
    eventually_seen(Duration::from_secs(60), "the group to split", async || {
        let (owned_a, owned_b) = (
            a.metric("cordon_kafka_assigned_partitions", "").await,
            b.metric("cordon_kafka_assigned_partitions", "").await,
        );
        let split = owned_a + owned_b == 4.0 && owned_a > 0.0 && owned_b > 0.0;
        split.then_some(()).ok_or(format!("{owned_a} + {owned_b} partitions"))
    })
    .await;

    let first = simulated(91, 1_200, &[]);
    // One message per record batch, so no commit falls inside a batch.
    broker.produce(
        "shared",
        "otlp_proto",
        &first,
        &["--per-message", "10", "--one-per-batch"],
    );
    let (done_a, done_b) = eventually_seen(Duration::from_secs(60), "the first batch stored", async || {
        let (done_a, done_b) = (
            a.metric("cordon_events_out_total", "stage=\"ingest\"").await,
            b.metric("cordon_events_out_total", "stage=\"ingest\"").await,
        );
        let stored = done_a + done_b >= first.len() as f64;
        stored
            .then_some((done_a, done_b))
            .ok_or(format!("{done_a} + {done_b} events"))
    })
    .await;
    assert!(
        done_a > 0.0 && done_b > 0.0,
        "one instance did all the work: {done_a} / {done_b}"
    );

    let dir_b = b.kill();
    let second = simulated(92, 1_200, &[]);
    broker.produce(
        "shared",
        "otlp_proto",
        &second,
        &["--per-message", "10", "--one-per-batch"],
    );
    eventually_seen(Duration::from_secs(90), "the survivor to take over", async || {
        let owned = a.metric("cordon_kafka_assigned_partitions", "").await;
        let lag = a.metric("cordon_kafka_consumer_lag", "topic=\"shared\"").await;
        let took_over = owned == 4.0 && a.lag_settled("shared", 4).await;
        took_over
            .then_some(())
            .ok_or(format!("owns {owned} partitions, lag {lag}"))
    })
    .await;
    let dir_a = a.stop();
    let stored_a = stored_ids(&dir_a);
    let stored_b = stored_ids(&dir_b);
    for (name, stored) in [("a", &stored_a), ("b", &stored_b)] {
        let unique: BTreeSet<&String> = stored.iter().collect();
        assert_eq!(unique.len(), stored.len(), "instance {name} stored an event twice");
    }
    let union: BTreeSet<String> = stored_a.iter().chain(&stored_b).cloned().collect();
    let mut expected = ids(&first);
    expected.extend(ids(&second));
    let missing: Vec<_> = expected.difference(&union).take(3).collect();
    assert!(missing.is_empty(), "lost in the takeover: {missing:?}");
    assert_eq!(union.len(), expected.len());
}
