//! `cordon rules coverage`: which MITRE ATT&CK and ATLAS techniques the enabled rules
//! cover, as a table and as an ATT&CK Navigator layer (the JSON the Navigator opens).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::settings::RuleSettings;

/// Technique id -> the enabled rules that name it, for one framework.
pub type Covered = BTreeMap<String, Vec<String>>;

#[derive(Debug, Default)]
pub struct Coverage {
    pub attack: Covered,
    pub atlas: Covered,
    /// Enabled rules that name no technique.
    pub unmapped: Vec<String>,
    pub disabled: Vec<String>,
}

/// Reads every rule folder's settings under `rules_dir`; folders whose settings do
/// not load are skipped (`cordon rules check` says why).
pub fn coverage(rules_dir: &Path) -> Result<Coverage, crate::RuleError> {
    let mut coverage = Coverage::default();
    for dir in crate::rule::rule_dirs(rules_dir)? {
        let id = dir
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
            .to_string();
        let Ok(settings) = RuleSettings::load(&dir.join(crate::rule::SETTINGS_FILE)) else {
            continue;
        };
        if settings.disabled {
            coverage.disabled.push(id);
            continue;
        }
        if settings.attack.is_empty() && settings.atlas.is_empty() {
            coverage.unmapped.push(id.clone());
        }
        for technique in &settings.attack {
            coverage.attack.entry(technique.clone()).or_default().push(id.clone());
        }
        for technique in &settings.atlas {
            coverage.atlas.entry(technique.clone()).or_default().push(id.clone());
        }
    }
    Ok(coverage)
}

impl Coverage {
    /// One line per technique: framework, id, how many rules, which.
    pub fn table(&self) -> String {
        let mut out = format!("{:<8} {:<14} {:>5}  rules\n", "matrix", "technique", "rules");
        for (matrix, covered) in [("ATT&CK", &self.attack), ("ATLAS", &self.atlas)] {
            for (technique, rules) in covered {
                out.push_str(&format!(
                    "{matrix:<8} {technique:<14} {:>5}  {}\n",
                    rules.len(),
                    rules.join(", ")
                ));
            }
        }
        out.push_str(&format!(
            "{} ATT&CK and {} ATLAS techniques covered by enabled rules",
            self.attack.len(),
            self.atlas.len()
        ));
        if !self.unmapped.is_empty() {
            out.push_str(&format!("; no technique named by: {}", self.unmapped.join(", ")));
        }
        if !self.disabled.is_empty() {
            out.push_str(&format!("; disabled, not counted: {}", self.disabled.join(", ")));
        }
        out.push('\n');
        out
    }

    /// An ATT&CK Navigator layer (format 4.5) scoring each technique by its number of
    /// rules, the rules in its comment. `atlas` gives the ATLAS matrix's layer instead.
    pub fn navigator_layer(&self, atlas: bool) -> serde_json::Value {
        let (covered, domain, name) = if atlas {
            (&self.atlas, "atlas-atlas", "Cordon rules: ATLAS coverage")
        } else {
            (&self.attack, "enterprise-attack", "Cordon rules: ATT&CK coverage")
        };
        let most = covered.values().map(Vec::len).max().unwrap_or(1).max(1);
        let techniques: Vec<serde_json::Value> = covered
            .iter()
            .map(|(technique, rules)| {
                json!({
                    "techniqueID": technique,
                    "score": rules.len(),
                    "enabled": true,
                    "comment": rules.join(", "),
                    "metadata": rules.iter().map(|rule| json!({"name": "rule", "value": rule})).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "name": name,
            "versions": {"layer": "4.5", "navigator": "5.1.0"},
            "domain": domain,
            "description": "Techniques named by Cordon's enabled detection rules (cordon rules coverage).",
            "techniques": techniques,
            "gradient": {"colors": ["#d6eaf8", "#1f618d"], "minValue": 0, "maxValue": most},
            "legendItems": [],
            "showTacticRowBackground": false,
            "selectTechniquesAcrossTactics": true,
            "selectSubtechniquesWithParent": false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_rule(root: &Path, id: &str, extra: &str) {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(crate::rule::SETTINGS_FILE),
            format!(
                "title = \"{id}\"\ndescription = \"d\"\nseverity = \"low\"\npartition_by = [\"host_id\"]\nsuppression = \"1h\"\n{extra}"
            ),
        )
        .unwrap();
    }

    #[test]
    fn counts_enabled_rules_per_technique_and_writes_a_navigator_layer() {
        let root = tempfile::tempdir().unwrap();
        write_rule(
            root.path(),
            "a",
            "attack = [\"T1059.004\", \"T1105\"]\natlas = [\"AML.T0053\"]\n",
        );
        write_rule(root.path(), "b", "attack = [\"T1105\"]\n");
        write_rule(root.path(), "c", "");
        write_rule(root.path(), "d", "attack = [\"T1003\"]\ndisabled = true\n");
        let coverage = coverage(root.path()).unwrap();
        assert_eq!(coverage.attack["T1105"], vec!["a", "b"]);
        assert_eq!(coverage.atlas["AML.T0053"], vec!["a"]);
        assert!(!coverage.attack.contains_key("T1003"), "disabled rules do not cover");
        assert_eq!(coverage.unmapped, vec!["c"]);
        let table = coverage.table();
        assert!(table.contains("ATT&CK   T1105              2  a, b"), "{table}");
        assert!(table.contains("2 ATT&CK and 1 ATLAS techniques"), "{table}");
        let layer = coverage.navigator_layer(false);
        assert_eq!(layer["domain"], "enterprise-attack");
        assert_eq!(layer["techniques"].as_array().unwrap().len(), 2);
        let t1105 = layer["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .find(|technique| technique["techniqueID"] == "T1105")
            .unwrap();
        assert_eq!(
            (t1105["score"].as_u64(), t1105["comment"].as_str()),
            (Some(2), Some("a, b"))
        );
        assert_eq!(
            coverage.navigator_layer(true)["techniques"][0]["techniqueID"],
            "AML.T0053"
        );
    }
}
