//! The agent specification (§5.2.1–§5.2.5) and its strict JSON reading.
//!
//! ```json
//! {"agent_id": "...", "prompt": "..." /* or "prompt_template" */,
//!  "tools": [{"name": "...", "description": "...", "parameters": {},
//!             "signature": "(x: int) -> int", "checksum_level": "deep",
//!             "source_code": "...", "is_agent": false}],
//!  "configuration": {"model_name": "...", "temperature": 0.0}}
//! ```
//!
//! Every choice made here where the draft is silent or contradicts itself is
//! recorded in `spec/interpretation.md`.
//!
//! [`AgentSpec`] and [`Tool`] are generic over their string and JSON value
//! types only so that the checksum-only path from JSON bytes can read,
//! validate and hash a specification that borrows the document (issue 15,
//! I-140) with the same code; the defaults (`String`, [`Value`]) are the
//! public types.

use crate::error::{render_key, ChecksumError, ErrorKind};
use crate::json::{self, Value};
use crate::node::{Kind, Node, Parts};

/// Maximum length of an agent identifier.
pub const MAX_AGENT_ID_LEN: usize = 128;

/// True when `id` matches `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
///
/// §5.2.1 says "alphanumeric with hyphens"; we also allow `_` and `.` (common
/// in deployed agent names) but never `|`, which delimits the sequence-hash
/// inputs of §4.4.4, nor anything else that could make two chains hash alike.
pub fn is_valid_agent_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_AGENT_ID_LEN
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// How much of a tool goes into the checksum (§5.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumLevel {
    /// Name, description and parameters only (the default).
    #[default]
    Shallow,
    /// Also the tool's normalized source code.
    Deep,
}

impl ChecksumLevel {
    /// The wire name: `shallow` or `deep`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumLevel::Shallow => "shallow",
            ChecksumLevel::Deep => "deep",
        }
    }
}

/// One tool of an agent (§5.2.1, §5.2.3–§5.2.5).
#[derive(Debug, Clone, PartialEq)]
pub struct Tool<S = String, V = Value> {
    /// Tool name, unique within the agent, non-empty.
    pub name: S,
    /// Human/LLM-facing description ("" when absent).
    pub description: S,
    /// JSON Schema of the parameters (`{}` when absent); an object or a boolean.
    pub parameters: V,
    /// Host-language signature with wrapper parameters removed (§5.2.4);
    /// used by the `python-ref` profile only.
    pub signature: Option<S>,
    /// Shallow or deep (§5.2.3).
    pub checksum_level: ChecksumLevel,
    /// Normalized source (§5.2.5), present exactly when `checksum_level` is deep.
    /// Taken as given: the runtime normalizes it.
    pub source_code: Option<S>,
    /// The tool is itself an agent (a sub-agent the agent delegates to), as the
    /// draft author's implementation marks it (`is_agent`). Validated, never
    /// hashed by either profile (`spec/interpretation.md` I-62).
    pub is_agent: bool,
}

impl Tool {
    /// A shallow tool.
    pub fn shallow(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> Tool {
        Tool {
            name: name.into(),
            description: description.into(),
            parameters,
            signature: None,
            checksum_level: ChecksumLevel::Shallow,
            source_code: None,
            is_agent: false,
        }
    }
}

/// An agent specification (§5.2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec<S = String, V = Value> {
    /// The agent identifier (see [`is_valid_agent_id`]).
    pub agent_id: S,
    /// The system prompt, before normalization.
    pub prompt: S,
    /// The tools, in any order (they are sorted by name when hashed).
    pub tools: Vec<Tool<S, V>>,
    /// Model configuration, a JSON object; `None` when absent.
    pub configuration: Option<V>,
}

/// Tools sorted by name, each with its index in the document.
pub(crate) type SortedTools<'s, S, V> = Vec<(usize, &'s Tool<S, V>)>;

fn err(kind: ErrorKind, path: &str, message: String) -> ChecksumError {
    ChecksumError::new(kind, Some(path.to_owned()), message)
}

fn join(parent: &str, key: &str) -> String {
    let k = render_key(key);
    if parent.is_empty() {
        k
    } else if k.starts_with('[') {
        format!("{parent}{k}")
    } else {
        format!("{parent}.{k}")
    }
}

/// Members of an object, consumed; `null` on one of the `optional` members
/// means absent and is skipped. Anywhere else it is kept (a required member
/// set to `null` is refused as the wrong type, an unknown one as unknown).
fn members<N: Node>(
    obj: Vec<(N::Str, N)>,
    optional: &'static [&'static str],
) -> impl Iterator<Item = (N::Str, N)> {
    obj.into_iter()
        .filter(move |(k, v)| !(matches!(v.kind(), Kind::Null) && optional.contains(&k.as_ref())))
}

