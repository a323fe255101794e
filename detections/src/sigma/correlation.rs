//! A Sigma correlation rule (`event_count`, `value_count`, `temporal`,
//! `temporal_ordered`, with `group-by`, `timespan` and aliases) as one Cordon rule:
//! input.sql keeps the events of every rule it references, tagged with the rule's
//! name; match.sql counts or orders them per group over a sliding window.

use std::collections::BTreeMap;
use std::time::Duration;

use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, SigmaRule, WindowMode};

use super::detection::{self, BASE_COLUMNS, DetectionSql, ident};
use super::example::EventDraft;
use super::folder::{EventBase, RuleFiles, flat_event, meta_of, slug};
use super::item::literal;
use super::mapping::{Resolved, SigmaMapping};
use super::single;

/// A referenced rule: how the correlation names it, the rule, its conversion and the
/// Sigma-side event that fires it.
struct Member<'a> {
    reference: String,
    /// A readable name for SQL: the rule's Sigma `name`, else its title's words.
    label: String,
    rule: &'a SigmaRule,
    converted: DetectionSql,
    draft: EventDraft,
}

/// One group-by (or counted) field: its output column and, per member, the Sigma
/// field and the column it maps to.
struct Keyed {
    output: String,
    per_member: Vec<(String, String)>,
}

fn key_column(name: &str, members: &[Member], rule: &CorrelationRule, mapping: &SigmaMapping) -> Result<Keyed, String> {
    let alias = rule.aliases.iter().find(|alias| alias.alias == name);
    let mut per_member = Vec::new();
    for member in members {
        let field = match alias {
            Some(alias) => alias
                .mapping
                .get(&member.reference)
                .or_else(|| member.rule.id.as_ref().and_then(|id| alias.mapping.get(id)))
                .or_else(|| member.rule.name.as_ref().and_then(|n| alias.mapping.get(n)))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "alias `{name}` does not say which field of `{}` it is",
                        member.reference
                    )
                })?,
            None => name.to_string(),
        };
        match mapping.resolve(&member.converted.logsource, &field) {
            Some(Resolved::Column { column, .. }) => per_member.push((field, column)),
            _ => {
                return Err(format!(
                    "`{field}` (group-by or counted field) has no column in `{}`",
                    member.converted.logsource
                ));
            }
        }
    }
    let first = per_member[0].1.clone();
    let output = if per_member.iter().all(|(_, column)| *column == first) {
        first
    } else {
        ident(&name.to_lowercase())
    };
    Ok(Keyed { output, per_member })
}

/// The counts a threshold condition needs: the smallest that satisfies it, and the
/// SQL over `measure`.
fn threshold(condition: &CorrelationCondition, measure: &str, default_min: u64) -> Result<(u64, String), String> {
    let CorrelationCondition::Threshold { predicates, .. } = condition else {
        return Err("an extended (boolean) correlation condition is not supported".into());
    };
    if predicates.is_empty() {
        return Ok((default_min, format!("{measure} >= {default_min}")));
    }
    let mut least = 1;
    let mut sql = Vec::new();
    for (operator, value) in predicates {
        let (symbol, low) = match operator {
            ConditionOperator::Gte => (">=", *value),
            ConditionOperator::Gt => (">", value + 1),
            ConditionOperator::Eq => ("=", *value),
            ConditionOperator::Lt => ("<", 1),
            ConditionOperator::Lte => ("<=", 1),
            ConditionOperator::Neq => ("<>", 1),
        };
        least = least.max(low);
        sql.push(format!("{measure} {symbol} {value}"));
    }
    Ok((least, sql.join(" AND ")))
}

