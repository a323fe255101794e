//! The consumer-group side of the Kafka source: which partitions this instance owns,
//! which offsets are durable, and committing exactly those, including before a
//! rebalance takes partitions away.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientContext, config::RDKafkaLogLevel};

use super::metrics::KafkaMetrics;

type Partition = (String, i32);

#[derive(Default)]
struct Offsets {
    /// Partitions assigned to this instance now.
    assigned: BTreeSet<Partition>,
    /// The next offset to read per partition: everything before it is durable.
    durable: BTreeMap<Partition, i64>,
    /// What was last committed per partition.
    committed: BTreeMap<Partition, i64>,
}

/// librdkafka's callbacks for the source's consumer.
pub struct GroupContext {
    metrics: KafkaMetrics,
    offsets: Mutex<Offsets>,
    /// Set once the final commit is done: closing then revokes everything, and a
    /// commit there could wait forever for a broker that is gone.
    closing: AtomicBool,
}

impl GroupContext {
    pub fn new(metrics: KafkaMetrics) -> Self {
        GroupContext {
            metrics,
            offsets: Mutex::new(Offsets::default()),
            closing: AtomicBool::new(false),
        }
    }

    /// The consumer is about to close: its last commit is done.
    pub fn closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Marks everything before `next` in a partition as durable. A partition given up
    /// since is skipped: its new owner commits it.
    pub fn mark_durable(&self, topic: &str, partition: i32, next: i64) {
        let mut offsets = self.offsets.lock().expect("offsets lock");
        let key = (topic.to_string(), partition);
        if !offsets.assigned.contains(&key) {
            return;
        }
        let entry = offsets.durable.entry(key).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// Durable offsets not yet committed, limited to `only` when given.
    fn pending(&self, only: Option<&TopicPartitionList>) -> TopicPartitionList {
        let offsets = self.offsets.lock().expect("offsets lock");
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &offsets.durable {
            if only.is_some_and(|only| only.find_partition(topic, *partition).is_none()) {
                continue;
            }
            if offsets.committed.get(&(topic.clone(), *partition)) == Some(next) {
                continue;
            }
            list.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .expect("a valid offset");
        }
        list
    }

    /// Commits every durable offset not yet committed.
    pub fn commit<C: Consumer<GroupContext>>(&self, consumer: &C, mode: CommitMode) -> KafkaResult<()> {
        self.commit_list(consumer, self.pending(None), mode)
    }

    fn commit_list<C: Consumer<GroupContext>>(
        &self,
        consumer: &C,
        list: TopicPartitionList,
        mode: CommitMode,
    ) -> KafkaResult<()> {
        if list.count() == 0 {
            return Ok(());
        }
        let result = consumer.commit(&list, mode);
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.metrics.commits.get_or_create(&vec![("result", outcome)]).inc();
        if result.is_ok() && matches!(mode, CommitMode::Sync) {
            self.record_committed(&list);
        }
        result
    }

    fn record_committed(&self, list: &TopicPartitionList) {
        let mut offsets = self.offsets.lock().expect("offsets lock");
        for element in list.elements() {
            if let Offset::Offset(next) = element.offset() {
                offsets
                    .committed
                    .insert((element.topic().to_string(), element.partition()), next);
            }
        }
    }

    /// Sets the lag gauge of every owned partition from the broker's watermarks and the
    /// group's committed offsets. It runs beside the consumer loop, so the lag of a
    /// stalled partition (waiting on the dead-letter topic, on storage) still shows.
    pub fn refresh_lag<C: Consumer<GroupContext>>(&self, consumer: &C, timeout: Duration) {
        let owned: Vec<Partition> = self
            .offsets
            .lock()
            .expect("offsets lock")
            .assigned
            .iter()
            .cloned()
            .collect();
        if owned.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &owned {
            list.add_partition(topic, *partition);
        }
        let committed = match consumer.committed_offsets(list, timeout) {
            Ok(committed) => committed,
            Err(error) => {
                tracing::debug!(%error, "cannot read committed offsets for the lag metric");
                return;
            }
        };
        for (topic, partition) in owned {
            let Ok((low, high)) = consumer.fetch_watermarks(&topic, partition, timeout) else {
                continue;
            };
            let committed = committed
                .find_partition(&topic, partition)
                .and_then(|element| element.offset().to_raw())
                .unwrap_or(-1);
            if let Some(lag) = committed_lag(high, low, committed) {
                // Only partitions still owned: a revoke may have happened meanwhile.
                if self
                    .offsets
                    .lock()
                    .expect("offsets lock")
                    .assigned
                    .contains(&(topic.clone(), partition))
                {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&vec![("topic", topic), ("partition", partition.to_string())])
                        .set(lag);
                }
            }
        }
    }