fn type_error(path: &str, expected: &str, found: &'static str) -> ChecksumError {
    err(
        ErrorKind::InvalidType,
        path,
        format!("expected {expected}, found {found}"),
    )
}

fn expect_string<N: Node>(v: N, path: impl FnOnce() -> String) -> Result<N::Str, ChecksumError> {
    let found = v.type_name();
    match v.into_parts() {
        Parts::String(s) => Ok(s),
        _ => Err(type_error(&path(), "a string", found)),
    }
}

fn is_object<N: Node>(v: &N) -> bool {
    matches!(v.kind(), Kind::Object(_))
}

fn is_schema<N: Node>(v: &N) -> bool {
    matches!(v.kind(), Kind::Object(_) | Kind::Bool(_))
}

impl AgentSpec {
    /// Reads a specification from JSON text: strict JSON (see [`crate::json`]),
    /// then the structure of §5.2.1. Optional members whose value is `null`
    /// are treated as absent; unknown members are refused.
    pub fn from_json(input: &[u8]) -> Result<AgentSpec, ChecksumError> {
        AgentSpec::from_owned_value(json::parse_strict(input)?)
    }

    /// Reads a specification from an already parsed strict [`Value`].
    pub fn from_value(value: &Value) -> Result<AgentSpec, ChecksumError> {
        AgentSpec::from_owned_value(value.clone())
    }

    /// [`AgentSpec::from_value`], consuming the value (no copies).
    pub fn from_owned_value(value: Value) -> Result<AgentSpec, ChecksumError> {
        read_spec(value)
    }

    /// Checks the rules a specification built in code must also satisfy:
    /// agent id syntax, non-empty unique tool names, `source_code` exactly on
    /// deep tools, `parameters` an object or boolean, `configuration` an object.
    pub fn validate(&self) -> Result<(), ChecksumError> {
        self.check()
    }
}

/// [`AgentSpec::from_owned_value`] over either value type (I-140).
pub(crate) fn read_spec<N: Node>(value: N) -> Result<AgentSpec<N::Str, N>, ChecksumError> {
    let found = value.type_name();
    let Parts::Object(obj) = value.into_parts() else {
        return Err(ChecksumError::new(
            ErrorKind::NotAnObject,
            None,
            format!("agent specification must be a JSON object, found {found}"),
        ));
    };
    let mut agent_id = None;
    let mut prompt: Option<(N::Str, N::Str)> = None;
    let mut tools = None;
    let mut configuration = None;
    for (key, v) in members(obj, &["configuration"]) {
        let path = || join("", key.as_ref());
        match key.as_ref() {
            "agent_id" => agent_id = Some(expect_string(v, path)?),
            "prompt" | "prompt_template" => {
                if let Some((other, _)) = &prompt {
                    return Err(err(
                        ErrorKind::ConflictingFields,
                        &path(),
                        format!(
                            "both {:?} and {:?} given; use one",
                            other.as_ref(),
                            key.as_ref()
                        ),
                    ));
                }
                let text = expect_string(v, path)?;
                prompt = Some((key, text));
            }
            "tools" => {
                let found = v.type_name();
                let Parts::Array(items) = v.into_parts() else {
                    return Err(type_error(&path(), "an array", found));
                };
                let parsed = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| read_tool(t, i))
                    .collect::<Result<Vec<_>, _>>()?;
                tools = Some(parsed);
            }
            "configuration" => {
                if !is_object(&v) {
                    return Err(type_error(&path(), "an object", v.type_name()));
                }
                configuration = Some(v);
            }
            _ => {
                return Err(err(
                    ErrorKind::UnknownField,
                    &path(),
                    "unknown field (expected agent_id, prompt, tools, configuration)".into(),
                ))
            }
        }
    }
    let missing = |name: &str| {
        err(
            ErrorKind::MissingField,
            name,
            "missing required field".into(),
        )
    };
    let spec = AgentSpec {
        agent_id: agent_id.ok_or_else(|| missing("agent_id"))?,
        prompt: prompt.ok_or_else(|| missing("prompt"))?.1,
        tools: tools.ok_or_else(|| missing("tools"))?,
        configuration,
    };
    spec.check()?;
    Ok(spec)
}

