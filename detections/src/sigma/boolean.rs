//! A boolean SQL expression that folds constants as it is built: a condition on a
//! field no producer sends is `FALSE`, and `x AND FALSE` vanishes, so the generated
//! SQL says only what can match, and a rule that can never match is found.

#[derive(Debug, Clone, PartialEq)]
pub enum Bool {
    Const(bool),
    /// An SQL predicate that is never NULL-sensitive in a way the caller cares about
    /// (selections are wrapped in `coalesce(.., false)` where they are named).
    Sql(String),
    And(Vec<Bool>),
    Or(Vec<Bool>),
    Not(Box<Bool>),
}

impl Bool {
    pub fn sql(text: impl Into<String>) -> Bool {
        Bool::Sql(text.into())
    }

    pub fn and(parts: impl IntoIterator<Item = Bool>) -> Bool {
        let mut kept = Vec::new();
        for part in parts {
            match part {
                Bool::Const(true) => {}
                Bool::Const(false) => return Bool::Const(false),
                Bool::And(inner) => kept.extend(inner),
                other => kept.push(other),
            }
        }
        match kept.len() {
            0 => Bool::Const(true),
            1 => kept.pop().expect("one part"),
            _ => Bool::And(kept),
        }
    }

    pub fn or(parts: impl IntoIterator<Item = Bool>) -> Bool {
        let mut kept = Vec::new();
        for part in parts {
            match part {
                Bool::Const(false) => {}
                Bool::Const(true) => return Bool::Const(true),
                Bool::Or(inner) => kept.extend(inner),
                other => kept.push(other),
            }
        }
        match kept.len() {
            0 => Bool::Const(false),
            1 => kept.pop().expect("one part"),
            _ => Bool::Or(kept),
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(part: Bool) -> Bool {
        match part {
            Bool::Const(value) => Bool::Const(!value),
            Bool::Not(inner) => *inner,
            other => Bool::Not(Box::new(other)),
        }
    }

    pub fn is_false(&self) -> bool {
        *self == Bool::Const(false)
    }

    /// The SQL text, one operand a line under `indent` when it does not fit on one.
    pub fn render(&self, indent: usize) -> String {
        let flat = self.render_flat();
        if flat.len() + indent <= 88 {
            return flat;
        }
        let pad = " ".repeat(indent + 4);
        let join = |parts: &[Bool], op: &str| {
            let inner: Vec<String> = parts.iter().map(|part| part.render(indent + 4)).collect();
            format!(
                "(\n{pad}{}\n{})",
                inner.join(&format!("\n{pad}{op} ")),
                " ".repeat(indent)
            )
        };
        match self {
            Bool::And(parts) => join(parts, "AND"),
            Bool::Or(parts) => join(parts, "OR"),
            Bool::Not(inner) => format!("NOT {}", inner.render(indent)),
            _ => flat,
        }
    }

    fn render_flat(&self) -> String {
        let join = |parts: &[Bool], op: &str| {
            let inner: Vec<String> = parts.iter().map(Bool::render_flat).collect();
            format!("({})", inner.join(&format!(" {op} ")))
        };
        match self {
            Bool::Const(true) => "TRUE".into(),
            Bool::Const(false) => "FALSE".into(),
            Bool::Sql(text) => text.clone(),
            Bool::And(parts) => join(parts, "AND"),
            Bool::Or(parts) => join(parts, "OR"),
            Bool::Not(inner) => format!("NOT {}", inner.render_flat()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_fold_away() {
        let a = || Bool::sql("a");
        assert_eq!(Bool::and([a(), Bool::Const(false)]), Bool::Const(false));
        assert_eq!(Bool::or([a(), Bool::Const(false)]), a());
        assert_eq!(Bool::not(Bool::or([Bool::Const(false)])), Bool::Const(true));
        assert_eq!(Bool::and([a(), Bool::not(Bool::Const(false))]), a());
        assert_eq!(
            Bool::and([a(), Bool::or([Bool::sql("b"), Bool::sql("c")])]).render(0),
            "(a AND (b OR c))"
        );
    }

    #[test]
    fn long_conditions_are_laid_out_one_operand_a_line() {
        let long = Bool::or((0..6).map(|i| Bool::sql(format!("process_command_line ILIKE '%value{i}%'"))));
        let text = long.render(4);
        assert_eq!(text.lines().count(), 8, "{text}");
        assert!(text.contains("\n        OR process_command_line"), "{text}");
    }
}
