//! What the tests of telemetry-gap's stages share (`telemetry_gap_input.rs`,
//! `telemetry_gap_compaction.rs`): the built-in rule compiled once, and one stage run
//! over a batch with its rows read back as tuples.

use std::path::PathBuf;
use std::sync::OnceLock;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use cordon_detections::compile::{CompiledRule, Limits, PlannedStage};
use cordon_detections::{DetectionMetrics, Engine, EngineConfig};

/// One kept row: (host, event id, sequence number, run start, run end, due_at, time,
/// run time).
pub type Row = (String, String, i64, i64, i64, Option<i64>, i64, i64);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

pub fn rule() -> &'static CompiledRule {
    static RULE: OnceLock<CompiledRule> = OnceLock::new();
    RULE.get_or_init(|| {
        let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("rules/telemetry-gap");
        let engine = Engine::new(EngineConfig::default(), Default::default(), DetectionMetrics::default());
        runtime()
            .block_on(engine.compile(&dir))
            .unwrap()
            .expect("a rule folder")
    })
}

/// `stage` over `batch`: its rows, sorted, each timestamp (ns) given as `time` maps it.
pub fn run(stage: &PlannedStage, batch: RecordBatch, time: impl Fn(i64) -> i64) -> Vec<Row> {
    // A planned stage reads one slot: the engine never runs it twice at once, nor may
    // the tests.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _running = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let limits = Limits {
        memory_bytes: 64 << 20,
        timeout: std::time::Duration::from_secs(30),
    };
    let output = runtime()
        .block_on(stage.run("telemetry-gap", vec![batch], limits))
        .unwrap();
    let mut out = Vec::new();
    for batch in &output {
        let column = |name: &str| batch.column_by_name(name).unwrap();
        let text = |name: &str| column(name).as_string::<i32>().clone();
        let number = |name: &str| column(name).as_primitive::<Int64Type>().clone();
        let times = |name: &str| column(name).as_primitive::<TimestampNanosecondType>().clone();
        let (hosts, ids) = (text("host_id"), text("event_id"));
        let (sequences, starts, ends) = (number("event_sequence"), number("run_start"), number("run_end"));
        let (due, at, run_time) = (times("due_at"), times("time"), times("run_time"));
        for row in 0..batch.num_rows() {
            out.push((
                hosts.value(row).to_string(),
                ids.value(row).to_string(),
                sequences.value(row),
                starts.value(row),
                ends.value(row),
                due.is_valid(row).then(|| time(due.value(row))),
                time(at.value(row)),
                time(run_time.value(row)),
            ));
        }
    }
    out.sort();
    out
}
