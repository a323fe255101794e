//! Functions rules call that plain SQL lacks: matching a host name against a wildcard
//! domain, and a file path against a glob. Both are case-insensitive, since neither
//! DNS names nor the paths of the desktop systems agents run on care about case.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;

use crate::destination::DestinationPattern;
pub use cordon_schemas::glob::{Glob, glob_match, path_match};

/// Registers every Cordon function on `context`.
pub fn register(context: &SessionContext) {
    context.register_udf(domain_match_udf());
    context.register_udf(path_match_udf());
    context.register_udf(glob_match_udf());
    context.register_udf(cidr_match_udf());
    context.register_udf(crate::program::program_name_udf());
    context.register_udf(crate::program::command_word_udf());
}

/// `domain_match(destination, pattern)`: a host-name pattern (`*` any run of
/// characters: `*.sharepoint.com` matches `corp.sharepoint.com`, not
/// `sharepoint.com`; a trailing dot is ignored) matches only names; an address pattern
/// (`10.0.0.0/8`, `10.*`, `::1`) matches only IP addresses (`destination.rs`).
pub fn domain_match(host: &str, pattern: &str) -> bool {
    DestinationPattern::new(pattern).matches(host, &mut Vec::new())
}

/// A pattern compiled once per distinct pattern text of a call.
trait Pattern {
    fn compile(pattern: &str, segments: bool) -> Self;
    fn test(&self, text: &str, scratch: &mut Vec<bool>) -> bool;
}

impl Pattern for Glob {
    fn compile(pattern: &str, segments: bool) -> Self {
        Glob::new(pattern, segments)
    }
    fn test(&self, text: &str, scratch: &mut Vec<bool>) -> bool {
        self.matches(text, scratch)
    }
}

impl Pattern for DestinationPattern {
    fn compile(pattern: &str, _segments: bool) -> Self {
        DestinationPattern::new(pattern)
    }
    fn test(&self, text: &str, scratch: &mut Vec<bool>) -> bool {
        self.matches(text, scratch)
    }
}

fn string_pair_udf<P: Pattern + 'static>(name: &str, segments: bool) -> ScalarUDF {
    let function = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let texts = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let patterns = arrow::compute::cast(&arrays[1], &DataType::Utf8)?;
        let (texts, patterns) = (texts.as_string::<i32>(), patterns.as_string::<i32>());
        // A join calls this with few distinct patterns over many rows: compile each once.
        let mut compiled: std::collections::HashMap<&str, P> = std::collections::HashMap::new();
        let mut scratch = Vec::new();
        let result: BooleanArray = (0..texts.len())
            .map(|row| {
                if !(texts.is_valid(row) && patterns.is_valid(row)) {
                    return None;
                }
                let pattern = patterns.value(row);
                let compiled = compiled.entry(pattern).or_insert_with(|| P::compile(pattern, segments));
                Some(compiled.test(texts.value(row), &mut scratch))
            })
            .collect();
        let scalar = args.iter().all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
        let array: ArrayRef = Arc::new(result);
        if scalar {
            Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    };
    create_udf(
        name,
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(function),
    )
}

pub fn domain_match_udf() -> ScalarUDF {
    string_pair_udf::<DestinationPattern>("domain_match", false)
}

/// `cidr_match(address, '10.0.0.0/8')`: an IP address inside a CIDR block (Sigma's
/// `cidr` modifier); a host name never matches.
pub fn cidr_match_udf() -> ScalarUDF {
    string_pair_udf::<DestinationPattern>("cidr_match", false)
}

pub fn glob_match_udf() -> ScalarUDF {
    string_pair_udf::<Glob>("glob_match", false)
}

pub fn path_match_udf() -> ScalarUDF {
    string_pair_udf::<Glob>("path_match", true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert!(domain_match("corp.SharePoint.com.", "*.sharepoint.com"));
        assert!(!domain_match("sharepoint.com", "*.sharepoint.com"));
        assert!(!domain_match("evilsharepoint.com", "*.sharepoint.com"));
        assert!(domain_match("github.com", "github.com"));
        assert!(!domain_match("github.com.evil.net", "github.com"));
        assert!(domain_match("10.20.0.15", "10.*"));
        assert!(
            !domain_match("10.anything.example", "10.*"),
            "an address pattern is not text"
        );
        assert!(!domain_match("110.20.0.15", "10.*"));
    }

    #[tokio::test]
    async fn callable_from_sql() {
        let context = SessionContext::new();
        register(&context);
        let batches = context
            .sql(
                "SELECT domain_match('a.corp.com', '*.corp.com') AS d, path_match('/x/.ssh/k', '**/.ssh/*') AS p, \
                  cidr_match('10.2.3.4', '10.0.0.0/8') AS c, cidr_match('11.2.3.4', '10.0.0.0/8') AS n",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let row = &batches[0];
        assert!(row.column(0).as_boolean().value(0));
        assert!(row.column(1).as_boolean().value(0));
        assert!(row.column(2).as_boolean().value(0));
        assert!(!row.column(3).as_boolean().value(0));
    }
}
