//! Rules may only read. A rule's SQL must be exactly one query: DDL, DML, `COPY`,
//! `CREATE EXTERNAL TABLE`, `SET` and the like are refused when the rule is loaded,
//! and the plan is checked again after planning. Its size and nesting are bounded before
//! anything plans it: DataFusion plans and displays expressions recursively, so a
//! 500-byte `1+1+...` or a few thousand `OR`s would otherwise overflow the stack.
//! Parsing itself is bounded too (`bounded_dialect`): sqlparser backtracks, and over
//! unclosed brackets that takes time exponential in their number.

mod bounded_dialect;

use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::prelude::SQLOptions;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::{Expr, Query, Statement as SqlStatement, Visit, Visitor};

use bounded_dialect::BoundedDialect;

/// The longest SQL text accepted (bytes).
pub const MAX_SQL_BYTES: usize = 64 << 10;
/// How deeply expressions and subqueries may nest. An `IN (...)` list of any length is
/// one level; `a OR b OR c` is one level per `OR`.
pub const MAX_NESTING: usize = 256;

/// Options every rule and hunt is planned under.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Why a rule's SQL was refused, with a 1-based position in the SQL when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

/// Parses `sql` and returns its one query statement, once its size and nesting are
/// within bounds.
pub fn single_query(sql: &str) -> Result<Statement, Refusal> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Refusal {
            message: format!(
                "the SQL is {} KiB; at most {} KiB is accepted (long value lists belong in a reference table)",
                sql.len().div_ceil(1024),
                MAX_SQL_BYTES >> 10
            ),
            line: None,
            column: None,
        });
    }
    let statement = parse_single_query(sql)?;
    check_nesting(&statement)?;
    Ok(statement)
}

/// Refuses a statement whose expressions or subqueries nest deeper than `MAX_NESTING`.
/// The walk stops at the limit, so it is bounded itself.
pub fn check_nesting(statement: &Statement) -> Result<(), Refusal> {
    let Statement::Statement(inner) = statement else {
        return Ok(());
    };
    let mut depth = NestingDepth::default();
    match inner.visit(&mut depth) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(Refusal {
            message: format!(
                "expressions nest more than {MAX_NESTING} levels deep: use IN (...) for long lists of values, or split the query"
            ),
            line: None,
            column: None,
        }),
    }
}

#[derive(Default)]
struct NestingDepth {
    depth: usize,
}

impl NestingDepth {
    fn enter(&mut self) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
    fn leave(&mut self) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

impl Visitor for NestingDepth {
    type Break = ();
    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter()
    }
    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.enter()
    }
    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.leave()
    }
}

fn parse_single_query(sql: &str) -> Result<Statement, Refusal> {
    let dialect = BoundedDialect::for_sql(sql);
    let mut statements = DFParser::parse_sql_with_dialect(sql, &dialect).map_err(|error| {
        if dialect.exhausted() {
            return Refusal {
                message: "the SQL is too involved to parse (the parser backtracked past its bound, usually over an unclosed `(` or `[`): check brackets, or split the query".into(),
                line: None,
                column: None,
            };
        }
        let (line, column) = error_position(&error);
        Refusal {
            message: strip_position(&error.strip_backtrace()),
            line,
            column,
        }
    })?;
    let refusal = |message: String| Refusal {
        message,
        line: None,
        column: None,
    };
    if statements.len() != 1 {
        return Err(refusal(format!(
            "expected exactly one SELECT query, found {} statements",
            statements.len()
        )));
    }
    let statement = statements.pop_front().expect("one statement");
    match &statement {
        Statement::Statement(inner) if matches!(inner.as_ref(), SqlStatement::Query(_)) => Ok(statement),
        Statement::Statement(inner) => Err(refusal(format!(
            "only reading is allowed: `{}` is not a query",
            first_words(&inner.to_string())
        ))),
        Statement::CreateExternalTable(_) => Err(refusal(
            "only reading is allowed: CREATE EXTERNAL TABLE is refused (reference data belongs in detections/reference/)"
                .into(),
        )),
        Statement::CopyTo(_) => Err(refusal("only reading is allowed: COPY is refused".into())),
        Statement::Explain(_) | Statement::Reset(_) => {
            Err(refusal("only reading is allowed: only a SELECT query is allowed".into()))
        }
    }
}

fn first_words(statement: &str) -> String {
    statement.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The position an error points at: the planner's diagnostic span, else the
/// `Line: N, Column: M` a parser error carries.
pub fn error_position(error: &DataFusionError) -> (Option<u64>, Option<u64>) {
    if let Some(span) = error.diagnostic().and_then(|diagnostic| diagnostic.span)
        && span.start.line > 0
    {
        return (Some(span.start.line), Some(span.start.column));
    }
    let text = error.to_string();
    let number_after = |label: &str| -> Option<u64> {
        let start = text.rfind(label)? + label.len();
        let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    (number_after("Line: "), number_after("Column: "))
}

/// An error message without the position suffix (it is reported separately).
pub fn strip_position(message: &str) -> String {
    match message.rfind(" at Line: ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_passes() {
        assert!(single_query("WITH a AS (SELECT 1 AS x) SELECT x FROM a").is_ok());
    }

    #[test]
    fn writes_and_file_access_are_refused() {
        for sql in [
            "DROP TABLE events",
            "INSERT INTO events VALUES (1)",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE VIEW v AS SELECT 1",
            "SET datafusion.execution.batch_size = 1",
            "SELECT 1; SELECT 2",
        ] {
            let refusal = single_query(sql).unwrap_err();
            assert!(
                refusal.message.contains("only read") || refusal.message.contains("exactly one"),
                "{sql}: {refusal:?}"
            );
        }
    }

    fn sum_of(terms: usize) -> String {
        format!("SELECT {}", vec!["1"; terms].join("+"))
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_deeper_is_refused_before_planning() {
        assert!(single_query(&sum_of(MAX_NESTING - 1)).is_ok());
        for sql in [
            sum_of(MAX_NESTING + 2),
            sum_of(20_000),
            format!(
                "SELECT * FROM events WHERE {}",
                vec!["host_id = 'h'"; 3000].join(" OR ")
            ),
        ] {
            let refusal = single_query(&sql).unwrap_err();
            assert!(refusal.message.contains("nest more than"), "{refusal:?}");
        }
        // A long value list is one level.
        let list = (0..5000).map(|n| format!("'h{n}'")).collect::<Vec<_>>().join(",");
        assert!(single_query(&format!("SELECT * FROM events WHERE host_id IN ({list})")).is_ok());
    }

    #[test]
    fn oversized_sql_is_refused_unparsed() {
        let sql = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert!(single_query(&sql).unwrap_err().message.contains("KiB"));
    }

    #[test]
    fn a_syntax_error_has_its_position() {
        let refusal = single_query("SELECT a\nFROM events WHER x = 1").unwrap_err();
        assert_eq!(refusal.line, Some(2), "{refusal:?}");
        assert!(refusal.column.is_some(), "{refusal:?}");
    }
}
