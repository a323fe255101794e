//! The functions whose output can dwarf their input (`repeat('x', 300000000)`, a
//! `replace` of every byte by a long string, `range(1, 1e9)`) are wrapped so that each
//! call first bounds what it would make and refuses past a share of the query's
//! memory limit: DataFusion's memory pool counts what operators hold, not the values
//! an expression builds, so `repeat('x', 3e8)` took 1.1 GB past a 512 MiB limit.
//! Every other function's output is bounded by its inputs.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// How a function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `f(text, count)`: the text `count` times.
    Repeat,
    /// `f(text, length[, fill])`: `length` characters.
    Pad,
    /// `f(text, pattern, replacement[, ...])`: each byte could become the replacement.
    Replace,
    /// `f(value, count)`: a list of `count` values.
    ArrayRepeat,
    /// `f(list, length[, value])`: a list of `length` values.
    ArrayResize,
    /// `f([start,] stop[, step])`: a list of the integers between.
    Range,
}

const WRAPPED: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::Replace),
    ("array_repeat", Growth::ArrayRepeat),
    ("array_resize", Growth::ArrayResize),
    ("range", Growth::Range),
    ("generate_series", Growth::Range),
];

/// Wraps the growing functions of `context` so that one call may make at most
/// `max_bytes` (for one batch of rows).
pub fn register(context: &SessionContext, max_bytes: usize) {
    let state = context.state();
    let functions = state.scalar_functions();
    for (name, growth) in WRAPPED {
        if let Some(inner) = functions.get(*name) {
            // Volatile, so the planner does not fold a call on constants into one
            // value (made once, unbounded by rows): it runs per batch, where the
            // bound sees how many rows the value is repeated over.
            let mut signature = inner.signature().clone();
            signature.volatility = Volatility::Volatile;
            let bounded = Bounded {
                inner: inner.as_ref().clone(),
                signature,
                growth: *growth,
                max_bytes,
            };
            context.register_udf(ScalarUDF::new_from_impl(bounded));
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: ScalarUDF,
    signature: Signature,
    growth: Growth,
    max_bytes: usize,
}

/// Bytes of text (or values) an argument holds over the batch.
fn total_bytes(argument: &ColumnarValue, rows: usize) -> u128 {
    match argument {
        ColumnarValue::Scalar(scalar) => scalar_bytes(scalar) * rows as u128,
        ColumnarValue::Array(array) => array.get_array_memory_size() as u128,
    }
}

fn scalar_bytes(scalar: &ScalarValue) -> u128 {
    match scalar {
        ScalarValue::Utf8(Some(text)) | ScalarValue::LargeUtf8(Some(text)) | ScalarValue::Utf8View(Some(text)) => {
            text.len() as u128
        }
        other => other.size() as u128,
    }
}

/// The smallest and largest values of an integer argument ((0, 0) when it has none).
fn integer_range(argument: &ColumnarValue) -> (i128, i128) {
    let integers = argument
        .to_array(1)
        .and_then(|array| Ok(arrow::compute::cast(&array, &DataType::Int64)?));
    let Ok(integers) = integers else {
        return (0, 0);
    };
    let integers = integers.as_primitive::<Int64Type>();
    let bound = |value: Option<i64>| value.map_or(0, i128::from);
    (
        bound(arrow::compute::min(integers)),
        bound(arrow::compute::max(integers)),
    )
}

fn max_integer(argument: &ColumnarValue) -> i128 {
    integer_range(argument).1
}

fn min_integer(argument: &ColumnarValue) -> i128 {
    integer_range(argument).0
}

/// The longest text of an argument, in bytes.
fn max_length(argument: &ColumnarValue) -> u128 {
    match argument {
        ColumnarValue::Scalar(scalar) => scalar_bytes(scalar),
        ColumnarValue::Array(array) => {
            let Ok(texts) = arrow::compute::cast(array, &DataType::Utf8) else {
                return array.get_array_memory_size() as u128;
            };
            let texts = texts.as_string::<i32>();
            (0..texts.len())
                .map(|row| texts.value(row).len() as u128)
                .max()
                .unwrap_or(0)
        }
    }
}

impl Bounded {
    /// An upper bound on the bytes this call would make.
    fn estimate(&self, args: &[ColumnarValue], rows: usize) -> u128 {
        let rows = rows.max(1) as u128;
        let count = |index: usize| args.get(index).map_or(0, max_integer).max(0) as u128;
        match self.growth {
            Growth::Repeat => args.first().map_or(0, |text| total_bytes(text, rows as usize)) * count(1),
            // Characters, each up to four bytes.
            Growth::Pad => rows * count(1) * 4,
            Growth::Replace => {
                let text = args.first().map_or(0, |text| total_bytes(text, rows as usize));
                let replacement = args.get(2).map_or(0, max_length).max(1);
                // An empty pattern matches between every two bytes as well.
                (text + rows) * replacement + text
            }
            Growth::ArrayRepeat => {
                let value = args.first().map_or(0, |value| total_bytes(value, rows as usize)) / rows;
                rows * count(1) * value.max(8)
            }
            Growth::ArrayResize => rows * count(1) * 16,
            Growth::Range => {
                let integer = |index: usize| args.get(index).is_some_and(|arg| arg.data_type().is_integer());
                if !args.iter().enumerate().all(|(index, _)| integer(index)) {
                    return 0; // dates and timestamps: stepped by intervals, bounded by their time limit
                }
                let (start, stop, step) = match args.len() {
                    1 => (0, max_integer(&args[0]), 1),
                    2 => (min_integer(&args[0]), max_integer(&args[1]), 1),
                    _ => (
                        min_integer(&args[0]),
                        max_integer(&args[1]),
                        min_integer(&args[2]).abs().max(1),
                    ),
                };
                let span = (stop - start).unsigned_abs();
                rows * (span / step.unsigned_abs() + 1) * 8
            }
        }
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let estimate = self.estimate(&args.args, args.number_rows);
        if estimate > self.max_bytes as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} would make up to {estimate} bytes for {} rows, more than the {} MiB one function call may make (a quarter of the query's memory limit): ask for smaller values",
                self.name(),
                args.number_rows,
                self.max_bytes >> 20
            )));
        }
        self.inner.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(context: &SessionContext, sql: &str) -> Result<usize> {
        let batches = context.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|batch| batch.get_array_memory_size()).sum())
    }

    #[tokio::test]
    async fn growing_functions_are_refused_past_the_bound_and_work_below_it() {
        let context = SessionContext::new();
        register(&context, 16 << 20);
        for sql in [
            "SELECT repeat('x', 300000000)",
            "SELECT repeat(repeat('x', 1000), 100000)",
            "SELECT lpad('x', 100000000)",
            "SELECT rpad('x', 100000000, 'yz')",
            "SELECT replace(repeat('a', 10000), 'a', repeat('b', 10000))",
            "SELECT regexp_replace(repeat('a', 10000), '', repeat('b', 10000), 'g')",
            "SELECT array_repeat(repeat('x', 1000), 100000)",
            "SELECT array_resize(make_array(1), 10000000)",
            "SELECT range(1, 1000000000)",
            "SELECT generate_series(1, 1000000000, 1)",
            "SELECT repeat(t.x, 100000000) FROM (VALUES ('a'), ('b')) AS t(x)",
            // Small once, but repeated over every row of the batch.
            "SELECT repeat('x', 100000) FROM generate_series(1, 1000)",
        ] {
            let error = run(&context, sql).await.expect_err(sql).to_string();
            assert!(
                error.contains("more than the 16 MiB one function call may make"),
                "{sql}: {error}"
            );
        }
        for sql in [
            "SELECT repeat('ab', 1000)",
            "SELECT lpad('7', 5, '0'), rpad('x', 3)",
            "SELECT replace('a-b-c', '-', '/'), regexp_replace('a1b2', '[0-9]', '#', 'g')",
            "SELECT array_repeat(1, 3), array_resize(make_array(1, 2), 4)",
            "SELECT range(10), generate_series(1, 5), range(DATE '2026-01-01', DATE '2026-01-05', INTERVAL '1' DAY)",
        ] {
            let bytes = run(&context, sql)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
            assert!(bytes < 1 << 20, "{sql}");
        }
    }
}
