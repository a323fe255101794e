//! The SQL parser backtracks: on some malformed input (an unclosed `r[a. b[c. ...`, a
//! chain of unclosed `CAST(`) each level re-parses everything after it, so a few hundred
//! bytes took minutes of CPU (found by the `hunt_guard` fuzz target). A parse cannot be
//! cancelled from outside, so it is bounded from inside: this dialect behaves exactly as
//! DataFusion's default `GenericDialect` and counts the parser's expression steps; past a
//! budget linear in the input it fails with the one error the parser never backtracks
//! on (`RecursionLimitExceeded`), and every later step fails at once too.

use std::any::TypeId;
use std::cell::Cell;

use datafusion::sql::sqlparser::ast::{Expr, Statement};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion::sql::sqlparser::parser::{Parser, ParserError};

/// Expression steps allowed per byte of SQL, and at least. Shipped rules take under 1
/// step per byte; 16 leaves room for any well-formed query (measured in the tests).
const STEPS_PER_BYTE: u64 = 16;
const MIN_STEPS: u64 = 4_096;

#[derive(Debug)]
pub struct BoundedDialect {
    inner: GenericDialect,
    steps: Cell<u64>,
    budget: u64,
}

impl BoundedDialect {
    pub fn for_sql(sql: &str) -> Self {
        Self {
            inner: GenericDialect {},
            steps: Cell::new(0),
            budget: (sql.len() as u64).saturating_mul(STEPS_PER_BYTE).max(MIN_STEPS),
        }
    }

    /// Whether the parse stopped because it ran out of steps.
    pub fn exhausted(&self) -> bool {
        self.steps.get() > self.budget
    }

    #[cfg(test)]
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    fn step(&self) -> Result<(), ParserError> {
        let steps = self.steps.get().saturating_add(1);
        self.steps.set(steps);
        if steps > self.budget {
            Err(ParserError::RecursionLimitExceeded)
        } else {
            Ok(())
        }
    }
}

/// Forwards the `bool` settings `GenericDialect` overrides (all it overrides besides
/// the three identifier-character methods below), so parsing is unchanged.
macro_rules! forward {
    ($($name:ident),* $(,)?) => {
        $(fn $name(&self) -> bool { self.inner.$name() })*
    };
}

impl Dialect for BoundedDialect {
    // Checks written as `dialect_of!(parser is GenericDialect)` must still see Generic.
    fn dialect(&self) -> TypeId {
        self.inner.dialect()
    }

    fn parse_prefix(&self, _parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        self.step().err().map(Err)
    }

    fn get_next_precedence(&self, _parser: &Parser) -> Option<Result<u8, ParserError>> {
        self.step().err().map(Err)
    }

    fn parse_statement(&self, _parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        self.step().err().map(Err)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.inner.is_delimited_identifier_start(ch)
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        self.inner.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        self.inner.is_identifier_part(ch)
    }

