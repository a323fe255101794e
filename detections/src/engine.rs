//! The rule engine: new events in, matches out.
//!
//! For each batch of newly stored events: events later than the lateness bound are
//! counted and set aside; every rule's input.sql runs over the rest, its output joins
//! the rule's kept rows by partition, and match.sql runs over the partitions that
//! received rows. Time is event time: the watermark is the newest event time seen
//! (capped near arrival time, so one host with a clock in the future cannot push
//! everyone else's events out) minus the lateness.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::compile::{CompiledRule, Limits, compile};
use crate::error::{EvalError, RuleError};
use crate::matches::{Match, matches_from, resolve_evidence};
use crate::metrics::{DetectionMetrics, rule_label};
use crate::reference::ReferenceTable;
use crate::rule::{RuleDefinition, rule_dirs};
use crate::window::{KeptRows, timestamp_nanos};
use cordon_schemas::fields::col;

/// How the engine treats time, and the limits rules run under.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Events up to this late (behind the newest event time) still complete matches.
    pub lateness: Duration,
    /// How far ahead of its arrival an event's time may move the watermark.
    pub max_clock_skew: Duration,
    pub limits: Limits,
    /// Replaces every rule's non-zero window (benchmarks, what-if runs).
    pub window_override: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lateness: Duration::from_secs(300),
            max_clock_skew: Duration::from_secs(60),
            limits: Limits {
                memory_bytes: 256 << 20,
                timeout: Duration::from_secs(10),
            },
            window_override: None,
        }
    }
}

/// What a rule did lately, for `cordon rules` and the API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleStatus {
    pub evaluations: u64,
    pub matches: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    /// Wall-clock time of the last evaluation, RFC 3339.
    pub last_evaluated: Option<String>,
    pub kept_rows: usize,
    pub kept_partitions: usize,
}

