//! The two JSON value types the checksum path reads (issue 15, I-140): the
//! owned [`Value`] of the public API and the [`BorrowedValue`] of the
//! checksum-only path from JSON bytes. Spec reading, validation and the
//! canonical writer are written once, over this trait, so that both paths
//! apply the same rules.

use std::borrow::Cow;

use crate::json::{BorrowedValue, Value};

/// A borrowed view of one value.
pub(crate) enum Kind<'v, N: Node> {
    Null,
    Bool(bool),
    /// The literal text (RFC 8259 grammar checked by the reader).
    Number(&'v str),
    String(&'v str),
    Array(&'v [N]),
    Object(&'v [(N::Str, N)]),
}

/// A value taken apart (by move).
pub(crate) enum Parts<N: Node> {
    Bool(bool),
    String(N::Str),
    Array(Vec<N>),
    Object(Vec<(N::Str, N)>),
    /// `null` or a number.
    Other,
}

pub(crate) trait Node: Sized {
    /// Strings and member names.
    type Str: AsRef<str> + Default;
    fn kind(&self) -> Kind<'_, Self>;
    fn into_parts(self) -> Parts<Self>;
    fn type_name(&self) -> &'static str;
    fn empty_object() -> Self;
}

impl Node for Value {
    type Str = String;

    #[inline]
    fn kind(&self) -> Kind<'_, Self> {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(b) => Kind::Bool(*b),
            Value::Number(n) => Kind::Number(n.as_str()),
            Value::String(s) => Kind::String(s),
            Value::Array(items) => Kind::Array(items),
            Value::Object(members) => Kind::Object(members),
        }
    }

    fn into_parts(self) -> Parts<Self> {
        match self {
            Value::Bool(b) => Parts::Bool(b),
            Value::String(s) => Parts::String(s),
            Value::Array(items) => Parts::Array(items),
            Value::Object(members) => Parts::Object(members),
            Value::Null | Value::Number(_) => Parts::Other,
        }
    }

    fn type_name(&self) -> &'static str {
        Value::type_name(self)
    }

    fn empty_object() -> Self {
        Value::Object(Vec::new())
    }
}

impl<'a> Node for BorrowedValue<'a> {
    type Str = Cow<'a, str>;

    #[inline]
    fn kind(&self) -> Kind<'_, Self> {
        match self {
            BorrowedValue::Null => Kind::Null,
            BorrowedValue::Bool(b) => Kind::Bool(*b),
            BorrowedValue::Number(n) => Kind::Number(n),
            BorrowedValue::String(s) => Kind::String(s),
            BorrowedValue::Array(items) => Kind::Array(items),
            BorrowedValue::Object(members) => Kind::Object(members),
        }
    }

    fn into_parts(self) -> Parts<Self> {
        match self {
            BorrowedValue::Bool(b) => Parts::Bool(b),
            BorrowedValue::String(s) => Parts::String(s),
            BorrowedValue::Array(items) => Parts::Array(items),
            BorrowedValue::Object(members) => Parts::Object(members),
            BorrowedValue::Null | BorrowedValue::Number(_) => Parts::Other,
        }
    }

    fn type_name(&self) -> &'static str {
        BorrowedValue::type_name(self)
    }

    fn empty_object() -> Self {
        BorrowedValue::Object(Vec::new())
    }
}
