//! The one JSON writer of the exporters (the Chrome trace and the probe's report lines): objects
//! written straight into a `String`, keys in the order given.
//!
//! A serialisation crate would build the same text through a value tree or derive impls; a
//! trace of a million spans is written here in one pass with no allocation per event.

use std::fmt::{self, Display, Write as _};

/// An object being written into a string: `{` on creation, `}` on [`end`](Object::end) (or
/// drop). Keys are written as given (they are the exporters' own constants, not user text).
pub(crate) struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Object<'a> {
    /// Opens an object at the end of `out`. A nested object left as a temporary (`o.object("k").raw(..);`)
    /// closes at the end of its statement.
    pub(crate) fn open(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, first: true }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    /// A field whose value is already JSON (a number, `true`, a nested document).
    pub(crate) fn raw(&mut self, key: &str, value: impl Display) -> &mut Self {
        let out = self.key(key);
        let _ = write!(out, "{value}");
        self
    }

    /// A string field, escaped.
    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        let out = self.key(key);
        string(out, value);
        self
    }

    /// A nested object as the value of `key`; closed when the returned writer ends.
    pub(crate) fn object(&mut self, key: &str) -> Object<'_> {
        let out = self.key(key);
        Object::open(out)
    }

    /// Closes the object.
    pub(crate) fn end(self) {}
}

impl Drop for Object<'_> {
    fn drop(&mut self) {
        self.out.push('}');
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A number written with a fixed count of decimals (`Fixed(x, 3)` writes `1.500`).
pub(crate) struct Fixed(pub(crate) f64, pub(crate) usize);

impl Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.*}", self.1, self.0)
    }
}

/// Nanoseconds written as microseconds with three exact decimals (no float rounding, so a span
/// that ends where the next starts still does so in the JSON).
pub(crate) struct Micros(pub(crate) u64);

impl Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn micros_are_exact() {
        assert_eq!(Micros(0).to_string(), "0.000");
        assert_eq!(Micros(1_234_567).to_string(), "1234.567");
        assert_eq!(Micros(5).to_string(), "0.005");
    }

    #[test]
    fn objects_nest_and_separate_their_fields() {
        let mut s = String::new();
        let mut o = Object::open(&mut s);
        o.raw("a", 1).str("b", "x\"y");
        o.object("c").raw("d", Fixed(0.5, 2));
        o.object("e");
        o.end();
        assert_eq!(s, r#"{"a":1,"b":"x\"y","c":{"d":0.50},"e":{}}"#);
    }
}
