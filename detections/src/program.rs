//! `program_name(text)` and `command_word(command_line, n)`: what program a process
//! start ran, read the ways an attacker may disguise it. A renamed or copied binary
//! still shows in its command line's first word; a busybox applet in the second.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The bare program name: no quotes, no folder (`/` or `\`), lower case, no `.exe`.
pub fn program_name(text: &str) -> Option<String> {
    let text = text.trim().trim_matches(|c| c == '"' || c == '\'');
    let base = text.rsplit(['/', '\\']).next().unwrap_or(text).to_lowercase();
    let base = base.strip_suffix(".exe").map(str::to_string).unwrap_or(base);
    (!base.is_empty()).then_some(base)
}

/// The `n`th word (from 1) of a command line; a double-quoted run is one word.
pub fn command_word(command_line: &str, n: usize) -> Option<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in command_line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                    if words.len() == n {
                        break;
                    }
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words.into_iter().nth(n.checked_sub(1)?)
}

fn text_udf(name: &str, arity: usize, function: fn(&[ArrayRef], usize) -> Option<String>) -> ScalarUDF {
    let body = move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let rows = arrays.first().map_or(0, |array| array.len());
        let result: StringArray = (0..rows).map(|row| function(&arrays, row)).collect();
        let array: ArrayRef = Arc::new(result);
        if args.iter().all(|arg| matches!(arg, ColumnarValue::Scalar(_))) {
            Ok(ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    };
    let mut inputs = vec![DataType::Utf8];
    if arity == 2 {
        inputs.push(DataType::Int64);
    }
    create_udf(name, inputs, DataType::Utf8, Volatility::Immutable, Arc::new(body))
}

fn text_at(array: &ArrayRef, row: usize) -> Option<&str> {
    let text = array.as_string_opt::<i32>()?;
    text.is_valid(row).then(|| text.value(row))
}

pub fn program_name_udf() -> ScalarUDF {
    text_udf("program_name", 1, |arrays, row| {
        text_at(&arrays[0], row).and_then(program_name)
    })
}

pub fn command_word_udf() -> ScalarUDF {
    text_udf("command_word", 2, |arrays, row| {
        let n = arrays[1].as_primitive_opt::<arrow::datatypes::Int64Type>()?;
        if !n.is_valid(row) {
            return None;
        }
        command_word(text_at(&arrays[0], row)?, usize::try_from(n.value(row)).ok()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_programs_however_they_are_written() {
        assert_eq!(program_name("/usr/bin/curl").as_deref(), Some("curl"));
        assert_eq!(program_name("C:\\Windows\\System32\\CURL.EXE").as_deref(), Some("curl"));
        assert_eq!(
            program_name("\"C:\\Program Files\\Git\\usr\\bin\\scp.exe\"").as_deref(),
            Some("scp")
        );
        assert_eq!(program_name("  ").as_deref(), None);
    }

    #[test]
    fn splits_command_lines_with_quotes() {
        let line = "\"C:\\Program Files\\tools\\x.exe\" -o out https://a.example";
        assert_eq!(
            command_word(line, 1).as_deref(),
            Some("C:\\Program Files\\tools\\x.exe")
        );
        assert_eq!(command_word(line, 2).as_deref(), Some("-o"));
        assert_eq!(command_word("busybox wget http://x", 2).as_deref(), Some("wget"));
        assert_eq!(command_word("curl", 2), None);
        assert_eq!(command_word("curl", 0), None);
    }
}
