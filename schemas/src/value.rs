//! Attribute values as producers send them, before they are checked against a column.

use std::borrow::Cow;

/// One attribute value. Borrowed from the decoded request where possible, so converting
/// a batch copies each string once: into its Arrow column.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Arrays, maps and bytes, kept as their JSON text.
    Complex(String),
}

impl AttrValue<'_> {
    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::Str(_) => "string",
            AttrValue::Int(_) => "int",
            AttrValue::Double(_) => "double",
            AttrValue::Bool(_) => "bool",
            AttrValue::Complex(_) => "array/map",
        }
    }

    /// The value as an integer, if it is one without loss (an integral double or a
    /// decimal string count too: some producers send every attribute as a string).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(value) => Some(*value),
            AttrValue::Double(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Some(*value as i64),
            AttrValue::Str(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as text, the way it is stored in a string column or the attribute map.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            AttrValue::Str(text) => Cow::Borrowed(text.as_ref()),
            AttrValue::Int(value) => Cow::Owned(value.to_string()),
            AttrValue::Double(value) => Cow::Owned(value.to_string()),
            AttrValue::Bool(value) => Cow::Borrowed(if *value { "true" } else { "false" }),
            AttrValue::Complex(json) => Cow::Borrowed(json.as_str()),
        }
    }

    /// A short, safe rendering of the value for an error message.
    pub fn preview(&self) -> String {
        let text = self.to_text();
        let mut preview: String = text.chars().take(40).collect();
        if text.chars().count() > 40 {
            preview.push('…');
        }
        match self {
            AttrValue::Str(_) => format!("{:?}", preview),
            _ => preview,
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> AttrValue<'static> {
        match self {
            AttrValue::Str(text) => AttrValue::Str(Cow::Owned(text.into_owned())),
            AttrValue::Int(value) => AttrValue::Int(value),
            AttrValue::Double(value) => AttrValue::Double(value),
            AttrValue::Bool(value) => AttrValue::Bool(value),
            AttrValue::Complex(json) => AttrValue::Complex(json),
        }
    }

    /// The value as JSON, for the flat-event form.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AttrValue::Str(text) => serde_json::Value::String(text.to_string()),
            AttrValue::Int(value) => serde_json::Value::from(*value),
            AttrValue::Double(value) => serde_json::Value::from(*value),
            AttrValue::Bool(value) => serde_json::Value::Bool(*value),
            AttrValue::Complex(json) => {
                serde_json::from_str(json).unwrap_or_else(|_| serde_json::Value::String(json.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_come_from_ints_integral_doubles_and_decimal_strings_only() {
        assert_eq!(AttrValue::Int(7).as_int(), Some(7));
        assert_eq!(AttrValue::Double(443.0).as_int(), Some(443));
        assert_eq!(AttrValue::Double(1.5).as_int(), None);
        assert_eq!(AttrValue::Str("8812".into()).as_int(), Some(8812));
        assert_eq!(AttrValue::Str("eighty".into()).as_int(), None);
        assert_eq!(AttrValue::Bool(true).as_int(), None);
    }

    #[test]
    fn preview_is_short_and_quoted_for_strings() {
        let long = AttrValue::Str("x".repeat(100).into());
        assert_eq!(long.preview().chars().count(), 43);
        assert_eq!(AttrValue::Int(3).preview(), "3");
    }
}
