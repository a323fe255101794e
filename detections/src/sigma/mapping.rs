//! The field mapping `cordon rules import-sigma` converts with (detections/sigma/
//! mapping.toml): which contract events each Sigma log source means and which column
//! each Sigma field is, like a pySigma processing pipeline.

use std::collections::BTreeMap;
use std::path::Path;

use cordon_schemas::fields::{ATTR_FIELDS, FieldType};
use serde::Deserialize;

use crate::error::RuleError;

/// The mapping that ships with Cordon, used when no `--mapping` file is given.
pub const DEFAULT_MAPPING: &str = include_str!("../../sigma/mapping.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigmaMapping {
    /// Fields mapped the same way in every log source (a log source's own win).
    #[serde(default)]
    fields: BTreeMap<String, FieldTarget>,
    #[serde(default)]
    logsources: BTreeMap<String, LogSourceMapping>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceMapping {
    /// The SQL condition that picks this log source's events out of `events`.
    #[serde(rename = "where")]
    pub filter: String,
    /// Contract attributes every generated test event of this log source carries.
    #[serde(default)]
    pub fixture: BTreeMap<String, String>,
    #[serde(default)]
    fields: BTreeMap<String, FieldTarget>,
}

/// What a Sigma field is in Cordon's events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum FieldTarget {
    Column(String),
    Basename { column: String, basename: bool },
    Constant { value: String },
    Absent { absent: String },
}

/// A field resolved for one log source.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Column {
        column: String,
        ty: FieldType,
        /// The column holds only the last path part of what Sigma calls a path.
        basename: bool,
    },
    Constant(String),
    Absent(String),
}

/// The contract columns a mapping may name, with their types.
fn column_type(column: &str) -> Option<FieldType> {
    match column {
        "host_id" | "host_name" | "event_name" | "event_id" | "service_name" => Some(FieldType::Str),
        _ => ATTR_FIELDS
            .iter()
            .find(|field| field.column == column)
            .map(|field| field.ty),
    }
}

impl SigmaMapping {
    pub fn load(path: &Path) -> Result<SigmaMapping, RuleError> {
        let text = std::fs::read_to_string(path).map_err(|error| RuleError::io(path, error))?;
        SigmaMapping::parse(&text, path)
    }

    pub fn builtin() -> SigmaMapping {
        SigmaMapping::parse(DEFAULT_MAPPING, Path::new("detections/sigma/mapping.toml"))
            .expect("the built-in Sigma mapping is checked by its unit test")
    }

    pub fn parse(text: &str, path: &Path) -> Result<SigmaMapping, RuleError> {
        let mapping: SigmaMapping = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map(|span| crate::settings::line_column(text, span.start))
                .map_or((None, None), |(line, column)| (Some(line), Some(column)));
            RuleError::at(path, line, column, error.message().to_string())
        })?;
        let all = mapping
            .fields
            .iter()
            .chain(mapping.logsources.values().flat_map(|source| source.fields.iter()));
        for (field, target) in all {
            let column = match target {
                FieldTarget::Column(column) | FieldTarget::Basename { column, .. } => column,
                _ => continue,
            };
            if column_type(column).is_none() {
                return Err(RuleError::in_file(
                    path,
                    format!(
                        "field `{field}` maps to `{column}`, which is not a column of the events (schemas/CONTRACT.md)"
                    ),
                ));
            }
        }
        Ok(mapping)
    }

    /// The log source a Sigma rule's `logsource` names (by category, else service).
    pub fn logsource(&self, category: Option<&str>, service: Option<&str>) -> Option<(&str, &LogSourceMapping)> {
        [category, service]
            .into_iter()
            .flatten()
            .find_map(|name| self.logsources.get_key_value(name))
            .map(|(name, source)| (name.as_str(), source))
    }

    /// The attributes every generated test event of `logsource` carries.
    pub fn fixture(&self, logsource: &str) -> Option<&BTreeMap<String, String>> {
        self.logsources.get(logsource).map(|source| &source.fixture)
    }

    pub fn logsource_names(&self) -> Vec<&str> {
        self.logsources.keys().map(String::as_str).collect()
    }

    /// What `field` is in `logsource`'s events; None when the mapping does not say.
    pub fn resolve(&self, logsource: &str, field: &str) -> Option<Resolved> {
        let target = self
            .logsources
            .get(logsource)
            .and_then(|source| source.fields.get(field))
            .or_else(|| self.fields.get(field))?;
        Some(match target {
            FieldTarget::Column(column) => Resolved::Column {
                ty: column_type(column)?,
                column: column.clone(),
                basename: false,
            },
            FieldTarget::Basename { column, basename } => Resolved::Column {
                ty: column_type(column)?,
                column: column.clone(),
                basename: *basename,
            },
            FieldTarget::Constant { value } => Resolved::Constant(value.clone()),
            FieldTarget::Absent { absent } => Resolved::Absent(absent.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_mapping_loads_and_resolves_the_issue_fields() {
        let mapping = SigmaMapping::builtin();
        let resolved = |source: &str, field: &str| mapping.resolve(source, field).unwrap();
        assert!(
            matches!(resolved("process_creation", "Image"), Resolved::Column { column, .. } if column == "process_executable_path")
        );
        assert!(matches!(
            resolved("process_creation", "ParentImage"),
            Resolved::Column { basename: true, .. }
        ));
        assert!(matches!(
            resolved("network_connection", "DestinationPort"),
            Resolved::Column { ty: FieldType::Int, .. }
        ));
        assert!(
            matches!(resolved("file_event", "TargetFilename"), Resolved::Column { column, .. } if column == "file_path")
        );
        assert!(matches!(
            resolved("process_creation", "OriginalFileName"),
            Resolved::Absent(_)
        ));
        assert!(mapping.resolve("process_creation", "NoSuchField").is_none());
        assert_eq!(
            mapping.logsource(Some("process_creation"), None).unwrap().0,
            "process_creation"
        );
        assert!(mapping.logsource(Some("registry_set"), None).is_none());
    }

    #[test]
    fn a_column_that_does_not_exist_is_refused_with_the_field() {
        let text = "[fields]\nUser = \"user_nmae\"\n";
        let error = SigmaMapping::parse(text, Path::new("m.toml")).unwrap_err().to_string();
        assert!(error.contains("User") && error.contains("user_nmae"), "{error}");
    }
}