// Crate-internal methods only: `Node` stays private to the crate.
#[allow(private_bounds)]
impl<S: AsRef<str>, V: Node> AgentSpec<S, V> {
    /// [`AgentSpec::validate`] over either value type.
    pub(crate) fn check(&self) -> Result<(), ChecksumError> {
        let agent_id = self.agent_id.as_ref();
        if agent_id.is_empty() {
            return Err(err(
                ErrorKind::InvalidAgentId,
                "agent_id",
                "must not be empty".into(),
            ));
        }
        if !is_valid_agent_id(agent_id) {
            return Err(err(
                ErrorKind::InvalidAgentId,
                "agent_id",
                format!("{agent_id:?} does not match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$"),
            ));
        }
        if let Some(c) = &self.configuration {
            if !is_object(c) {
                return Err(type_error("configuration", "an object", c.type_name()));
            }
        }
        self.validated_sorted_tools().map(|_| ())
    }

    /// [`AgentSpec::validate`], returning the tools sorted by name (Unicode
    /// code point order: §5.3.2 "sort by name", Python's `str` order, which
    /// for UTF-8 is byte order) with their index in `tools`. The sort also
    /// finds duplicate names; the error reported is the one the document-order
    /// loop `for i in tools: tool.validate(i)?; seen.insert(name) or dup(i)`
    /// would report first. Only the agent id and configuration are checked
    /// before (see `validate`).
    pub(crate) fn validated_sorted_tools(&self) -> Result<SortedTools<'_, S, V>, ChecksumError> {
        let mut sorted: Vec<(usize, &Tool<S, V>)> = self.tools.iter().enumerate().collect();
        // Stable: equal names keep document order.
        sorted.sort_by(|a, b| a.1.name.as_ref().cmp(b.1.name.as_ref()));
        let first_duplicate = sorted
            .windows(2)
            .filter_map(|w| match w {
                [a, b] if a.1.name.as_ref() == b.1.name.as_ref() => Some(b.0),
                _ => None,
            })
            .min();
        let checked = first_duplicate.unwrap_or(self.tools.len());
        for (i, tool) in self.tools.iter().enumerate().take(checked + 1) {
            tool.validate(i)?;
        }
        if let Some(i) = first_duplicate {
            let name = self.tools.get(i).map_or("", |t| t.name.as_ref());
            return Err(err(
                ErrorKind::DuplicateToolName,
                &format!("tools[{i}].name"),
                format!("duplicate tool name {name:?}"),
            ));
        }
        Ok(sorted)
    }
}

fn read_tool<N: Node>(v: N, index: usize) -> Result<Tool<N::Str, N>, ChecksumError> {
    let path = format!("tools[{index}]");
    let found = v.type_name();
    let Parts::Object(obj) = v.into_parts() else {
        return Err(type_error(&path, "a tool object", found));
    };
    let mut name = None;
    let mut tool = Tool {
        name: N::Str::default(),
        description: N::Str::default(),
        parameters: N::empty_object(),
        signature: None,
        checksum_level: ChecksumLevel::Shallow,
        source_code: None,
        is_agent: false,
    };
    let optional = &[
        "description",
        "parameters",
        "signature",
        "checksum_level",
        "source_code",
        "is_agent",
    ];
    for (key, v) in members(obj, optional) {
        let p = || join(&path, key.as_ref());
        match key.as_ref() {
            "name" => name = Some(expect_string(v, p)?),
            "description" => tool.description = expect_string(v, p)?,
            "parameters" => {
                if !is_schema(&v) {
                    return Err(type_error(&p(), "a JSON Schema (object or boolean)", v.type_name()));
                }
                tool.parameters = v;
            }
            "signature" => tool.signature = Some(expect_string(v, p)?),
            "checksum_level" => {
                let level = expect_string(v, p)?;
                tool.checksum_level = match level.as_ref() {
                    "shallow" => ChecksumLevel::Shallow,
                    "deep" => ChecksumLevel::Deep,
                    other => {
                        return Err(err(
                            ErrorKind::UnknownChecksumLevel,
                            &p(),
                            format!("unknown checksum level {other:?} (expected \"shallow\" or \"deep\")"),
                        ))
                    }
                }
            }
            "source_code" => tool.source_code = Some(expect_string(v, p)?),
            // I-62: a boolean (null = absent); not hashed by either profile.
            "is_agent" => {
                let found = v.type_name();
                match v.into_parts() {
                    Parts::Bool(b) => tool.is_agent = b,
                    _ => return Err(type_error(&p(), "a boolean", found)),
                }
            }
            _ => {
                return Err(err(
                    ErrorKind::UnknownField,
                    &p(),
                    "unknown field (expected name, description, parameters, signature, checksum_level, source_code, is_agent)".into(),
                ))
            }
        }
    }
    tool.name = name.ok_or_else(|| {
        err(
            ErrorKind::MissingField,
            &join(&path, "name"),
            "missing required field".into(),
        )
    })?;
    Ok(tool)
}

