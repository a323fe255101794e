//! A Sigma rule's detection section as SQL: each named selection becomes a boolean
//! column (`coalesce(.., false)`: a missing field does not match, as in Sigma) and the
//! condition is written over those names, so the SQL reads like the rule.

use std::collections::{BTreeMap, HashMap};

use rsigma_parser::{ConditionExpr, Detection, Quantifier, SigmaRule};

use super::boolean::Bool;
use super::example::EventDraft;
use super::item::{ItemContext, item_sql};
use super::mapping::{LogSourceMapping, SigmaMapping};

/// The columns every converted rule keeps, whatever its fields.
pub const BASE_COLUMNS: &[&str] = &[
    "time",
    "host_id",
    "user_name",
    "gen_ai_agent_id",
    "session_id",
    "event_id",
    "event_name",
];

/// A rule's detection, converted.
#[derive(Debug)]
pub struct DetectionSql {
    pub logsource: String,
    pub filter: String,
    /// Named selections that are not constant, in name order.
    pub selections: Vec<(String, Bool)>,
    pub condition: Bool,
    pub context: ItemContext,
}

impl DetectionSql {
    /// The mapped columns the rule reads, besides the base ones.
    pub fn fields(&self) -> Vec<String> {
        self.context
            .columns
            .iter()
            .filter(|column| !BASE_COLUMNS.contains(&column.as_str()))
            .cloned()
            .collect()
    }

    /// `name AS (SELECT base, fields, selections FROM events WHERE logsource)`.
    pub fn cte(&self, name: &str, extra: &[String]) -> String {
        let mut lines: Vec<String> = vec![format!("           {}", BASE_COLUMNS.join(", "))];
        let fields: Vec<String> = self
            .fields()
            .into_iter()
            .chain(extra.iter().cloned())
            .filter(|column| !BASE_COLUMNS.contains(&column.as_str()))
            .collect();
        if !fields.is_empty() {
            lines.push(format!("           {}", dedup(fields).join(", ")));
        }
        for (selection, predicate) in &self.selections {
            lines.push(format!(
                "           -- {selection}\n           coalesce({}, false) AS {}",
                predicate.render(11),
                ident(selection)
            ));
        }
        format!(
            "{name} AS (\n    SELECT\n{}\n    FROM events\n    WHERE {}  -- {}\n)",
            lines.join(",\n"),
            self.filter,
            self.logsource
        )
    }
}

fn dedup(columns: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    columns
        .into_iter()
        .filter(|column| seen.insert(column.clone()))
        .collect()
}

/// An SQL identifier for a Sigma name (quoted unless plain lower-case).
pub fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The log source mapping a rule's `logsource` names.
pub fn logsource<'m>(rule: &SigmaRule, mapping: &'m SigmaMapping) -> Result<(String, &'m LogSourceMapping), String> {
    let source = &rule.logsource;
    mapping
        .logsource(source.category.as_deref(), source.service.as_deref())
        .map(|(name, found)| (name.to_string(), found))
        .ok_or_else(|| {
            format!(
                "log source {} is not in the mapping (it maps: {})",
                [&source.product, &source.category, &source.service]
                    .iter()
                    .filter_map(|part| part.as_deref())
                    .collect::<Vec<_>>()
                    .join("/"),
                mapping.logsource_names().join(", ")
            )
        })
}

