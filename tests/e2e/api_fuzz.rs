//! Schemathesis (PyPI) against `/api/v1/openapi.json` with each role's token: every
//! operation is fuzzed from the document (valid and invalid parameters and bodies), and
//! no answer may be a 5xx or differ from the document (status code, content type, body
//! schema). The server holds alerts and actions, so ids found in listings are real.
//!
//! `CORDON_SCHEMATHESIS_EXAMPLES` sets the examples per operation and role (default 10
//! in CI); the README's figures come from a longer run.

use std::process::Command;

use cordon::api::Role;
use cordon::simulate::Scenario;
use cordon::simulate::senders::{SendReport, Sender};

use crate::common::*;

fn schemathesis() -> std::path::PathBuf {
    let program = python().with_file_name("schemathesis");
    assert!(
        program.exists(),
        "no schemathesis in the test virtualenv: run scripts/setup-test-env.sh"
    );
    program
}

/// The last `bytes` of `text` (a failing run can print megabytes of schema).
fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_fuzzing_the_api_gets_no_server_error_and_answers_as_documented() {
    let server = TestServer::start().await;
    let events = simulated(51, 600, &[Scenario::RepeatedPolicyDenies, Scenario::ExfilAttemptChain]);
    let mut sender = Sender::grpc(&server.grpc_url()).await.unwrap();
    let mut report = SendReport::default();
    for chunk in events.chunks(200) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    server.detections_idle().await;
    assert!(
        !server.alerts().await.is_empty(),
        "the scenarios raised alerts to fuzz around"
    );

    let examples = std::env::var("CORDON_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let document = format!("{}/api/v1/openapi.json", server.api_url());
    let reports = tempfile::tempdir().unwrap();
    for role in Role::ALL {
        let started = std::time::Instant::now();
        let output = Command::new(schemathesis())
            // It keeps a cache of crashes in its working directory: the scratch one.
            .current_dir(reports.path())
            .arg("run")
            .arg(&document)
            .args(["--header", &format!("Authorization: Bearer {}", token_for(role))])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(["--max-examples", &examples, "--seed", "14"])
            // One worker: two threads of CPython 3.11 compiling at once fail inside
            // schemathesis ("AST constructor recursion depth mismatch").
            .args(["--workers", "1"])
            .args(["--generation-database", "none", "--no-color"])
            .args(["--report", "junit", "--report-dir"])
            .arg(reports.path().join(role.as_str()))
            .output()
            .expect("schemathesis runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let summary: Vec<&str> = stdout
            .lines()
            .filter(|line| line.contains("passed") || line.contains("failed") || line.contains("cases"))
            .collect();
        eprintln!(
            "schemathesis as {} in {:?}: {}",
            role.as_str(),
            started.elapsed(),
            summary.join(" | ")
        );
        assert!(
            output.status.success(),
            "schemathesis as {} found failures:\n{}\n{}",
            role.as_str(),
            tail(&stdout, 12_000),
            tail(&String::from_utf8_lossy(&output.stderr), 4_000)
        );
    }
    server.stop().await;
}