// Crate-internal methods only: `Node` stays private to the crate.
#[allow(private_bounds)]
impl<S: AsRef<str>, V: Node> Tool<S, V> {
    fn validate(&self, index: usize) -> Result<(), ChecksumError> {
        let path = || format!("tools[{index}]");
        let name = self.name.as_ref();
        if name.is_empty() {
            return Err(err(
                ErrorKind::InvalidToolName,
                &format!("{}.name", path()),
                "tool name must not be empty".into(),
            ));
        }
        if !is_schema(&self.parameters) {
            return Err(type_error(
                &format!("{}.parameters", path()),
                "a JSON Schema (object or boolean)",
                self.parameters.type_name(),
            ));
        }
        match (self.checksum_level, &self.source_code) {
            (ChecksumLevel::Deep, None) => Err(err(
                ErrorKind::MissingSourceCode,
                &format!("{}.source_code", path()),
                format!("required for deep tool {name:?} (§5.2.3)"),
            )),
            (ChecksumLevel::Shallow, Some(_)) => Err(err(
                ErrorKind::UnexpectedSourceCode,
                &format!("{}.source_code", path()),
                format!(
                    "tool {name:?} is shallow, so its source code would not be hashed; set \"checksum_level\": \"deep\" or remove it"
                ),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<AgentSpec, ChecksumError> {
        AgentSpec::from_json(s.as_bytes())
    }

    fn kind_and_message(s: &str) -> (ErrorKind, String) {
        let e = parse(s).unwrap_err();
        (e.kind(), e.to_string())
    }

    #[test]
    fn s5_2_1_agent_id_charset() {
        for ok in ["a", "vulnerability-patcher-v1", "A.b_c-9", &"x".repeat(128)] {
            assert!(is_valid_agent_id(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "a|b",
            "a b",
            "é",
            &"x".repeat(129),
            "a/b",
            "a:b",
        ] {
            assert!(!is_valid_agent_id(bad), "{bad}");
        }
    }

    #[test]
    fn s5_2_1_reads_full_spec_with_defaults_and_nulls() {
        let s = parse(
            r#"{"agent_id":"a1","prompt_template":"p","configuration":null,
                "tools":[{"name":"t","description":null,"signature":"(x)","parameters":true},
                         {"name":"d","checksum_level":"deep","source_code":"return 1"}]}"#,
        )
        .unwrap();
        assert_eq!(s.prompt, "p");
        assert_eq!(s.configuration, None);
        assert_eq!(s.tools[0].description, "");
        assert_eq!(s.tools[0].parameters, Value::Bool(true));
        assert_eq!(s.tools[0].signature.as_deref(), Some("(x)"));
        assert_eq!(s.tools[1].parameters, Value::Object(vec![]));
        assert_eq!(s.tools[1].checksum_level, ChecksumLevel::Deep);
    }

    #[test]
    fn i62_is_agent_marks_a_sub_agent_tool_and_null_means_absent() {
        let s = parse(
            r#"{"agent_id":"sup","prompt":"p","tools":[
                {"name":"planner","is_agent":true},{"name":"read","is_agent":false},
                {"name":"write","is_agent":null},{"name":"plain"}]}"#,
        )
        .unwrap();
        let flags: Vec<bool> = s.tools.iter().map(|t| t.is_agent).collect();
        assert_eq!(flags, [true, false, false, false]);
    }

    #[test]
    fn s5_2_error_kinds_and_paths() {
        let cases: &[(&str, ErrorKind, &str)] = &[
            ("[]", ErrorKind::NotAnObject, "agent specification must be a JSON object, found array"),
            (r#"{"prompt":"","tools":[]}"#, ErrorKind::MissingField, "agent_id: missing required field"),
            (r#"{"agent_id":"","prompt":"","tools":[]}"#, ErrorKind::InvalidAgentId, "agent_id: must not be empty"),
            (r#"{"agent_id":"a|b","prompt":"","tools":[]}"#, ErrorKind::InvalidAgentId, r#"agent_id: "a|b" does not match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"#),
            (r#"{"agent_id":7,"prompt":"","tools":[]}"#, ErrorKind::InvalidType, "agent_id: expected a string, found number"),
            (r#"{"agent_id":null,"prompt":"","tools":[]}"#, ErrorKind::InvalidType, "agent_id: expected a string, found null"),
            (r#"{"agent_id":"a","prompt":"","tools":null}"#, ErrorKind::InvalidType, "tools: expected an array, found null"),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":null}]}"#, ErrorKind::InvalidType, "tools[0].name: expected a string, found null"),
            (r#"{"agent_id":"a","prompt":"","tools":[],"nope":null}"#, ErrorKind::UnknownField, "nope: unknown field (expected agent_id, prompt, tools, configuration)"),
            (r#"{"agent_id":"a","prompt":"","tools":[],"configuration":{"t":1e400}}"#, ErrorKind::NumberOutOfRange, "configuration.t: number out of range (a fraction or exponent that overflows an IEEE-754 double, or an integer longer than 4300 digits)"),
            (r#"{"agent_id":"a","tools":[]}"#, ErrorKind::MissingField, "prompt: missing required field"),
            (r#"{"agent_id":"a","prompt":"","prompt_template":"","tools":[]}"#, ErrorKind::ConflictingFields, r#"prompt_template: both "prompt" and "prompt_template" given; use one"#),
            (r#"{"agent_id":"a","prompt":""}"#, ErrorKind::MissingField, "tools: missing required field"),
            (r#"{"agent_id":"a","prompt":"","tools":{}}"#, ErrorKind::InvalidType, "tools: expected an array, found object"),
            (r#"{"agent_id":"a","prompt":"","tools":[],"configuration":[]}"#, ErrorKind::InvalidType, "configuration: expected an object, found array"),
            (r#"{"agent_id":"a","prompt":"","tools":[],"extra":1}"#, ErrorKind::UnknownField, "extra: unknown field (expected agent_id, prompt, tools, configuration)"),
            (r#"{"agent_id":"a","prompt":"","tools":[1]}"#, ErrorKind::InvalidType, "tools[0]: expected a tool object, found number"),
            (r#"{"agent_id":"a","prompt":"","tools":[{}]}"#, ErrorKind::MissingField, "tools[0].name: missing required field"),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":""}]}"#, ErrorKind::InvalidToolName, "tools[0].name: tool name must not be empty"),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"x","parameters":"s"}]}"#, ErrorKind::InvalidType, "tools[0].parameters: expected a JSON Schema (object or boolean), found string"),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"x","checksumLevel":"deep"}]}"#, ErrorKind::UnknownField, "tools[0].checksumLevel: unknown field (expected name, description, parameters, signature, checksum_level, source_code, is_agent)"),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"x","is_agent":"true"}]}"#, ErrorKind::InvalidType, "tools[0].is_agent: expected a boolean, found string"),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"x","is_agent":0}]}"#, ErrorKind::InvalidType, "tools[0].is_agent: expected a boolean, found number"),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"x","checksum_level":"full"}]}"#, ErrorKind::UnknownChecksumLevel, r#"tools[0].checksum_level: unknown checksum level "full" (expected "shallow" or "deep")"#),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"x","checksum_level":"deep"}]}"#, ErrorKind::MissingSourceCode, r#"tools[0].source_code: required for deep tool "x" (§5.2.3)"#),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"x","source_code":"1"}]}"#, ErrorKind::UnexpectedSourceCode, r#"tools[0].source_code: tool "x" is shallow, so its source code would not be hashed; set "checksum_level": "deep" or remove it"#),
            (r#"{"agent_id":"a","prompt":"","tools":[{"name":"a"},{"name":"b"},{"name":"search"},{"name":"search"}]}"#, ErrorKind::DuplicateToolName, r#"tools[3].name: duplicate tool name "search""#),
            (r#"{"agent_id":"a","agent_id":"b","prompt":"","tools":[]}"#, ErrorKind::DuplicateKey, r#"$: duplicate key "agent_id""#),
            (r#"{"agent_id":"a","prompt":"","tools":[],"configuration":{"a b":{"x":1,"x":2}}}"#, ErrorKind::DuplicateKey, r#"configuration["a b"]: duplicate key "x""#),
            ("{", ErrorKind::InvalidJson, "invalid JSON: EOF while parsing an object at line 1 column 1"),
        ];
        for (input, kind, message) in cases {
            assert_eq!(
                kind_and_message(input),
                (*kind, (*message).to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn s5_2_messages_stay_on_one_line() {
        let (_, m) = kind_and_message("{\"agent_id\":\"a\\nb\",\"prompt\":\"\",\"tools\":[]}");
        assert!(!m.contains('\n'), "{m}");
    }
}
