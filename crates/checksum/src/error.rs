//! The typed error of this crate.

use std::fmt;

use crate::json::JsonError;

/// What kind of problem an agent specification has. The `as_str` names are a
/// contract: they appear in `conformance/vectors/checksum.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not UTF-8 or not JSON.
    InvalidJson,
    /// An object repeats a member name.
    DuplicateKey,
    /// Nesting deeper than [`crate::json::MAX_DEPTH`].
    NestingTooDeep,
    /// The document is not a JSON object.
    NotAnObject,
    /// A required member is absent.
    MissingField,
    /// A member has the wrong JSON type.
    InvalidType,
    /// A member this format does not define.
    UnknownField,
    /// Both `prompt` and `prompt_template`.
    ConflictingFields,
    /// `agent_id` empty or outside `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
    InvalidAgentId,
    /// A tool name is empty.
    InvalidToolName,
    /// Two tools share a name.
    DuplicateToolName,
    /// `checksum_level` is neither `shallow` nor `deep`.
    UnknownChecksumLevel,
    /// A deep tool without `source_code` (§5.2.3).
    MissingSourceCode,
    /// `source_code` on a shallow tool, where it would not be hashed.
    UnexpectedSourceCode,
    /// A number that overflows a double, or an integer beyond CPython's 4300 digits.
    NumberOutOfRange,
    /// `jcs` profile: an integer literal a double cannot hold exactly.
    UnrepresentableNumber,
}

impl ErrorKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::DuplicateKey => "duplicate_key",
            ErrorKind::NestingTooDeep => "nesting_too_deep",
            ErrorKind::NotAnObject => "not_an_object",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::InvalidType => "invalid_type",
            ErrorKind::UnknownField => "unknown_field",
            ErrorKind::ConflictingFields => "conflicting_fields",
            ErrorKind::InvalidAgentId => "invalid_agent_id",
            ErrorKind::InvalidToolName => "invalid_tool_name",
            ErrorKind::DuplicateToolName => "duplicate_tool_name",
            ErrorKind::UnknownChecksumLevel => "unknown_checksum_level",
            ErrorKind::MissingSourceCode => "missing_source_code",
            ErrorKind::UnexpectedSourceCode => "unexpected_source_code",
            ErrorKind::NumberOutOfRange => "number_out_of_range",
            ErrorKind::UnrepresentableNumber => "unrepresentable_number",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An agent specification that cannot be checksummed, with the path of the
/// offending member (e.g. `tools[2].name`) and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ChecksumError {
    kind: ErrorKind,
    path: Option<String>,
    message: String,
}

impl ChecksumError {
    pub(crate) fn new(kind: ErrorKind, path: impl Into<Option<String>>, message: String) -> Self {
        ChecksumError {
            kind,
            path: path.into(),
            message,
        }
    }

    /// The kind of problem.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Where in the document (`None` for whole-document problems).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The message without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ChecksumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages are kept on one line: control characters are escaped.
        let message = one_line(&self.message);
        match &self.path {
            Some(p) => write!(f, "{}: {message}", one_line(p)),
            None => f.write_str(&message),
        }
    }
}

/// Escapes control characters (newlines included) so that a message embedding
/// user input, file names or OS messages stays on one line.
pub fn one_line(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        s.to_owned()
    }
}

impl From<JsonError> for ChecksumError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Syntax(msg) => {
                ChecksumError::new(ErrorKind::InvalidJson, None, format!("invalid JSON: {msg}"))
            }
            JsonError::DuplicateKey { path, key } => ChecksumError::new(
                ErrorKind::DuplicateKey,
                Some(path),
                format!("duplicate key {key:?}"),
            ),
            JsonError::NumberOutOfRange { path } => ChecksumError::new(
                ErrorKind::NumberOutOfRange,
                Some(path),
                format!(
                    "number out of range (a fraction or exponent that overflows an IEEE-754 double, or an integer longer than {} digits)",
                    crate::json::MAX_INTEGER_DIGITS
                ),
            ),
            JsonError::TooDeep { path } => ChecksumError::new(
                ErrorKind::NestingTooDeep,
                Some(path),
                format!("nesting deeper than {} levels", crate::json::MAX_DEPTH),
            ),
            // JsonError is #[non_exhaustive]: a refusal added later is still
            // invalid JSON to a checksum caller.
            other => ChecksumError::new(ErrorKind::InvalidJson, None, other.to_string()),
        }
    }
}

/// Member names in error paths are rendered as the strict reader renders
/// them (one rule, `ajwt-json`).
pub(crate) use crate::json::render_key;
