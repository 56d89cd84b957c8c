//! `WWW-Authenticate` challenges: the one place that builds and parses them
//! (issuer, resource-server verifier, client shim). Pure, no I/O.
//!
//! Syntax is RFC 9110 §11.6.1 (and §11.2, §5.6.4 for `token68` and
//! `quoted-string`):
//!
//! ```text
//! WWW-Authenticate = #challenge
//! challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param       = token BWS "=" BWS ( token / quoted-string )
//! token68          = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! The parameters used here are those of RFC 6750 §3 (`realm`, `error`,
//! `error_description`, `error_uri`, `scope`), RFC 9449 §7.1 (`algs`) and
//! RFC 9728 §5.1 (`resource_metadata`). Built challenges always quote
//! parameter values (RFC 6750 §3 requires quoted values for its parameters).
//!
//! ```
//! use ajwt_protocol::challenge::{parse, Challenge};
//! let c = Challenge::dpop()
//!     .error("use_dpop_nonce")
//!     .error_description("Resource server requires nonce in DPoP proof")
//!     .algs(["ES256", "Ed25519"]);
//! let header = c.to_string();
//! assert_eq!(
//!     header,
//!     r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 Ed25519""#
//! );
//! let parsed = parse(&header).unwrap();
//! assert_eq!(parsed, vec![c]);
//! assert_eq!(parsed[0].algs_list(), ["ES256", "Ed25519"]);
//! ```

use std::fmt;

/// The `Bearer` scheme (RFC 6750 §3).
pub const BEARER: &str = "Bearer";
/// The `DPoP` scheme (RFC 9449 §7.1).
pub const DPOP: &str = "DPoP";

/// One challenge: a scheme and either auth-params or a `token68`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: String,
    token68: Option<String>,
    params: Vec<(String, String)>,
}

impl Challenge {
    /// A challenge for `scheme` (a `token`; characters outside `tchar` are dropped).
    pub fn new(scheme: impl AsRef<str>) -> Challenge {
        Challenge {
            scheme: scheme.as_ref().chars().filter(|c| is_tchar(*c)).collect(),
            token68: None,
            params: Vec::new(),
        }
    }

    /// `Bearer` (RFC 6750 §3).
    pub fn bearer() -> Challenge {
        Challenge::new(BEARER)
    }

    /// `DPoP` (RFC 9449 §7.1).
    pub fn dpop() -> Challenge {
        Challenge::new(DPOP)
    }

    /// Adds (or replaces, names compared case-insensitively) a parameter.
    /// Names are reduced to `tchar`s; an empty name is ignored.
    pub fn param(mut self, name: impl AsRef<str>, value: impl Into<String>) -> Challenge {
        let name: String = name.as_ref().chars().filter(|c| is_tchar(*c)).collect();
        if name.is_empty() {
            return self;
        }
        let value = value.into();
        match self
            .params
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(slot) => slot.1 = value,
            None => self.params.push((name, value)),
        }
        self
    }

    /// `realm` (RFC 6750 §3, RFC 9110 §11.5).
    pub fn realm(self, realm: impl Into<String>) -> Challenge {
        self.param("realm", realm)
    }

    /// `error` (RFC 6750 §3.1, RFC 9449 §7.1).
    pub fn error(self, code: impl Into<String>) -> Challenge {
        self.param("error", code)
    }

    /// `error_description`, restricted to the characters RFC 6750 §3 allows
    /// (`%x20-21 / %x23-5B / %x5D-7E`: `"` becomes `'`, `§` becomes
    /// `Section `, `\` and anything else outside the set become `?`) and
    /// bounded to [`crate::error::MAX_DESCRIPTION_BYTES`] bytes, by
    /// [`crate::error::rfc6749_description`] (I-71).
    pub fn error_description(self, text: impl AsRef<str>) -> Challenge {
        let text = crate::error::rfc6749_description(text.as_ref());
        self.param("error_description", text)
    }

    /// `scope`: space-separated scope tokens (RFC 6750 §3).
    pub fn scope<I: IntoIterator<Item = S>, S: AsRef<str>>(self, scopes: I) -> Challenge {
        let joined = join(scopes);
        self.param("scope", joined)
    }

    /// `algs`: the space-separated JWS algorithms accepted in DPoP proofs (RFC 9449 §7.1).
    pub fn algs<I: IntoIterator<Item = S>, S: AsRef<str>>(self, algs: I) -> Challenge {
        let joined = join(algs);
        self.param("algs", joined)
    }

    /// `resource_metadata`: the URL of the RFC 9728 metadata (RFC 9728 §5.1).
    pub fn resource_metadata(self, url: impl Into<String>) -> Challenge {
        self.param("resource_metadata", url)
    }

    /// The scheme as written.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `name` (case-insensitive, RFC 9110 §11.1).
    pub fn is_scheme(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }

    /// The `token68` of a challenge that carries one instead of parameters.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// All parameters in order, values unescaped.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `error`, if present.
    pub fn error_code(&self) -> Option<&str> {
        self.get("error")
    }

    /// The `algs` list (empty when absent).
    pub fn algs_list(&self) -> Vec<&str> {
        self.get("algs")
            .map(|a| a.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    /// `resource_metadata`, if present.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.get("resource_metadata")
    }
}

