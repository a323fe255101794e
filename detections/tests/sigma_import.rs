//! `cordon rules import-sigma` on real SigmaHQ rules (detections/sigma/sigmahq) and
//! Cordon's correlation rules (detections/sigma/correlations): what converts passes the
//! fixtures generated from its own values, those values are what an independent Sigma
//! engine (rsigma-eval) matches, and what does not convert is reported with a reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cordon_detections::EngineConfig;
use cordon_detections::fixtures;
use cordon_detections::sigma::{self, ImportReport, SigmaMapping};

fn sigma_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sigma")
}

async fn import(paths: &[PathBuf], into: &Path) -> ImportReport {
    sigma::import(
        paths,
        into,
        &SigmaMapping::builtin(),
        &BTreeMap::new(),
        &EngineConfig::default(),
    )
    .await
    .expect("the import runs")
}

/// The SigmaHQ and correlation import the first two tests read, made once: it is most
/// of their time, and they only read what it wrote.
struct SharedImport {
    out: PathBuf,
    report: ImportReport,
}

static SHARED: tokio::sync::OnceCell<SharedImport> = tokio::sync::OnceCell::const_new();
/// The tests reading the shared import; the last one to finish removes its folder.
const SHARED_READERS: usize = 2;
static SHARED_DONE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held by a test while it reads the shared import (dropped on failure too).
struct Reading;

impl Drop for Reading {
    fn drop(&mut self) {
        let done = SHARED_DONE.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if let (SHARED_READERS, Some(shared)) = (done, SHARED.get()) {
            let _ = std::fs::remove_dir_all(&shared.out);
        }
    }
}

