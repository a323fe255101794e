//! `cordon bench peers` runs and its table holds together: Cordon's rows and DuckDB's
//! (the test virtualenv has duckdb), and DuckDB, running the built-in rules' SQL as
//! translated, raises what Cordon's backtest raises, rule by rule. Timings are printed,
//! never checked.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::python;

/// The alerts-per-rule table: rule -> (column header -> count).
fn alerts_per_rule(stdout: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut lines = stdout
        .lines()
        .skip_while(|line| !line.starts_with("alerts per rule"))
        .skip(1);
    let header: Vec<String> = lines
        .next()
        .expect("a header")
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    lines
        .take_while(|line| !line.trim().is_empty() && !line.starts_with("note") && !line.starts_with('('))
        .map(|line| {
            let mut cells = line.split_whitespace();
            let rule = cells.next().expect("a rule").to_string();
            (rule, header.iter().cloned().zip(cells.map(str::to_string)).collect())
        })
        .collect()
}

#[test]
fn bench_peers_runs_cordon_and_duckdb_on_one_stream_and_their_alerts_agree() {
    let work = tempfile::tempdir().unwrap();
    let no_peers = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "bench",
            "peers",
            "--events",
            "3000",
            "--span",
            "2m",
            "--hosts",
            "40",
            "--attack-repeats",
            "1",
            "--rounds",
            "1",
            "--duckdb-streaming-budget",
            "10s",
            "--only",
            "cordon,duckdb",
        ])
        .arg("--dir")
        .arg(work.path())
        .arg("--peers-dir")
        .arg(no_peers.path())
        .arg("--python")
        .arg(python())
        .env("CORDON_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for row in [
        "cordon   scan (baseline)",
        "cordon   streaming",
        "cordon   backtest",
        "duckdb   streaming",
        "duckdb   backtest",
        "vs duckdb",
    ] {
        assert!(stdout.contains(row), "no {row:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("rsigma   "), "RSigma was not asked for:\n{stdout}");
    let table = alerts_per_rule(&stdout);
    let count = |rule: &str, column: &str| table.get(rule).and_then(|row| row.get(column)).cloned();
    // Every attack's rule raised in Cordon's backtest, and DuckDB's batch run raised the
    // same number for each rule it runs.
    for rule in [
        "exfil-attempt-chain",
        "agent-shell-network-tool",
        "repeated-policy-denies",
        "telemetry-gap",
    ] {
        let raised = count(rule, "cordon/backtest").unwrap_or_default();
        assert!(
            raised.parse::<u64>().is_ok_and(|n| n >= 1),
            "{rule}: {raised:?} in:\n{stdout}"
        );
    }
    let mut compared = 0;
    for (rule, row) in &table {
        let Some(duckdb) = row.get("duckdb/backtest") else {
            continue;
        };
        if duckdb == "-" && ["agent-building-blocks", "entity-risk"].contains(&rule.as_str()) {
            continue;
        }
        assert_eq!(row.get("cordon/backtest"), Some(duckdb), "{rule}:\n{stdout}");
        compared += 1;
    }
    assert!(compared >= 12, "{compared} rules compared:\n{stdout}");
}