    fn assign(&self, list: &TopicPartitionList) {
        let mut offsets = self.offsets.lock().expect("offsets lock");
        for element in list.elements() {
            offsets
                .assigned
                .insert((element.topic().to_string(), element.partition()));
        }
        self.metrics.assigned_partitions.set(offsets.assigned.len() as i64);
    }

    fn revoke(&self, list: &TopicPartitionList) {
        let mut offsets = self.offsets.lock().expect("offsets lock");
        for element in list.elements() {
            let key = (element.topic().to_string(), element.partition());
            offsets.assigned.remove(&key);
            offsets.durable.remove(&key);
            offsets.committed.remove(&key);
            self.metrics
                .consumer_lag
                .remove(&vec![("topic", key.0.clone()), ("partition", key.1.to_string())]);
        }
        self.metrics.assigned_partitions.set(offsets.assigned.len() as i64);
    }
}

/// Messages not yet durable and committed: from the committed offset (or, before the
/// group's first commit, the partition's start) to its end. `None` until librdkafka
/// knows the partition's end.
fn committed_lag(high: i64, low: i64, committed: i64) -> Option<i64> {
    if high < 0 {
        return None;
    }
    let from = if committed >= 0 { committed } else { low.max(0) };
    Some((high - from).max(0))
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, "{reason}");
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                self.metrics.rebalances.get_or_create(&vec![("kind", "revoke")]).inc();
                // Finished work is committed before the partitions go to another member,
                // so it does not read them again.
                let pending = if self.closing.load(Ordering::Relaxed) {
                    TopicPartitionList::new()
                } else {
                    self.pending(Some(list))
                };
                if let Err(error) = self.commit_list(consumer, pending, CommitMode::Sync) {
                    tracing::warn!(%error, "could not commit before giving up partitions; their new owner will read some events again (stored once per instance)");
                }
                self.revoke(list);
                tracing::info!(partitions = list.count(), "kafka partitions revoked");
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(error) => {
                self.metrics.rebalances.get_or_create(&vec![("kind", "error")]).inc();
                tracing::warn!(%error, "kafka rebalance failed");
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            self.metrics.rebalances.get_or_create(&vec![("kind", "assign")]).inc();
            self.assign(list);
            tracing::info!(partitions = list.count(), "kafka partitions assigned");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            // Async commits are recorded when librdkafka confirms them.
            Ok(()) => self.record_committed(offsets),
            Err(error) => tracing::warn!(%error, "kafka offset commit failed; it is retried with the next commit"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(partitions: &[(&str, i32)]) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition(topic, *partition);
        }
        list
    }

    #[test]
    fn only_owned_partitions_are_marked_and_committed_once() {
        let context = GroupContext::new(KafkaMetrics::default());
        context.assign(&list(&[("t", 0), ("t", 1)]));
        context.mark_durable("t", 0, 10);
        context.mark_durable("t", 0, 7); // an older batch never moves the offset back
        context.mark_durable("t", 5, 3); // not ours
        let pending = context.pending(None);
        assert_eq!(pending.count(), 1);
        assert_eq!(pending.find_partition("t", 0).unwrap().offset(), Offset::Offset(10));
        context.record_committed(&pending);
        assert_eq!(context.pending(None).count(), 0);
        context.mark_durable("t", 0, 12);
        assert_eq!(context.pending(None).count(), 1);
    }

    #[test]
    fn lag_counts_from_the_commit_or_the_partition_start() {
        assert_eq!(committed_lag(100, 0, 40), Some(60));
        assert_eq!(committed_lag(100, 20, -1001), Some(80));
        assert_eq!(committed_lag(100, 0, 100), Some(0));
        assert_eq!(committed_lag(-1, 0, 10), None);
    }

    #[test]
    fn revoking_forgets_the_partition() {
        let context = GroupContext::new(KafkaMetrics::default());
        context.assign(&list(&[("t", 0), ("t", 1)]));
        context.mark_durable("t", 0, 4);
        context.mark_durable("t", 1, 9);
        assert_eq!(context.pending(Some(&list(&[("t", 1)]))).count(), 1);
        context.revoke(&list(&[("t", 0)]));
        context.mark_durable("t", 0, 8);
        let pending = context.pending(None);
        assert_eq!(pending.count(), 1);
        assert!(pending.find_partition("t", 0).is_none());
        assert_eq!(context.metrics.assigned_partitions.get(), 1);
    }
}