    forward!(
        supports_unicode_string_literal,
        supports_partition_by_after_order_by,
        supports_array_join_syntax,
        supports_group_by_expr,
        supports_group_by_with_modifier,
        supports_left_associative_joins_without_parens,
        supports_connect_by,
        supports_match_recognize,
        supports_pipe_operator,
        supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg,
        supports_dictionary_syntax,
        supports_window_clause_named_window_reference,
        supports_parenthesized_set_variables,
        supports_select_wildcard_except,
        support_map_literal_syntax,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_extract_comma_syntax,
        supports_create_view_comment_syntax,
        supports_parens_around_table_factor,
        supports_values_as_table_factor,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_limit_comma,
        supports_update_order_by,
        supports_from_first_select,
        supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition,
        supports_try_convert,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_assignment_operator,
        supports_struct_literal,
        supports_empty_projections,
        supports_nested_comments,
        supports_multiline_comment_hints,
        supports_user_host_grantee,
        supports_string_escape_constant,
        supports_array_typedef_with_brackets,
        supports_match_against,
        supports_set_names,
        supports_comma_separated_set_assignments,
        supports_filter_during_aggregation,
        supports_select_wildcard_exclude,
        supports_data_type_signed_suffix,
        supports_interval_options,
        supports_quote_delimited_string,
        supports_select_wildcard_replace,
        supports_select_wildcard_ilike,
        supports_select_wildcard_rename,
        supports_optimize_table,
        supports_install,
        supports_detach,
        supports_prewhere,
        supports_with_fill,
        supports_limit_by,
        supports_interpolate,
        supports_settings,
        supports_select_format,
        supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name,
        supports_key_column_option,
        supports_comma_separated_trim,
        supports_cte_without_as,
        supports_select_item_multi_column_alias,
        supports_xml_expressions,
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use datafusion::sql::parser::DFParser;

    use super::*;
    use crate::guard::single_query;
    use crate::settings::RuleSettings;
    use crate::{params, rule};

    fn shipped_sql() -> Vec<(String, String)> {
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut out = Vec::new();
        for dir in std::fs::read_dir(rules).unwrap() {
            let dir = dir.unwrap().path();
            let toml = std::fs::read_to_string(dir.join("rule.toml")).unwrap();
            let settings = RuleSettings::parse(&toml, &dir.join("rule.toml")).unwrap();
            let values = rule::param_values(&settings, Duration::from_secs(60));
            for stage in ["input.sql", "match.sql"] {
                let written = std::fs::read_to_string(dir.join(stage)).unwrap();
                let sql = params::substitute(&written, &values).unwrap().sql;
                out.push((format!("{}/{stage}", dir.display()), sql));
            }
        }
        assert!(out.len() >= 8, "the shipped rules were not found");
        out
    }

    #[test]
    fn shipped_rules_parse_exactly_as_with_the_generic_dialect_well_within_budget() {
        for (name, sql) in shipped_sql() {
            let dialect = BoundedDialect::for_sql(&sql);
            let bounded = DFParser::parse_sql_with_dialect(&sql, &dialect).unwrap();
            let generic = DFParser::parse_sql(&sql).unwrap();
            assert_eq!(format!("{bounded:?}"), format!("{generic:?}"), "{name}");
            let per_byte = dialect.steps() as f64 / sql.len() as f64;
            assert!(
                per_byte < 1.0,
                "{name}: {} steps for {} bytes",
                dialect.steps(),
                sql.len()
            );
        }
    }

    #[test]
    fn a_large_well_formed_query_fits_the_budget() {
        let columns: Vec<String> = (0..1_500)
            .map(|i| format!("coalesce(lower(c{i}), 'x') = 'y'"))
            .collect();
        let sql = format!(
            "SELECT host_id, count(*) FROM events WHERE {} GROUP BY host_id",
            columns.join(" AND ")
        );
        assert!(sql.len() < crate::guard::MAX_SQL_BYTES);
        let dialect = BoundedDialect::for_sql(&sql);
        DFParser::parse_sql_with_dialect(&sql, &dialect).unwrap();
        assert!(!dialect.exhausted());
    }

    /// Inputs the parser backtracks on level after level. Without the bound each takes
    /// minutes (the first, found by the fuzzer: ~7 s at 10 repetitions in debug, >60 s
    /// at 12; the second doubles with every `CAST(`).
    #[test]
    fn backtracking_inputs_are_refused_at_the_step_budget() {
        let shapes = [
            format!("SELECT r.h. {}", "r[use_id. rost_id. ".repeat(14)),
            format!("SELECT {}", "CAST(".repeat(30)),
            format!("SELECT {}x AS", "CAST(".repeat(30)),
        ];
        for sql in shapes {
            let started = Instant::now();
            let refusal = single_query(&sql).unwrap_err();
            let took = started.elapsed();
            // The refusal is the bound (a count of parser steps); the time is printed,
            // not asserted: timings belong in benchmarks.
            assert!(refusal.message.contains("too involved"), "{sql}: {}", refusal.message);
            eprintln!("refused in {took:?}");
        }
    }
}