pub fn convert(
    rule: &CorrelationRule,
    source: &str,
    rules: &[(String, &SigmaRule)],
    mapping: &SigmaMapping,
) -> Result<RuleFiles, String> {
    let kind = rule.correlation_type;
    if !matches!(
        kind,
        CorrelationType::EventCount
            | CorrelationType::ValueCount
            | CorrelationType::Temporal
            | CorrelationType::TemporalOrdered
    ) {
        return Err(format!("correlation type `{}` is not supported", kind.as_str()));
    }
    if rule.window != WindowMode::Sliding {
        return Err(format!(
            "`window: {}` is not supported (sliding windows only)",
            rule.window.as_str()
        ));
    }
    let mut members = Vec::new();
    for reference in &rule.rules {
        let (_, sigma) = rules
            .iter()
            .find(|(name, found)| name == reference || found.id.as_deref() == Some(reference))
            .ok_or_else(|| format!("it references `{reference}`, which is not among the imported rules"))?;
        let converted = detection::convert(sigma, mapping).map_err(|why| format!("rule `{reference}`: {why}"))?;
        let draft = detection::draft(sigma, &converted, mapping)
            .map_err(|why| format!("rule `{reference}`: no event for a fixture: {why}"))?;
        let label = sigma
            .name
            .clone()
            .unwrap_or_else(|| slug(&sigma.title))
            .to_lowercase()
            .replace('-', "_");
        members.push(Member {
            label,
            reference: reference.clone(),
            rule: sigma,
            converted,
            draft,
        });
    }
    let groups = rule
        .group_by
        .iter()
        .map(|name| key_column(name, &members, rule, mapping))
        .collect::<Result<Vec<_>, _>>()?;
    let counted = match (kind, &rule.condition) {
        (
            CorrelationType::ValueCount,
            CorrelationCondition::Threshold {
                field: Some(fields), ..
            },
        ) => {
            let field = fields.first().ok_or("value_count names no field")?;
            Some(key_column(field, &members, rule, mapping)?)
        }
        (CorrelationType::ValueCount, _) => return Err("value_count needs `condition.field`".into()),
        _ => None,
    };
    let window = Duration::from_secs(rule.timespan.seconds);
    let partition: Vec<String> = if groups.is_empty() {
        vec!["sigma_scope".into()]
    } else {
        groups.iter().map(|group| group.output.clone()).collect()
    };
    let input_sql = input_sql(rule, &members, &groups, counted.as_ref());
    let (least, match_sql) = match_sql(rule, &members, &partition)?;
    let cases = fixtures(rule, &members, &groups, counted.as_ref(), least, mapping)?;
    let mut notes: Vec<String> = members
        .iter()
        .flat_map(|member| member.converted.context.notes.iter().cloned())
        .collect();
    notes.dedup();
    Ok(RuleFiles {
        id: slug(&rule.title),
        meta: meta_of!(rule, source),
        window,
        entity: partition.clone(),
        partition_by: partition,
        input_sql,
        match_sql,
        cases,
        notes,
    })
}

fn input_sql(rule: &CorrelationRule, members: &[Member], groups: &[Keyed], counted: Option<&Keyed>) -> String {
    let mut ctes = Vec::new();
    let mut selects = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let name = ident(&member.label);
        let extra: Vec<String> = groups
            .iter()
            .chain(counted)
            .map(|keyed| keyed.per_member[index].1.clone())
            .collect();
        ctes.push(member.converted.cte(&name, &extra));
        let mut columns: Vec<String> = BASE_COLUMNS.iter().map(|column| column.to_string()).collect();
        for group in groups {
            let column = &group.per_member[index].1;
            if !BASE_COLUMNS.contains(&group.output.as_str()) {
                columns.push(format!("{column} AS {}", group.output));
            }
        }
        if let Some(counted) = counted {
            columns.push(format!("{} AS counted", counted.per_member[index].1));
        }
        if groups.is_empty() {
            columns.push("'all' AS sigma_scope".into());
        }
        columns.push(format!("{} AS sigma_rule", literal(&member.label)));
        selects.push(format!(
            "SELECT {}\nFROM {name}\nWHERE {}",
            columns.join(", "),
            member.converted.condition.render(0)
        ));
    }
    format!(
        "-- Sigma correlation: {} ({}), over the rules {}.\n-- Every event of those rules, named by the rule it matched.\nWITH {}\n{}\n",
        rule.title,
        rule.correlation_type.as_str(),
        members
            .iter()
            .map(|member| format!("{} ({})", member.label, member.reference))
            .collect::<Vec<_>>()
            .join(", "),
        ctes.join(",\n"),
        selects.join("\nUNION ALL\n")
    )
}