fn join<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(t) = &self.token68 {
            return write!(f, " {t}");
        }
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{name}={}", quote(value))?;
        }
        Ok(())
    }
}

/// Several challenges in one header value, comma-separated (RFC 9110 §11.6.1).
pub fn format(challenges: &[Challenge]) -> String {
    challenges
        .iter()
        .map(Challenge::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `value` as an RFC 9110 §5.6.4 quoted-string: `"` and `\` are escaped
/// with `\`; control characters other than HTAB (not allowed in a header
/// field) become spaces.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(c),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why a `WWW-Authenticate` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The value holds no challenge at all.
    #[error("no challenge in the header value")]
    Empty,
    /// A character that cannot start or continue the expected element.
    #[error("unexpected character {found:?} at byte {at} (expected {expected})")]
    Unexpected {
        /// Byte offset.
        at: usize,
        /// The character found (`None`: end of input).
        found: Option<char>,
        /// What the grammar expected there.
        expected: &'static str,
    },
    /// A quoted-string without its closing `"`.
    #[error("unterminated quoted-string starting at byte {0}")]
    UnterminatedQuote(usize),
    /// A parameter named twice in one challenge (RFC 9110 §11.2: each name MUST occur once).
    #[error("parameter {0:?} occurs twice in one challenge")]
    DuplicateParam(String),
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        &self.s[start..self.pos]
    }

    fn unexpected(&self, expected: &'static str) -> ChallengeError {
        ChallengeError::Unexpected {
            at: self.pos,
            found: self.peek(),
            expected,
        }
    }

    /// Skips OWS and any empty list elements; true at the end.
    fn skip_separators(&mut self) -> bool {
        loop {
            self.skip_ows();
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                }
                None => return true,
                _ => return false,
            }
        }
    }

    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let start = self.pos;
        self.bump(); // the opening quote
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(ChallengeError::UnterminatedQuote(start)),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some(c) if c == '\t' || !c.is_control() => out.push(c),
                    _ => return Err(ChallengeError::UnterminatedQuote(start)),
                },
                Some(c) if c == '\t' || !c.is_control() => out.push(c),
                Some(_) => {
                    self.pos = at;
                    return Err(self.unexpected("qdtext or quoted-pair"));
                }
            }
        }
    }

    /// At a `token BWS "="` that is not followed by another `=` (a token68's padding).
    fn at_auth_param(&self) -> bool {
        let rest = &self.s[self.pos..];
        let name_len = rest.chars().take_while(|c| is_tchar(*c)).count();
        if name_len == 0 {
            return false;
        }
        let after = rest[name_len..].trim_start_matches([' ', '\t']);
        after.starts_with('=')
            && !after[1..]
                .trim_start_matches([' ', '\t'])
                .starts_with([',', '='])
            && !after[1..].trim_start_matches([' ', '\t']).is_empty()
    }
}

