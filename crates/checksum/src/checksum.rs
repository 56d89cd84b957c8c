//! The `AgentChecksum` value type: `sha256:<64 lowercase hex>` (§4.2.1, §9.1.1).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The algorithm prefix of the wire form (§4.2.1: `"sha256:<hex>"`).
pub const PREFIX: &str = "sha256:";

/// A SHA-256 agent checksum.
///
/// Printed and parsed as `sha256:` followed by 64 lowercase hex digits (the
/// format §9.1.1 requires to be enforced). Equality is constant-time
/// (`subtle`), as §5.5.2 and §9.1.1 require for checksum comparison.
#[derive(Clone, Copy)]
pub struct AgentChecksum([u8; 32]);

/// Why a string is not an agent checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChecksumFormatError {
    /// No `algorithm:` prefix (bare hex is only accepted by
    /// [`AgentChecksum::parse_lenient`]).
    #[error("checksum must start with \"sha256:\"")]
    MissingPrefix,
    /// A prefix other than `sha256:` (e.g. `sha512:`, `SHA256:`).
    #[error("unsupported checksum algorithm {0:?} (only \"sha256\" is defined)")]
    UnknownAlgorithm(String),
    /// Not exactly 64 hex digits after the prefix.
    #[error("checksum must have 64 hex digits, found {0} characters")]
    WrongLength(usize),
    /// Hex digits A-F in upper case (§5.3.2: "MUST be lowercase").
    #[error("checksum hex digits must be lowercase")]
    Uppercase,
    /// A character that is not a hex digit.
    #[error("checksum contains a non-hex character")]
    NotHex,
}

impl AgentChecksum {
    /// SHA-256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> AgentChecksum {
        AgentChecksum(Sha256::digest(bytes).into())
    }

    /// Wraps a raw 32-byte digest.
    pub fn from_bytes(bytes: [u8; 32]) -> AgentChecksum {
        AgentChecksum(bytes)
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex without prefix (the bare form of §5.3.1 step 4).
    pub fn to_hex(&self) -> String {
        let mut out = [0u8; 64];
        // 32 bytes always fit 64 hex digits (the slice form skips the
        // per-character iterator of `hex::encode`, I-186).
        match hex::encode_to_slice(self.0, &mut out) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => hex::encode(self.0),
        }
    }

    /// Parses the strict wire form `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<AgentChecksum, ChecksumFormatError> {
        match s.split_once(':') {
            Some(("sha256", hex)) => Self::parse_hex(hex),
            Some((alg, _)) => Err(ChecksumFormatError::UnknownAlgorithm(alg.to_owned())),
            None => Err(ChecksumFormatError::MissingPrefix),
        }
    }

    /// Also accepts the draft reference implementation's bare 64-hex form
    /// (§5.3.1 step 4: "The reference implementation uses bare hex"). Use only
    /// where such legacy input is expected; the wire form is always prefixed.
    pub fn parse_lenient(s: &str) -> Result<AgentChecksum, ChecksumFormatError> {
        if s.contains(':') {
            Self::parse(s)
        } else {
            Self::parse_hex(s)
        }
    }

    fn parse_hex(hex: &str) -> Result<AgentChecksum, ChecksumFormatError> {
        if hex.len() != 64 {
            return Err(ChecksumFormatError::WrongLength(hex.chars().count()));
        }
        if hex
            .bytes()
            .any(|b| b.is_ascii_uppercase() && b.is_ascii_hexdigit())
        {
            return Err(ChecksumFormatError::Uppercase);
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ChecksumFormatError::NotHex);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).map_err(|_| ChecksumFormatError::NotHex)?;
        Ok(AgentChecksum(out))
    }
}

impl ConstantTimeEq for AgentChecksum {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for AgentChecksum {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for AgentChecksum {}

impl std::hash::Hash for AgentChecksum {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Display for AgentChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 64];
        match hex::encode_to_slice(self.0, &mut out) {
            Ok(()) => {
                f.write_str(PREFIX)?;
                f.write_str(&String::from_utf8_lossy(&out))
            }
            Err(_) => write!(f, "{PREFIX}{}", hex::encode(self.0)),
        }
    }
}

impl fmt::Debug for AgentChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentChecksum({self})")
    }
}

impl FromStr for AgentChecksum {
    type Err = ChecksumFormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for AgentChecksum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AgentChecksum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AgentChecksum::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256("abc"), FIPS 180-2 Appendix B.1.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn s5_3_1_digest_prints_prefixed_lowercase() {
        assert_eq!(
            AgentChecksum::digest(b"abc").to_string(),
            format!("sha256:{ABC}")
        );
    }

    #[test]
    fn s9_1_1_parse_strict_format_and_errors() {
        let ok = AgentChecksum::parse(&format!("sha256:{ABC}")).unwrap();
        assert_eq!(ok, AgentChecksum::digest(b"abc"));
        assert_eq!(
            AgentChecksum::parse(ABC),
            Err(ChecksumFormatError::MissingPrefix)
        );
        assert_eq!(
            AgentChecksum::parse(&format!("sha512:{ABC}")),
            Err(ChecksumFormatError::UnknownAlgorithm("sha512".into()))
        );
        assert_eq!(
            AgentChecksum::parse(&format!("SHA256:{ABC}")),
            Err(ChecksumFormatError::UnknownAlgorithm("SHA256".into()))
        );
        assert_eq!(
            AgentChecksum::parse(&format!("sha256:{}", ABC.to_uppercase())),
            Err(ChecksumFormatError::Uppercase)
        );
        assert_eq!(
            AgentChecksum::parse("sha256:a3c7f2e8d9b4f1e2c8a7d6f3e9b2c4f1..."),
            Err(ChecksumFormatError::WrongLength(35))
        );
        assert_eq!(
            AgentChecksum::parse(&format!("sha256:{}g", &ABC[..63])),
            Err(ChecksumFormatError::NotHex)
        );
        assert_eq!(
            AgentChecksum::parse(&format!("sha256:{ABC} ")),
            Err(ChecksumFormatError::WrongLength(65))
        );
    }

    #[test]
    fn s5_3_1_lenient_accepts_bare_hex_only_explicitly() {
        assert_eq!(
            AgentChecksum::parse_lenient(ABC).unwrap(),
            AgentChecksum::digest(b"abc")
        );
        assert_eq!(
            AgentChecksum::parse_lenient(&format!("sha256:{ABC}")).unwrap(),
            AgentChecksum::digest(b"abc")
        );
        assert_eq!(
            AgentChecksum::parse_lenient(&ABC.to_uppercase()),
            Err(ChecksumFormatError::Uppercase)
        );
    }

    #[test]
    fn s5_5_2_constant_time_equality_and_serde() {
        let a = AgentChecksum::digest(b"a");
        let b = AgentChecksum::digest(b"b");
        assert_ne!(a, b);
        assert!(bool::from(a.ct_eq(&a)));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<AgentChecksum>(&json).unwrap(), a);
        assert!(serde_json::from_str::<AgentChecksum>(&format!("\"{ABC}\"")).is_err());
    }
}
