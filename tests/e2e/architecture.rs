//! The workspace's shape (docs/ARCHITECTURE.md): the stage crates import none of each
//! other, in their code or their tests; only the binary wires them.

const STAGES: [&str; 3] = ["ingest", "detections", "responder"];

/// Every `cordon-*` crate `dir`'s Cargo.toml names, in any dependency table.
fn cordon_dependencies(dir: &str) -> Vec<String> {
    let path = crate::common::project_dir().join(dir).join("Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    ["dependencies", "dev-dependencies", "build-dependencies"]
        .iter()
        .filter_map(|table| manifest.get(*table).and_then(|value| value.as_table()))
        .flat_map(|table| table.keys())
        .filter(|name| name.starts_with("cordon-"))
        .cloned()
        .collect()
}

#[test]
fn no_stage_crate_depends_on_another() {
    for stage in STAGES {
        let depends = cordon_dependencies(stage);
        let others: Vec<&String> = depends
            .iter()
            .filter(|name| STAGES.iter().any(|other| **name == format!("cordon-{other}")))
            .collect();
        assert!(
            others.is_empty(),
            "{stage}/ depends on {others:?}: move the shared type to schemas/ and let the binary wire the stages"
        );
        assert!(
            depends.iter().any(|name| name == "cordon-schemas"),
            "{stage}/ uses the leaf"
        );
    }
    assert!(cordon_dependencies("schemas").is_empty(), "schemas/ is the leaf");
    let binary = cordon_dependencies(".");
    for stage in STAGES {
        assert!(binary.contains(&format!("cordon-{stage}")), "the binary wires {stage}");
    }
}
