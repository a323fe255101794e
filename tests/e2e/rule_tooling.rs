//! The detection engineer's tools from the command line: lint, JUnit output, coverage
//! (with an ATT&CK Navigator layer) and the Sigma import. `backtest --diff` is in
//! cli.rs, beside the backtest it compares with.

use std::path::Path;
use std::process::Command;

fn cordon(args: &[&str], rules: Option<&Path>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cordon"));
    command.args(args).env("CORDON_LOG", "warn");
    if let Some(rules) = rules {
        command.env("CORDON_DETECTIONS__RULES_DIR", rules);
    }
    let output = command.output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn lint_names_file_and_line_and_the_builtin_rules_are_clean() {
    let (ok, out) = cordon(&["rules", "lint", "--deny-warnings"], None);
    assert!(ok, "the built-in rules lint clean: {out}");
    assert!(out.contains("0 warning(s)"), "{out}");

    let detections = crate::detections::scratch_detections();
    let rule = detections.path().join("rules/repeated-tool-rejections");
    let settings = std::fs::read_to_string(rule.join("rule.toml")).unwrap();
    let settings = settings
        .replace("window = \"10m\"", "window = \"1m\"")
        .replace("[params]", "[params]\nforgotten = 3");
    std::fs::write(rule.join("rule.toml"), &settings).unwrap();
    for quiet in std::fs::read_dir(rule.join("tests")).unwrap() {
        let path = quiet.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("quiet-") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let (ok, out) = cordon(
        &["rules", "lint", "--deny-warnings"],
        Some(&detections.path().join("rules")),
    );
    assert!(!ok, "{out}");
    let line_of = |key: &str| settings.lines().position(|line| line.starts_with(key)).unwrap() + 1;
    for expected in [
        format!(
            "repeated-tool-rejections/rule.toml:{}: warning[window-shorter-than-lateness]",
            line_of("window")
        ),
        format!(
            "repeated-tool-rejections/rule.toml:{}: warning[unused-param]: param `forgotten`",
            line_of("forgotten")
        ),
        "repeated-tool-rejections/tests:1: warning[no-quiet-case]".to_string(),
    ] {
        assert!(out.contains(&expected), "{expected} in {out}");
    }
    assert!(out.contains("3 warning(s)"), "{out}");
}

#[test]
fn rules_test_writes_junit_for_ci_with_each_case_and_failure() {
    let detections = crate::detections::scratch_detections();
    let expected = detections
        .path()
        .join("rules/repeated-tool-rejections/tests/fire-three-refusals.expected.json");
    let text = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(
        &expected,
        text.replace("\"severity\": \"medium\"", "\"severity\": \"critical\""),
    )
    .unwrap();
    let junit = detections.path().join("junit.xml");
    let (ok, out) = cordon(
        &[
            "rules",
            "test",
            "repeated-tool-rejections",
            "--junit",
            junit.to_str().unwrap(),
        ],
        Some(&detections.path().join("rules")),
    );
    assert!(!ok, "a changed expectation fails: {out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = std::fs::read_dir(expected.parent().unwrap())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|ext| ext == "jsonl")
        })
        .count();
    assert!(
        xml.contains(&format!(
            "<testsuite name=\"repeated-tool-rejections\" tests=\"{cases}\" failures=\"1\""
        )),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), cases, "{xml}");
    let failed = xml
        .split("<testcase ")
        .find(|case| case.contains("name=\"fire-three-refusals\""))
        .unwrap();
    assert!(
        failed.contains("<failure message=") && failed.contains("severity"),
        "{failed}"
    );
}

#[test]
fn coverage_prints_techniques_and_writes_a_navigator_layer() {
    let dir = tempfile::tempdir().unwrap();
    let (attack, atlas) = (dir.path().join("attack.json"), dir.path().join("atlas.json"));
    let (ok, out) = cordon(
        &[
            "rules",
            "coverage",
            "--navigator",
            attack.to_str().unwrap(),
            "--atlas-navigator",
            atlas.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}");
    let row = out
        .lines()
        .find(|line| line.contains(" T1048 "))
        .expect("T1048 is covered");
    assert!(
        row.contains("agent-shell-network-tool") && row.contains("exfil-attempt-chain"),
        "{row}"
    );
    assert!(out.contains("ATLAS    AML.T0053"), "{out}");
    let layer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&attack).unwrap()).unwrap();
    assert_eq!(layer["domain"], "enterprise-attack");
    assert_eq!(layer["versions"]["layer"], "4.5");
    let t1048 = layer["techniques"]
        .as_array()
        .unwrap()
        .iter()
        .find(|technique| technique["techniqueID"] == "T1048")
        .unwrap();
    assert!(t1048["score"].as_u64().unwrap() >= 2, "{t1048}");
    assert!(t1048["comment"].as_str().unwrap().contains("agent-shell-network-tool"));
    let atlas: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&atlas).unwrap()).unwrap();
    assert!(
        atlas["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .all(|technique| technique["techniqueID"].as_str().unwrap().starts_with("AML.T"))
    );
}

#[test]
fn import_sigma_writes_a_rule_folder_that_rules_test_passes() {
    let into = tempfile::tempdir().unwrap();
    let sigma = crate::common::project_dir().join("detections/sigma");
    let (ok, out) = cordon(
        &[
            "rules",
            "import-sigma",
            sigma
                .join("sigmahq/proc_creation_lnx_susp_curl_fileupload.yml")
                .to_str()
                .unwrap(),
            sigma.join("sigmahq/net_connection_win_python.yml").to_str().unwrap(),
            "--into",
            into.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("ok    suspicious-curl-file-upload-linux (rule, from proc_creation_lnx_susp_curl_fileupload.yml)"),
        "{out}"
    );
    assert!(
        out.contains("skip  \"Python Initiated Connection\"") && out.contains("`CommandLine` has no column"),
        "{out}"
    );
    assert!(
        out.contains("1 converted into") && out.contains("1 not converted"),
        "{out}"
    );
    let (ok, out) = cordon(&["rules", "test"], Some(into.path()));
    assert!(ok && out.contains("2 cases, 2 passed, 0 failed"), "{out}");
    let (ok, out) = cordon(
        &[
            "rules",
            "import-sigma",
            sigma.join("sigmahq/net_connection_win_python.yml").to_str().unwrap(),
            "--into",
            into.path().to_str().unwrap(),
            "--strict",
        ],
        None,
    );
    assert!(
        !ok && out.contains("not converted"),
        "--strict fails on a rule it could not convert: {out}"
    );
}