fn same_group(partition: &[String], left: &str, right: &str) -> String {
    partition
        .iter()
        .map(|column| format!("({right}.{column} IS NOT DISTINCT FROM {left}.{column})"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn match_sql(rule: &CorrelationRule, members: &[Member], partition: &[String]) -> Result<(u64, String), String> {
    let keys = |alias: &str| {
        partition
            .iter()
            .map(|column| format!("{alias}.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let outputs = partition.join(", ");
    let host = if partition.iter().any(|column| column == "host_id") {
        String::new()
    } else {
        ", max(e.host_id) AS host_id".into()
    };
    if rule.correlation_type == CorrelationType::TemporalOrdered {
        let mut joins = String::new();
        for (index, member) in members.iter().enumerate().skip(1) {
            let (previous, this) = (format!("e{index}"), format!("e{}", index + 1));
            joins.push_str(&format!(
                "JOIN kept {this} ON {} AND {this}.sigma_rule = {} AND {this}.time >= {previous}.time\n",
                same_group(partition, "e1", &this),
                literal(&member.label)
            ));
        }
        let last = format!("e{}", members.len());
        let evidence = (1..=members.len())
            .map(|index| format!("e{index}.event_id"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "-- Sigma temporal_ordered: {} in this order within ${{window}}, per {outputs}.\n\
             WITH chains AS (\n    SELECT {}, e1.time AS first_seen, {last}.time AS last_seen,\n           \
             make_array({evidence}) AS evidence, e1.host_id AS host_id\n    FROM kept e1\n{}    \
             WHERE e1.sigma_rule = {} AND {last}.time <= e1.time + ${{window}}\n)\n\
             SELECT {outputs}, min(first_seen) AS first_seen, max(last_seen) AS last_seen,\n       \
             flatten(array_agg(evidence)) AS evidence{}\nFROM chains\nGROUP BY {outputs}\n",
            members
                .iter()
                .map(|member| member.label.as_str())
                .collect::<Vec<_>>()
                .join(", then "),
            keys("e1"),
            joins.lines().map(|line| format!("    {line}\n")).collect::<String>(),
            literal(&members[0].label),
            if host.is_empty() {
                ""
            } else {
                ", max(host_id) AS host_id"
            },
        );
        return Ok((1, sql));
    }
    let (measure, what) = match rule.correlation_type {
        CorrelationType::EventCount => ("count(*)", "events"),
        CorrelationType::ValueCount => ("count(DISTINCT e.counted)", "distinct_values"),
        _ => ("count(DISTINCT e.sigma_rule)", "rules"),
    };
    // Sigma's temporal correlation needs every rule; the parser gives a temporal rule
    // without a condition `gte: 1`, which as a count of rules would mean any one.
    let all_rules = CorrelationCondition::Threshold {
        predicates: vec![(ConditionOperator::Gte, members.len() as u64)],
        field: None,
        percentile: None,
    };
    let condition = match &rule.condition {
        CorrelationCondition::Threshold { predicates, .. }
            if rule.correlation_type == CorrelationType::Temporal
                && predicates[..] == [(ConditionOperator::Gte, 1)] =>
        {
            &all_rules
        }
        condition => condition,
    };
    let (least, condition) = threshold(condition, what, members.len() as u64)?;
    let sql = format!(
        "-- Sigma {}: each event closes a window of ${{window}} over the events of its\n\
         -- group ({outputs}) up to it; a window where {condition} matches.\n\
         WITH windows AS (\n    SELECT {}, last.event_id AS closing, last.time AS last_seen,\n           \
         min(e.time) AS first_seen, {measure} AS {what},\n           array_agg(e.event_id) AS evidence{host}\n    \
         FROM kept last\n    JOIN kept e\n      ON {}\n     AND e.time <= last.time AND e.time >= last.time - ${{window}}\n    \
         GROUP BY {}, last.event_id, last.time\n)\n\
         SELECT {outputs}, first_seen, last_seen, evidence, {what}{}\nFROM windows\nWHERE {condition}\n",
        rule.correlation_type.as_str(),
        partition
            .iter()
            .map(|column| format!("last.{column} AS {column}"))
            .collect::<Vec<_>>()
            .join(", "),
        same_group(partition, "last", "e"),
        keys("last"),
        if host.is_empty() { "" } else { ", host_id" },
    );
    Ok((least, sql))
}

/// Fire and quiet cases from the members' own values: enough events (or distinct
/// values, or rules in order) inside the timespan, and one short of it.
fn fixtures(
    rule: &CorrelationRule,
    members: &[Member],
    groups: &[Keyed],
    counted: Option<&Keyed>,
    least: u64,
    mapping: &SigmaMapping,
) -> Result<BTreeMap<String, Vec<serde_json::Value>>, String> {
    let timespan = rule.timespan.seconds.max(2) as i64;
    let sigma_event = |index: usize, variant: Option<usize>| -> Result<BTreeMap<String, serde_json::Value>, String> {
        let member = &members[index];
        let mut event = member.draft.build();
        for group in groups {
            let field = &group.per_member[index].0;
            event.entry(field.clone()).or_insert_with(|| "group-1".into());
        }
        if let (Some(counted), Some(variant)) = (counted, variant) {
            let field = &counted.per_member[index].0;
            let value = member.draft.vary(field, variant).ok_or_else(|| {
                format!("the counted field `{field}` is fixed by the rule's own values: write the fixture by hand")
            })?;
            event.insert(field.clone(), value);
        }
        Ok(event)
    };
    let flat = |index: usize, sigma: &BTreeMap<String, serde_json::Value>, offset: i64, id: String| {
        let base = EventBase {
            time: single::base_time() + chrono::Duration::seconds(offset),
            host: "wks-sigma-1",
            user: "sigma-user",
            id,
        };
        flat_event(sigma, &members[index].converted.logsource, mapping, &base)
    };
    let count = least.max(1) as usize;
    let step = (timespan / (count as i64 + 1)).max(1);
    let mut fire = Vec::new();
    let mut quiet = Vec::new();
    match rule.correlation_type {
        CorrelationType::EventCount | CorrelationType::ValueCount => {
            let distinct = rule.correlation_type == CorrelationType::ValueCount;
            for k in 0..count {
                let index = k % members.len();
                fire.push(flat(
                    index,
                    &sigma_event(index, distinct.then_some(k))?,
                    k as i64 * step,
                    format!("c{k}"),
                ));
            }
            let quiet_count = if distinct { count } else { count - 1 };
            for k in 0..quiet_count {
                let index = k % members.len();
                quiet.push(flat(
                    index,
                    &sigma_event(index, distinct.then_some(0))?,
                    k as i64 * step,
                    format!("q{k}"),
                ));
            }
        }
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => {
            let step = (timespan / (members.len() as i64 + 1)).max(1);
            for index in 0..members.len() {
                fire.push(flat(
                    index,
                    &sigma_event(index, None)?,
                    index as i64 * step,
                    format!("c{index}"),
                ));
            }
            // Temporal: the same events spread wider than the timespan; ordered: reversed.
            let ordered = rule.correlation_type == CorrelationType::TemporalOrdered;
            for index in 0..members.len() {
                let offset = if ordered {
                    (members.len() - 1 - index) as i64 * step
                } else {
                    index as i64 * (timespan + 60)
                };
                quiet.push(flat(index, &sigma_event(index, None)?, offset, format!("q{index}")));
            }
            quiet.sort_by_key(|event| event["time"].as_str().unwrap_or_default().to_string());
        }
        _ => unreachable!("checked in convert"),
    }
    if quiet.is_empty() {
        return Err("its threshold is one event: a quiet case cannot be made from fewer".into());
    }
    Ok(BTreeMap::from([
        (single::FIRE_CASE.to_string(), fire),
        ("quiet-sigma-below-threshold".to_string(), quiet),
    ]))
}