/// Parses a `WWW-Authenticate` field value into its challenges
/// (RFC 9110 §11.6.1): several challenges, empty list elements, quoted
/// strings with `\` escapes, `token68` credentials (tolerated, kept as
/// [`Challenge::token68`]), case-insensitive scheme and parameter names.
pub fn parse(value: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut c = Cursor { s: value, pos: 0 };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        if c.skip_separators() {
            break;
        }
        let scheme = c.take_while(is_tchar).to_owned();
        if scheme.is_empty() {
            return Err(c.unexpected("an auth-scheme"));
        }
        let mut challenge = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        let had_space = matches!(c.peek(), Some(' ' | '\t'));
        c.skip_ows();
        match c.peek() {
            None | Some(',') => {}
            Some(_) if !had_space => return Err(c.unexpected("a space after the auth-scheme")),
            Some(_) if !c.at_auth_param() => {
                // token68
                let t = c.take_while(is_token68_char).to_owned();
                if t.is_empty() {
                    return Err(c.unexpected("token68 or auth-param"));
                }
                let pad = c.take_while(|ch| ch == '=').to_owned();
                challenge.token68 = Some(t + &pad);
                c.skip_ows();
                if !matches!(c.peek(), None | Some(',')) {
                    return Err(c.unexpected("',' or the end after token68"));
                }
            }
            Some(_) => {
                // #auth-param, until the next element that is not a parameter.
                loop {
                    let name = c.take_while(is_tchar).to_owned();
                    c.skip_ows();
                    if c.bump() != Some('=') {
                        return Err(c.unexpected("'='"));
                    }
                    c.skip_ows();
                    let value = match c.peek() {
                        Some('"') => c.quoted_string()?,
                        _ => {
                            let v = c.take_while(is_tchar).to_owned();
                            if v.is_empty() {
                                return Err(c.unexpected("a token or quoted-string value"));
                            }
                            v
                        }
                    };
                    if challenge.get(&name).is_some() {
                        return Err(ChallengeError::DuplicateParam(name));
                    }
                    challenge.params.push((name, value));
                    c.skip_ows();
                    match c.peek() {
                        None => break,
                        Some(',') => {}
                        Some(_) => return Err(c.unexpected("',' or the end after an auth-param")),
                    }
                    // After the comma(s): another parameter, or a new challenge.
                    let save = c.pos;
                    if c.skip_separators() {
                        break;
                    }
                    if !c.at_auth_param() {
                        c.pos = save;
                        break;
                    }
                }
            }
        }
        out.push(challenge);
    }
    if out.is_empty() {
        return Err(ChallengeError::Empty);
    }
    Ok(out)
}