pub fn convert(rule: &SigmaRule, mapping: &SigmaMapping) -> Result<DetectionSql, String> {
    let (name, source) = logsource(rule, mapping)?;
    let detections = &rule.detection;
    if detections.timeframe.is_some() {
        return Err("`timeframe` aggregations are Sigma's old correlation form: write a correlation rule".into());
    }
    let mut context = ItemContext::default();
    let mut named: BTreeMap<String, Bool> = BTreeMap::new();
    for (selection, detection) in sorted(&detections.named) {
        let predicate = detection_sql(detection, mapping, &name, &mut context)
            .map_err(|why| format!("selection `{selection}`: {why}"))?;
        named.insert(selection.clone(), predicate);
    }
    let refer = |selection: &str| match &named[selection] {
        Bool::Const(value) => Bool::Const(*value),
        _ => Bool::sql(ident(selection)),
    };
    let conditions = detections
        .conditions
        .iter()
        .map(|condition| condition_sql(condition, &named, &refer))
        .collect::<Result<Vec<_>, _>>()?;
    let condition = Bool::or(conditions);
    if condition.is_false() {
        return Err(format!(
            "it can never match here: {}",
            context.notes.iter().cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    let selections = named
        .into_iter()
        .filter(|(_, predicate)| !matches!(predicate, Bool::Const(_)))
        .collect();
    Ok(DetectionSql {
        logsource: name,
        filter: source.filter.clone(),
        selections,
        condition,
        context,
    })
}

fn sorted(named: &HashMap<String, Detection>) -> Vec<(&String, &Detection)> {
    let mut named: Vec<_> = named.iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named
}

fn detection_sql(
    detection: &Detection,
    mapping: &SigmaMapping,
    logsource: &str,
    context: &mut ItemContext,
) -> Result<Bool, String> {
    match detection {
        Detection::AllOf(items) => Ok(Bool::and(
            items
                .iter()
                .map(|item| item_sql(item, mapping, logsource, context))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Detection::AnyOf(parts) => Ok(Bool::or(
            parts
                .iter()
                .map(|part| detection_sql(part, mapping, logsource, context))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Detection::And(parts) => Ok(Bool::and(
            parts
                .iter()
                .map(|part| detection_sql(part, mapping, logsource, context))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Detection::Keywords(_) => {
            Err("keyword detections search every field of an event; Cordon's rules match named columns".into())
        }
        Detection::ArrayMatch { .. } | Detection::Conditional { .. } => {
            Err("array matching (`field[any]:`) has no column form in the contract".into())
        }
    }
}

/// The names a selector (`1 of selection_*`, `all of them`) expands to, sorted.
fn selected<'n>(pattern: &rsigma_parser::SelectorPattern, named: &'n BTreeMap<String, Bool>) -> Vec<&'n String> {
    named
        .keys()
        .filter(|name| pattern.matches_detection_name(name))
        .collect()
}

fn condition_sql(
    condition: &ConditionExpr,
    named: &BTreeMap<String, Bool>,
    refer: &dyn Fn(&str) -> Bool,
) -> Result<Bool, String> {
    let recurse = |part: &ConditionExpr| condition_sql(part, named, refer);
    Ok(match condition {
        ConditionExpr::Identifier(name) => {
            if !named.contains_key(name) {
                return Err(format!(
                    "the condition names `{name}`, which the detection does not define"
                ));
            }
            refer(name)
        }
        ConditionExpr::And(parts) => Bool::and(parts.iter().map(recurse).collect::<Result<Vec<_>, _>>()?),
        ConditionExpr::Or(parts) => Bool::or(parts.iter().map(recurse).collect::<Result<Vec<_>, _>>()?),
        ConditionExpr::Not(part) => Bool::not(recurse(part)?),
        ConditionExpr::Selector { quantifier, pattern } => {
            let names = selected(pattern, named);
            let parts: Vec<Bool> = names.iter().map(|name| refer(name)).collect();
            match quantifier {
                Quantifier::Any => Bool::or(parts),
                Quantifier::All => Bool::and(parts),
                Quantifier::Count(1) => Bool::or(parts),
                Quantifier::Count(count) => {
                    return Err(format!(
                        "`{count} of {pattern}` (more than one but not all) is not supported"
                    ));
                }
            }
        }
    })
}

/// A Sigma-side event the rule matches: the items of the selections its condition
/// needs true (the first alternative that can match), nothing of those it needs false.
pub fn draft(rule: &SigmaRule, converted: &DetectionSql, mapping: &SigmaMapping) -> Result<EventDraft, String> {
    let mut draft = EventDraft::default();
    let mut context = ItemContext::default();
    let named = &rule.detection.named;
    let can_match = |detection: &Detection, context: &mut ItemContext| {
        detection_sql(detection, mapping, &converted.logsource, context).is_ok_and(|sql| !sql.is_false())
    };
    fn require(
        detection: &Detection,
        draft: &mut EventDraft,
        context: &mut ItemContext,
        can_match: &dyn Fn(&Detection, &mut ItemContext) -> bool,
    ) -> Result<(), String> {
        match detection {
            Detection::AllOf(items) => items.iter().try_for_each(|item| draft.require(item)),
            Detection::And(parts) => parts
                .iter()
                .try_for_each(|part| require(part, draft, context, can_match)),
            Detection::AnyOf(parts) => {
                let first = parts
                    .iter()
                    .find(|part| can_match(part, context))
                    .ok_or("no alternative can match")?;
                require(first, draft, context, can_match)
            }
            _ => Err("unsupported detection".into()),
        }
    }
    fn satisfy(
        condition: &ConditionExpr,
        want: bool,
        named: &HashMap<String, Detection>,
        draft: &mut EventDraft,
        context: &mut ItemContext,
        can_match: &dyn Fn(&Detection, &mut ItemContext) -> bool,
    ) -> Result<(), String> {
        match (condition, want) {
            (ConditionExpr::Identifier(name), true) => require(&named[name], draft, context, can_match),
            (ConditionExpr::And(parts), true) => parts
                .iter()
                .try_for_each(|part| satisfy(part, true, named, draft, context, can_match)),
            (ConditionExpr::Or(parts), true) => {
                for part in parts {
                    let mut attempt = draft.clone();
                    if satisfy(part, true, named, &mut attempt, context, can_match).is_ok() {
                        *draft = attempt;
                        return Ok(());
                    }
                }
                Err("no alternative of the condition can match".into())
            }
            (ConditionExpr::Not(part), want) => satisfy(part, !want, named, draft, context, can_match),
            (ConditionExpr::Selector { quantifier, pattern }, true) => {
                let mut names: Vec<&String> = named
                    .keys()
                    .filter(|name| pattern.matches_detection_name(name))
                    .filter(|name| can_match(&named[*name], context))
                    .collect();
                names.sort();
                let take = match quantifier {
                    Quantifier::All => names.len(),
                    _ => 1,
                };
                if names.is_empty() {
                    return Err(format!("no selection of `{pattern}` can match"));
                }
                names
                    .into_iter()
                    .take(take)
                    .try_for_each(|name| require(&named[name], draft, context, can_match))
            }
            // What must be false is left out of the event.
            (_, false) => Ok(()),
        }
    }
    let condition = rule.detection.conditions.first().ok_or("the rule has no condition")?;
    satisfy(condition, true, named, &mut draft, &mut context, &can_match)?;
    Ok(draft)
}