async fn sigmahq_import() -> (Reading, &'static SharedImport) {
    let shared = SHARED
        .get_or_init(|| async {
            let out = tempfile::tempdir().unwrap().keep();
            let report = import(&[sigma_dir().join("sigmahq"), sigma_dir().join("correlations")], &out).await;
            SharedImport { out, report }
        })
        .await;
    (Reading, shared)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigmahq_rules_convert_and_pass_the_fixtures_built_from_their_values() {
    let (_reading, SharedImport { out, report }) = sigmahq_import().await;

    let rules: Vec<_> = report
        .imported
        .iter()
        .filter(|imported| !imported.correlation)
        .collect();
    let correlations: Vec<_> = report.imported.iter().filter(|imported| imported.correlation).collect();
    assert!(rules.len() >= 30, "{} rules converted:\n{report:#?}", rules.len());
    assert!(
        correlations.len() >= 3,
        "{} correlations converted:\n{report:#?}",
        correlations.len()
    );
    for expected in [
        "suspicious-curl-file-upload-linux",
        "download-file-to-potentially-suspicious-directory-via-wget",
        "powershell-download-and-execution-cradles",
        "file-download-via-bitsadmin",
        "process-initiated-network-connection-to-ngrok-domain",
        "wget-creating-files-in-tmp-directory",
        "repeated-curl-file-uploads-by-one-user",
        "several-tunnelling-domains-from-one-host",
        "download-to-a-temporary-folder-then-a-netcat-reverse-shell",
        "curl-and-a-python-web-server-on-one-host",
        "repeated-policy-denies-for-one-user-and-agent-sigma",
    ] {
        assert!(
            report.imported.iter().any(|imported| imported.id == expected),
            "{expected} not converted:\n{report:#?}"
        );
    }

    // Not converted: each named with its reason, nothing dropped silently.
    let reason = |source: &str| {
        report
            .skipped
            .iter()
            .find(|skipped| skipped.source == source)
            .map(|skipped| skipped.reason.clone())
            .unwrap_or_else(|| panic!("{source} not reported:\n{report:#?}"))
    };
    assert!(reason("net_connection_win_python.yml").contains("`CommandLine` has no column"));
    assert!(reason("net_connection_win_domain_telegram_api_non_browser_access.yml").contains("needs a directory"));
    let sources: Vec<String> = std::fs::read_dir(sigma_dir().join("sigmahq"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".yml"))
        .collect();
    for source in &sources {
        let converted = rules.iter().filter(|imported| &imported.source == source).count();
        let reported = report
            .skipped
            .iter()
            .filter(|skipped| &skipped.source == source)
            .count();
        assert_eq!(converted + reported, 1, "{source}: converted or reported, once");
    }
    // A rule only a correlation uses (generate: false) is folded into it, and said so.
    assert_eq!(report.folded.len(), 1, "{:?}", report.folded);

    // The folders pass their fixtures again, as `cordon rules test` runs them.
    let results = fixtures::run_all(out, &BTreeMap::new(), &EngineConfig::default(), None, false)
        .await
        .unwrap();
    assert_eq!(results.len(), 2 * report.imported.len());
    let failures: Vec<_> = results.iter().filter(|result| result.failure.is_some()).collect();
    assert!(failures.is_empty(), "{failures:#?}");

    // The readable SQL: selections by name, the condition as Sigma wrote it.
    let input = std::fs::read_to_string(out.join("suspicious-curl-file-upload-linux/input.sql")).unwrap();
    assert!(
        input.contains("WHERE (selection_cli AND selection_img AND NOT filter_optional_localhost)"),
        "{input}"
    );
    assert!(
        input.contains("regexp_like(process_command_line, '\\s-[FTd]\\s')"),
        "{input}"
    );
    let settings = std::fs::read_to_string(out.join("suspicious-curl-file-upload-linux/rule.toml")).unwrap();
    for expected in [
        "id = \"00b90cc1-17ec-402c-96ad-3a8117d7a582\"",
        "level = \"medium\"",
        "attack = [\"T1567\", \"T1105\"]",
        "\"attack.exfiltration\"",
    ] {
        assert!(settings.contains(expected), "{expected} in {settings}");
    }
}

/// Events in Sigma's terms with the same verdict in an independent Sigma engine
/// (rsigma-eval) and in the converted rule: the generated fire and quiet events, and the
/// fire event's strings in upper and lower case (Sigma matches without case unless
/// `cased`, `re` or base64 say otherwise). A shared misreading of Sigma by the fixture
/// generator and the SQL cannot pass unseen.
#[tokio::test(flavor = "multi_thread")]
async fn converted_rules_agree_with_an_independent_sigma_engine() {
    let (_reading, SharedImport { out, report }) = sigmahq_import().await;
    let mapping = SigmaMapping::builtin();
    let recase = |event: &BTreeMap<String, serde_json::Value>, upper: bool| -> BTreeMap<String, serde_json::Value> {
        event
            .iter()
            .map(|(field, value)| {
                let value = match value.as_str() {
                    Some(text) if upper => text.to_uppercase().into(),
                    Some(text) => text.to_lowercase().into(),
                    None => value.clone(),
                };
                (field.clone(), value)
            })
            .collect()
    };
    let (mut checked, mut firing) = (0, 0);
    for imported in report.imported.iter().filter(|imported| !imported.correlation) {
        let (Some(fire), Some(quiet)) = (&imported.fire_event, &imported.quiet_event) else {
            continue;
        };
        let collection = rsigma_parser::parse_sigma_file(&sigma_dir().join("sigmahq").join(&imported.source)).unwrap();
        let rule = rsigma_eval::compile_rule(&collection.rules[0]).unwrap();
        let variants = [
            ("fire", fire.clone(), Some(true)),
            ("quiet", quiet.clone(), Some(false)),
            ("upper", recase(fire, true), None),
            ("lower", recase(fire, false), None),
        ];
        for (name, event, expected) in variants {
            let json = serde_json::to_value(&event).unwrap();
            let sigma = rsigma_eval::evaluate_rule(&rule, &rsigma_eval::JsonEvent::borrow(&json)).is_some();
            if let Some(expected) = expected {
                assert_eq!(sigma, expected, "{}: rsigma on the {name} event {json}", imported.id);
            }
            let contract = sigma::contract_event(&event, &imported.logsource, &mapping, "v1");
            let line = fixtures::FixtureEvent {
                value: contract.clone(),
                arrival: None,
                provenance: None,
                line: 1,
            };
            let batches = fixtures::to_batches(Path::new("variant"), &[line]).unwrap();
            let produced = fixtures::produce(
                &out.join(&imported.id),
                batches,
                &BTreeMap::new(),
                &EngineConfig::default(),
            )
            .await
            .unwrap();
            let cordon = !produced.alerts.is_empty();
            assert_eq!(
                cordon, sigma,
                "{}: {name} event {contract}: Cordon {cordon}, rsigma {sigma}",
                imported.id
            );
            checked += 1;
            firing += usize::from(cordon);
        }
    }
    assert!(checked >= 120, "{checked}");
    assert!(firing >= 60, "{firing} of {checked} fire");
}

#[tokio::test]
async fn what_cannot_be_converted_is_reported_per_rule_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |title: &str, logsource: &str, detection: &str| {
        format!("title: {title}\nlogsource:\n    {logsource}\ndetection:\n{detection}\nlevel: low\n")
    };
    let cases = [
        (
            "keywords.yml",
            rule(
                "Keywords",
                "category: process_creation",
                "    keywords:\n        - mimikatz\n    condition: keywords",
            ),
            "keyword detections",
        ),
        (
            "registry.yml",
            rule(
                "Registry",
                "category: registry_set",
                "    selection:\n        TargetObject|contains: Run\n    condition: selection",
            ),
            "log source windows/registry_set is not in the mapping",
        ),
        (
            "unmapped.yml",
            rule(
                "Unmapped",
                "category: process_creation",
                "    selection:\n        GrandParentImage: x\n    condition: selection",
            ),
            "`GrandParentImage` has no column",
        ),
        (
            "never.yml",
            rule(
                "Never",
                "category: process_creation",
                "    selection:\n        OriginalFileName: curl.exe\n    condition: selection",
            ),
            "can never match",
        ),
        (
            "lookaround.yml",
            rule(
                "Lookaround",
                "category: process_creation",
                "    selection:\n        CommandLine|re: 'curl(?!\\.exe)'\n    condition: selection",
            ),
            "look-around",
        ),
        ("broken.yml", "title: [unclosed\n".to_string(), "does not parse"),
    ];
    for (file, text, _) in &cases {
        std::fs::write(
            dir.path().join(file),
            text.replace("category: registry_set", "product: windows\n    category: registry_set"),
        )
        .unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let report = import(&[dir.path().to_path_buf()], out.path()).await;
    assert!(report.imported.is_empty(), "{report:#?}");
    for (file, _, reason) in cases {
        let skipped = report
            .skipped
            .iter()
            .find(|skipped| skipped.source == file)
            .unwrap_or_else(|| panic!("{file} not reported: {report:#?}"));
        assert!(skipped.reason.contains(reason), "{file}: {}", skipped.reason);
    }
}

/// Rules checked side by side still get their folders in the order of their files: two
/// rules with one title get `<slug>` and `<slug>-2`, a re-import replaces each in its own
/// folder, and nothing of the check is left in the rules folder.
#[tokio::test(flavor = "multi_thread")]
async fn rules_sharing_a_title_keep_their_folders_across_imports() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |id: &str, image: &str| {
        format!(
            "title: Curl Upload\nid: {id}\nlogsource:\n    product: linux\n    category: process_creation\n\
             detection:\n    selection:\n        Image|endswith: {image}\n    condition: selection\nlevel: low\n"
        )
    };
    std::fs::write(
        dir.path().join("a.yml"),
        rule("11111111-1111-4111-8111-111111111111", "/curl"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        rule("22222222-2222-4222-8222-222222222222", "/wget"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let ids = |report: &ImportReport| -> Vec<(String, String)> {
        report
            .imported
            .iter()
            .map(|imported| (imported.source.clone(), imported.id.clone()))
            .collect()
    };
    let expected = vec![
        ("a.yml".to_string(), "curl-upload".to_string()),
        ("b.yml".to_string(), "curl-upload-2".to_string()),
    ];
    let first = import(&[dir.path().to_path_buf()], out.path()).await;
    assert_eq!(ids(&first), expected, "{first:#?}");
    let again = import(&[dir.path().to_path_buf()], out.path()).await;
    assert_eq!(
        ids(&again),
        expected,
        "a re-import replaces each rule in its folder: {again:#?}"
    );
    let input = std::fs::read_to_string(out.path().join("curl-upload-2/input.sql")).unwrap();
    assert!(input.contains("/wget"), "{input}");
    let folders: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(folders.len(), 2, "only the rules' folders: {folders:?}");
    let results = fixtures::run_all(out.path(), &BTreeMap::new(), &EngineConfig::default(), None, false)
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|result| result.failure.is_none()), "{results:#?}");
}