/// The first challenge of `scheme` (case-insensitive) in a header value.
pub fn find<'a>(challenges: &'a [Challenge], scheme: &str) -> Option<&'a Challenge> {
    challenges.iter().find(|c| c.is_scheme(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6750_s3_bearer_examples_parse() {
        // RFC 6750 §3 examples.
        let c = parse(r#"Bearer realm="example""#).unwrap();
        assert_eq!(c.len(), 1);
        assert!(c[0].is_scheme("bearer"));
        assert_eq!(c[0].get("REALM"), Some("example"));
        let c = parse(
            r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].error_code(), Some("invalid_token"));
        assert_eq!(
            c[0].get("error_description"),
            Some("The access token expired")
        );
        assert_eq!(parse("Bearer").unwrap(), vec![Challenge::bearer()]);
    }

    #[test]
    fn rfc9449_s7_1_several_challenges_in_one_header() {
        // RFC 9449 §7.1: "WWW-Authenticate: Bearer, DPoP algs="ES256 PS256"" style.
        let c = parse(r#"Bearer, DPoP algs="ES256 PS256""#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], Challenge::bearer());
        assert!(c[1].is_scheme(DPOP));
        assert_eq!(c[1].algs_list(), ["ES256", "PS256"]);
        let c = parse(
            r#"DPoP error="invalid_token", algs="ES256", Bearer realm="r", error="invalid_token""#,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].algs_list(), ["ES256"]);
        assert_eq!(c[1].get("realm"), Some("r"));
        assert_eq!(
            find(&c, "bearer").unwrap().error_code(),
            Some("invalid_token")
        );
    }

    #[test]
    fn rfc9110_s5_6_4_quoted_pairs_and_tokens() {
        let c = parse(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        )
        .unwrap();
        // RFC 9110 §11.6.1's own example.
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].get("type"), Some("1"));
        assert_eq!(c[0].get("title"), Some(r#"Login to "apps""#));
        assert_eq!(c[1].get("realm"), Some("simple"));
        let c = parse(r#"Bearer realm = "a\\b" ,, , error=x"#).unwrap();
        assert_eq!(c[0].get("realm"), Some(r"a\b"));
        assert_eq!(c[0].get("error"), Some("x"));
    }

    #[test]
    fn rfc9110_s11_6_1_token68_is_tolerated() {
        let c = parse("Negotiate YII=, Basic realm=\"x\"").unwrap();
        assert_eq!(c[0].token68(), Some("YII="));
        assert!(c[0].params().is_empty());
        assert_eq!(c[1].get("realm"), Some("x"));
        let c = parse("Foo abc/+._~-==").unwrap();
        assert_eq!(c[0].token68(), Some("abc/+._~-=="));
    }

    #[test]
    fn malformed_values_are_typed_errors() {
        assert_eq!(parse(""), Err(ChallengeError::Empty));
        assert_eq!(parse(" , ,"), Err(ChallengeError::Empty));
        assert_eq!(
            parse(r#"Bearer realm="open"#),
            Err(ChallengeError::UnterminatedQuote(13))
        );
        assert_eq!(
            parse(r#"Bearer error="a", error="b""#),
            Err(ChallengeError::DuplicateParam("error".into()))
        );
        assert!(matches!(
            parse(r#"Bearer realm="a" junk"#),
            Err(ChallengeError::Unexpected { .. })
        ));
        assert!(matches!(
            parse("\"x\""),
            Err(ChallengeError::Unexpected { .. })
        ));
        assert!(matches!(
            parse("Bearer a=\"\u{1}\""),
            Err(ChallengeError::Unexpected { .. })
        ));
        // `realm=` alone is a token68 (RFC 9110 §11.2); a dangling parameter is not.
        assert_eq!(parse("Bearer realm=").unwrap()[0].token68(), Some("realm="));
        assert!(matches!(
            parse(r#"Bearer a="x", b="#),
            Err(ChallengeError::Unexpected { .. })
        ));
    }

    #[test]
    fn building_quotes_and_round_trips() {
        let c = Challenge::dpop()
            .realm(r#"a "quoted" \ realm"#)
            .error("invalid_dpop_proof")
            .error_description("bad \"proof\" \\ é")
            .algs(["ES256", "EdDSA", "Ed25519"])
            .resource_metadata("https://mcp.example/.well-known/oauth-protected-resource");
        let s = c.to_string();
        assert_eq!(
            s,
            r#"DPoP realm="a \"quoted\" \\ realm", error="invalid_dpop_proof", error_description="bad 'proof' ? ?", algs="ES256 EdDSA Ed25519", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource""#
        );
        assert_eq!(parse(&s).unwrap(), vec![c.clone()]);
        let both = format(&[c.clone(), Challenge::bearer().scope(["a", "b"])]);
        let back = parse(&both).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].get("scope"), Some("a b"));
        assert_eq!(quote("x\ny"), "\"x y\"");
        // Replacing a parameter keeps one occurrence.
        assert_eq!(
            Challenge::bearer().error("a").error("b").to_string(),
            r#"Bearer error="b""#
        );
    }

    #[test]
    fn multibyte_control_characters_do_not_split_a_char() {
        // U+0085 is a control character two bytes long in UTF-8.
        assert!(matches!(
            parse("Bearer a=\"x\u{85}y\""),
            Err(ChallengeError::Unexpected { at: 11, .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,64}") {
            let _ = parse(&s);
        }

        #[test]
        fn parse_never_panics_on_header_like_input(s in "[ ,=\"\\\\a-zA-Z0-9\u{80}-\u{ff}]{0,48}") {
            let _ = parse(&s);
        }

        #[test]
        fn built_challenges_parse_back(
            realm in "\\PC{0,24}",
            desc in "\\PC{0,24}",
            scope in "[a-z:]{1,12}",
        ) {
            let c = Challenge::bearer().realm(realm).error("invalid_token").error_description(desc).scope([scope]);
            let expected = Challenge::bearer()
                .realm(c.get("realm").unwrap_or_default().to_owned())
                .error("invalid_token")
                .error_description(c.get("error_description").unwrap_or_default())
                .scope([c.get("scope").unwrap_or_default()]);
            let parsed = parse(&c.to_string()).unwrap();
            proptest::prop_assert_eq!(parsed.len(), 1);
            proptest::prop_assert_eq!(&parsed[0].get("error_description"), &c.get("error_description"));
            proptest::prop_assert_eq!(&parsed[0], &expected);
        }
    }
}
