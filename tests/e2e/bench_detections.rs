//! `cordon bench detections` runs its latency phase in rounds and prints each round, the
//! rules that took longest and the median of the rounds. Timings are printed, never
//! checked.

use std::process::Command;

#[test]
fn bench_detections_prints_each_round_the_rules_that_took_longest_and_the_median() {
    let output = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "bench",
            "detections",
            "--rate",
            "1000",
            "--hosts",
            "20",
            "--cycles",
            "1",
            "--window",
            "1m",
            "--measure",
            "2s",
            "--warmup",
            "1s",
            "--attacks-per-second",
            "5",
            "--skip-idle-keys",
            "--skip-cost",
            "--rounds",
            "2",
        ])
        // The built-in rules, as the README's command reads them.
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CORDON_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for round in ["round 1 of 2: ", "round 2 of 2: "] {
        let lines: Vec<&str> = stdout.lines().filter(|line| line.starts_with(round)).collect();
        assert!(
            lines
                .iter()
                .any(|line| line.contains("event-to-alert latency at") && line.contains("no rule failed")),
            "{stdout}"
        );
        assert!(
            lines
                .iter()
                .any(|line| line.contains("rule evaluation time while live") && line.contains("longest: ")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("event-to-alert latency, median of 2 rounds: p50 "),
        "{stdout}"
    );
}