struct LiveRule {
    compiled: CompiledRule,
    kept: KeptRows,
    status: RuleStatus,
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct Processed {
    pub matches: Vec<Match>,
    pub errors: Vec<EvalError>,
    pub late_events: usize,
    /// Earliest arrival time (ns) of the batch's events, for latency figures.
    pub earliest_arrival: Option<i64>,
}

pub struct Engine {
    config: EngineConfig,
    reference: BTreeMap<String, ReferenceTable>,
    rules: BTreeMap<String, LiveRule>,
    newest_time: Option<i64>,
    late_events: u64,
    metrics: DetectionMetrics,
    /// When, and at which watermark, the last evaluation swept: the sweep's pace.
    last_sweep: Option<(Instant, i64)>,
}

impl Engine {
    pub fn new(config: EngineConfig, reference: BTreeMap<String, ReferenceTable>, metrics: DetectionMetrics) -> Self {
        Engine {
            config,
            reference,
            rules: BTreeMap::new(),
            newest_time: None,
            late_events: 0,
            metrics,
            last_sweep: None,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn reference(&self) -> &BTreeMap<String, ReferenceTable> {
        &self.reference
    }

    /// Loads every rule under `rules_dir`; the rules that fail are returned with why.
    pub async fn load_dir(&mut self, rules_dir: &std::path::Path) -> Result<Vec<RuleError>, RuleError> {
        let mut errors = Vec::new();
        for dir in rule_dirs(rules_dir)? {
            match self.compile(&dir).await {
                Ok(Some(compiled)) => self.install(compiled),
                Ok(None) => {}
                Err(error) => {
                    self.metrics.rule_load_errors.inc();
                    errors.push(error);
                }
            }
        }
        Ok(errors)
    }

    /// Reads and plans the rule in `dir`; None when it is disabled.
    pub async fn compile(&self, dir: &std::path::Path) -> Result<Option<CompiledRule>, RuleError> {
        let definition = RuleDefinition::load_with_window(dir, self.config.lateness, self.config.window_override)?;
        if definition.settings.disabled {
            return Ok(None);
        }
        compile(definition, &self.reference, self.config.limits).await.map(Some)
    }

    /// Adds or replaces a rule. A replaced rule keeps its kept rows when its input
    /// stage produces the same columns; otherwise it starts empty.
    pub fn install(&mut self, compiled: CompiledRule) {
        let id = compiled.definition.id.clone();
        let previous = self.rules.remove(&id);
        let schema = Arc::new(crate::compile::stored_schema(&compiled.input.output));
        let settings = &compiled.definition.settings;
        let fresh = || {
            KeptRows::new(
                schema.clone(),
                &settings.partition_by,
                settings.window,
                settings.max_rows_per_partition,
            )
            .expect("checked at compile")
        };
        // A reloaded rule keeps its rows when they still fit its new input and keys.
        let (kept, status) = match previous {
            Some(previous)
                if previous.kept.schema() == &schema
                    && previous.compiled.definition.settings.partition_by == settings.partition_by
                    && previous.compiled.definition.settings.window == settings.window
                    && previous.compiled.definition.settings.max_rows_per_partition
                        == settings.max_rows_per_partition =>
            {
                (previous.kept, previous.status)
            }
            Some(previous) => (fresh(), previous.status),
            None => (fresh(), RuleStatus::default()),
        };
        // Series from zero, so `rate()` and alerting on errors work before the first one.
        let label = rule_label(&id);
        let _ = self.metrics.evaluations.get_or_create(&label);
        let _ = self.metrics.evaluation_errors.get_or_create(&label);
        let _ = self.metrics.matches.get_or_create(&label);
        self.rules.insert(id, LiveRule { compiled, kept, status });
    }

    /// The share of each rule's kept rows this evaluation sweeps: the time since the
    /// last sweep over `SWEEP_ROUND`, at most all of them.
    fn sweep_share(&mut self, watermark: i64) -> f64 {
        let round = SWEEP_ROUND.as_secs_f64();
        let share = match self.last_sweep {
            None => 1.0,
            Some((at, previous)) => {
                let wall = at.elapsed().as_secs_f64() / round;
                let event = (watermark.saturating_sub(previous)).max(0) as f64 / 1e9 / round;
                wall.max(event).min(1.0)
            }
        };
        self.last_sweep = Some((Instant::now(), watermark));
        share
    }

    pub fn remove(&mut self, id: &str) -> bool {
        self.rules.remove(id).is_some()
    }

    pub fn rule_ids(&self) -> Vec<String> {
        self.rules.keys().cloned().collect()
    }

    pub fn definition(&self, id: &str) -> Option<Arc<RuleDefinition>> {
        self.rules.get(id).map(|rule| rule.compiled.definition.clone())
    }

    pub fn definitions(&self) -> Vec<Arc<RuleDefinition>> {
        self.rules
            .values()
            .map(|rule| rule.compiled.definition.clone())
            .collect()
    }

    pub fn statuses(&self) -> BTreeMap<String, RuleStatus> {
        self.rules
            .iter()
            .map(|(id, rule)| {
                let mut status = rule.status.clone();
                status.kept_rows = rule.kept.rows();
                status.kept_partitions = rule.kept.partitions();
                (id.clone(), status)
            })
            .collect()
    }

    /// Events seen later than the lateness bound, since start.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Newest event time seen minus the lateness: older events are too late.
    pub fn watermark(&self) -> Option<i64> {
        self.newest_time
            .map(|newest| newest.saturating_sub(self.config.lateness.as_nanos() as i64))
    }

    /// Runs every rule over `batch` (events in the stored event schema).
    pub async fn process(&mut self, batch: &RecordBatch) -> Processed {
        let mut processed = Processed::default();
        if batch.num_rows() == 0 {
            return processed;
        }
        self.metrics.events_in.inc_by(batch.num_rows() as u64);
        let schema = batch.schema();
        let time = batch.column(schema.index_of(col::TIME).expect("event schema"));
        let received = schema
            .index_of(col::RECEIVED_TIME)
            .ok()
            .map(|index| batch.column(index).clone());
        let cutoff = self.watermark();
        let skew = self.config.max_clock_skew.as_nanos() as i64;
        let mut keep = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let event_time = timestamp_nanos(time.as_ref(), row).unwrap_or(i64::MIN);
            let arrival = received
                .as_ref()
                .and_then(|column| timestamp_nanos(column.as_ref(), row));
            if let Some(arrival) = arrival {
                processed.earliest_arrival = Some(processed.earliest_arrival.map_or(arrival, |e| e.min(arrival)));
            }
            let on_time = cutoff.is_none_or(|cutoff| event_time >= cutoff);
            keep.push(on_time);
            let bounded = arrival.map_or(event_time, |arrival| event_time.min(arrival.saturating_add(skew)));
            self.newest_time = Some(self.newest_time.map_or(bounded, |newest| newest.max(bounded)));
        }
        let late = keep.iter().filter(|on_time| !**on_time).count();
        let batch = if late > 0 {
            processed.late_events = late;
            self.late_events += late as u64;
            self.metrics.late_events.inc_by(late as u64);
            tracing::warn!(
                late,
                lateness = ?self.config.lateness,
                "events arrived later than the lateness bound; they are stored but not evaluated by rules"
            );
            filter_record_batch(batch, &BooleanArray::from(keep)).expect("mask matches the batch")
        } else {
            batch.clone()
        };
        let watermark = self.watermark().unwrap_or(i64::MIN);
        let sweep_share = self.sweep_share(watermark);
        let limits = self.config.limits;
        for (id, rule) in self.rules.iter_mut() {
            let started = Instant::now();
            let result = evaluate(id, rule, &batch, watermark, sweep_share, limits).await;
            let label = rule_label(id);
            self.metrics
                .kept_rows
                .get_or_create(&label)
                .set(rule.kept.rows() as i64);
            let Some(result) = result else { continue };
            // Every rule that ran over new events counts, matched or not.
            rule.status.evaluations += 1;
            rule.status.last_evaluated = Some(chrono::Utc::now().to_rfc3339());
            self.metrics.evaluations.get_or_create(&label).inc();
            let took = started.elapsed();
            self.metrics
                .evaluation_seconds
                .get_or_create(&label)
                .observe(took.as_secs_f64());
            if took > Duration::from_secs(1) {
                tracing::warn!(
                    rule = %id, took = ?took, events = batch.num_rows(), kept_rows = rule.kept.rows(),
                    "slow rule evaluation: alerts wait for it; see detections/README.md on keep_until and selective input.sql"
                );
            }
            match result {
                Ok(matches) => {
                    rule.status.matches += matches.len() as u64;
                    self.metrics.matches.get_or_create(&label).inc_by(matches.len() as u64);
                    processed.matches.extend(matches);
                }
                Err(error) => {
                    rule.status.errors += 1;
                    rule.status.last_error = Some(error.to_string());
                    self.metrics.evaluation_errors.get_or_create(&label).inc();
                    tracing::error!(rule = %id, error = %error, "rule evaluation failed; the other rules go on");
                    processed.errors.push(error);
                }
            }
        }
        processed
    }
}

/// The incremental sweep looks at every kept row once per this much time (wall or
/// event time, whichever passes faster: a replay sweeps at the pace of its events).
/// One full sweep every 10 s rewrote all kept rows in one evaluation and held alerts up
/// for most of a second; the same work spread over the evaluations costs each a slice.
const SWEEP_ROUND: Duration = Duration::from_secs(10);

/// One rule over one batch: None when the batch was empty (nothing ran).
async fn evaluate(
    id: &str,
    rule: &mut LiveRule,
    batch: &RecordBatch,
    watermark: i64,
    sweep_share: f64,
    limits: Limits,
) -> Option<Result<Vec<Match>, EvalError>> {
    if batch.num_rows() == 0 {
        return None;
    }
    let kept = match rule.compiled.input.run(id, vec![batch.clone()], limits).await {
        Ok(kept) => kept,
        Err(error) => return Some(Err(error)),
    };
    // Untouched partitions expire a slice at a time (touched ones are evicted below).
    let budget = (rule.kept.rows() as f64 * sweep_share).ceil() as usize;
    let _ = rule.kept.sweep(watermark, budget.max(1));
    let mut touched = std::collections::BTreeSet::new();
    let nothing = || Some(Ok(Vec::new()));
    rule.kept.begin();
    for part in kept.iter().filter(|part| part.num_rows() > 0) {
        match rule.kept.insert(part) {
            Ok(keys) => touched.extend(keys),
            Err(error) => {
                return Some(Err(EvalError::Output {
                    rule: id.to_string(),
                    message: format!("rows the engine could not keep: {error}"),
                }));
            }
        }
    }
    if touched.is_empty() {
        return nothing();
    }
    let _ = rule.kept.evict(watermark, &touched);
    let rows = rule.kept.rows_of(&touched);
    if rows.is_empty() {
        return nothing();
    }
    let output = match rule.compiled.matcher.run(id, rows.clone(), limits).await {
        Ok(output) => output,
        Err(error) => return Some(Err(error)),
    };
    let entity = &rule.compiled.definition.settings.entity;
    match matches_from(id, entity, &output) {
        Ok(found) => Some(Ok(resolve_evidence(found, &rows))),
        Err(message) => Some(Err(EvalError::Output {
            rule: id.to_string(),
            message,
        })),
    }
}
