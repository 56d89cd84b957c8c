//! Token Status List (draft-ietf-oauth-status-list-17, "TSL"): the codec the
//! issuer uses to publish the revocation state of intent tokens and a
//! resource server uses to read it. No I/O, no signing.
//!
//! * [`StatusList`]: the byte array of §4.1, `bits` bits per referenced
//!   token, index 0 in the least significant bit(s) of byte 0 (§4.1: "the
//!   bits within an array are counted from the least significant bit").
//! * [`EncodedStatusList`]: its JSON form `{"bits": 1, "lst": "..."}` (§4.2),
//!   `lst` = base64url (no padding) of the ZLIB (RFC 1950) DEFLATE
//!   compression of the byte array. [`StatusList::decode`] is bounded by
//!   [`MAX_STATUS_LIST_BYTES`] (a small `lst` cannot inflate into gigabytes).
//! * [`StatusClaim`]: the `status` claim of a referenced token (§6.1):
//!   `{"status_list": {"idx": N, "uri": "..."}}`.
//! * [`StatusListTokenClaims`]: the payload of a status list token (§5.1),
//!   whose JOSE header `typ` is [`STATUS_LIST_JWT_TYP`].

use std::io::{Read, Write};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

use crate::limits::MAX_STATUS_LIST_BYTES;

/// The JOSE header `typ` of a status list token (§5.1: "MUST be
/// `statuslist+jwt`").
pub const STATUS_LIST_JWT_TYP: &str = "statuslist+jwt";

/// The media type of a status list token served over HTTP (§8.1, §14:
/// `application/statuslist+jwt`).
pub const STATUS_LIST_JWT_MEDIA_TYPE: &str = "application/statuslist+jwt";

/// Status type VALID (§7.1, `0x00`).
pub const STATUS_VALID: u8 = 0x00;
/// Status type INVALID (§7.1, `0x01`): revoked, permanently.
pub const STATUS_INVALID: u8 = 0x01;
/// Status type SUSPENDED (§7.1, `0x02`; needs `bits` ≥ 2).
pub const STATUS_SUSPENDED: u8 = 0x02;

/// Why a status list could not be built, read or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusListError {
    /// `bits` is not 1, 2, 4 or 8 (§4.1).
    #[error("status list bits must be 1, 2, 4 or 8, not {0}")]
    InvalidBits(u64),
    /// The (decompressed) list is larger than [`MAX_STATUS_LIST_BYTES`], or
    /// `lst` is longer than its base64url encoding could be.
    #[error("status list larger than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// `lst` is not base64url without padding.
    #[error("status list lst is not base64url")]
    Base64,
    /// `lst` does not decode to a complete ZLIB stream.
    #[error("status list lst is not a ZLIB stream")]
    Zlib,
    /// The index is not in the list.
    #[error("status list index {idx} out of range (size {size})")]
    IndexOutOfRange {
        /// The index asked for.
        idx: u64,
        /// Number of statuses in the list.
        size: usize,
    },
    /// The status list token's `sub` is not the referenced `uri` (TSL §8.3).
    #[error("status list token sub {sub} is not the referenced uri {uri}")]
    SubjectMismatch {
        /// The token's `sub`.
        sub: String,
        /// The referenced token's `status.status_list.uri`.
        uri: String,
    },
    /// The status list token has expired (`exp` ≤ now, TSL §8.3).
    #[error("status list token expired at {exp}")]
    Expired {
        /// Its `exp`.
        exp: i64,
    },
    /// The status value does not fit in `bits` bits.
    #[error("status value {value} does not fit in {bits} bits")]
    ValueOutOfRange {
        /// The value.
        value: u8,
        /// Bits per status.
        bits: u8,
    },
}

/// A status list (§4.1): `size` statuses of `bits` bits each, packed least
/// significant bit first. All statuses start VALID (0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

fn check_bits(bits: u64) -> Result<u8, StatusListError> {
    match bits {
        1 | 2 | 4 | 8 => Ok(bits as u8),
        other => Err(StatusListError::InvalidBits(other)),
    }
}

impl StatusList {
    /// An all-VALID list of `size` statuses of `bits` bits (the byte array
    /// is rounded up to whole bytes, §4.1; the padding statuses are VALID).
    pub fn new(bits: u8, size: usize) -> Result<StatusList, StatusListError> {
        let bits = check_bits(u64::from(bits))?;
        let len = size
            .checked_mul(usize::from(bits))
            .map(|b| b.div_ceil(8))
            .filter(|len| *len <= MAX_STATUS_LIST_BYTES)
            .ok_or(StatusListError::TooLarge {
                max: MAX_STATUS_LIST_BYTES,
            })?;
        Ok(StatusList {
            bits,
            bytes: vec![0; len],
        })
    }

    /// A list over an existing byte array.
    pub fn from_bytes(bits: u8, bytes: Vec<u8>) -> Result<StatusList, StatusListError> {
        let bits = check_bits(u64::from(bits))?;
        if bytes.len() > MAX_STATUS_LIST_BYTES {
            return Err(StatusListError::TooLarge {
                max: MAX_STATUS_LIST_BYTES,
            });
        }
        Ok(StatusList { bits, bytes })
    }

    /// Bits per status.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Number of statuses the byte array holds (`bytes * 8 / bits`).
    pub fn len(&self) -> usize {
        self.bytes.len() * 8 / usize::from(self.bits)
    }

    /// True when the list holds no status.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The byte array (§4.1).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn position(&self, idx: u64) -> Result<(usize, u32), StatusListError> {
        let size = self.len();
        match usize::try_from(idx) {
            Ok(i) if i < size => {
                let bit = i * usize::from(self.bits);
                Ok((bit / 8, (bit % 8) as u32))
            }
            _ => Err(StatusListError::IndexOutOfRange { idx, size }),
        }
    }

    fn mask(&self) -> u8 {
        // bits is 1, 2, 4 or 8: (1 << bits) - 1 computed without overflow.
        (u16::MAX >> (16 - u32::from(self.bits))) as u8
    }

    /// The status at `idx` (§4.1), `None` when out of range.
    pub fn get(&self, idx: u64) -> Option<u8> {
        let (byte, shift) = self.position(idx).ok()?;
        self.bytes.get(byte).map(|b| (b >> shift) & self.mask())
    }

    /// Sets the status at `idx`.
    pub fn set(&mut self, idx: u64, value: u8) -> Result<(), StatusListError> {
        let mask = self.mask();
        if value & !mask != 0 {
            return Err(StatusListError::ValueOutOfRange {
                value,
                bits: self.bits,
            });
        }
        let (byte, shift) = self.position(idx)?;
        let size = self.len();
        let b = self
            .bytes
            .get_mut(byte)
            .ok_or(StatusListError::IndexOutOfRange { idx, size })?;
        *b = (*b & !(mask << shift)) | (value << shift);
        Ok(())
    }

    /// The JSON form (§4.2): `lst` = base64url(ZLIB(bytes)), best compression.
    pub fn encode(&self) -> EncodedStatusList {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        // Writing into a Vec cannot fail; an error would leave `lst` empty,
        // which decodes as an error, never as an all-VALID list.
        let compressed = z
            .write_all(&self.bytes)
            .and_then(|()| z.finish())
            .unwrap_or_default();
        EncodedStatusList {
            bits: self.bits,
            lst: URL_SAFE_NO_PAD.encode(compressed),
            aggregation_uri: None,
        }
    }

    /// Reads the JSON form (§4.2), inflating at most
    /// [`MAX_STATUS_LIST_BYTES`] bytes (decompression bomb bound).
    pub fn decode(encoded: &EncodedStatusList) -> Result<StatusList, StatusListError> {
        let bits = check_bits(u64::from(encoded.bits))?;
        // DEFLATE never expands incompressible data by more than ~0.1% plus
        // a few bytes; a longer `lst` is refused before base64 decoding.
        let max_lst = (MAX_STATUS_LIST_BYTES + MAX_STATUS_LIST_BYTES / 64 + 64) / 3 * 4;
        if encoded.lst.len() > max_lst {
            return Err(StatusListError::TooLarge {
                max: MAX_STATUS_LIST_BYTES,
            });
        }
        let compressed = URL_SAFE_NO_PAD
            .decode(encoded.lst.as_bytes())
            .map_err(|_| StatusListError::Base64)?;
        let mut bytes = Vec::new();
        let limit = MAX_STATUS_LIST_BYTES as u64 + 1;
        ZlibDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|_| StatusListError::Zlib)?;
        if bytes.len() > MAX_STATUS_LIST_BYTES {
            return Err(StatusListError::TooLarge {
                max: MAX_STATUS_LIST_BYTES,
            });
        }
        Ok(StatusList { bits, bytes })
    }
}

/// The status of the token `reference` names, read from a status list
/// token whose signature and `typ` the caller has checked (TSL §8.3): its
/// `sub` must be the referenced `uri`, it must not have expired at `now`
/// (`exp` > `now`, no leeway), its list must decode within the limits and
/// hold `idx`.
pub fn referenced_status(
    token: &StatusListTokenClaims,
    reference: &StatusListReference,
    now: i64,
) -> Result<u8, StatusListError> {
    if token.sub != reference.uri {
        return Err(StatusListError::SubjectMismatch {
            sub: token.sub.clone(),
            uri: reference.uri.clone(),
        });
    }
    if let Some(exp) = token.exp.filter(|exp| *exp <= now) {
        return Err(StatusListError::Expired { exp });
    }
    let list = StatusList::decode(&token.status_list)?;
    list.get(reference.idx)
        .ok_or(StatusListError::IndexOutOfRange {
            idx: reference.idx,
            size: list.len(),
        })
}

/// The JSON status list (§4.2), the `status_list` claim of a status list
/// token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedStatusList {
    /// Bits per referenced token: 1, 2, 4 or 8.
    pub bits: u8,
    /// base64url(ZLIB(byte array)).
    pub lst: String,
    /// URI to retrieve the list of all status list tokens of the issuer
    /// (§9, optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_uri: Option<String>,
}

/// The `status` claim of a referenced token (§6.1). Other status mechanisms
/// may add members; only `status_list` is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClaim {
    /// Where this token's status is.
    pub status_list: StatusListReference,
}

/// The `status_list` member of the `status` claim (§6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReference {
    /// Index of the token's status in the list (non-negative).
    pub idx: u64,
    /// URI of the status list token (its `sub`).
    pub uri: String,
}

/// The claims of a status list token (§5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListTokenClaims {
    /// Issuer (optional in the draft; the issuer sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The URI of the status list token: equal to the referenced token's
    /// `status.status_list.uri` (§5.1, checked by the relying party, §8.3).
    pub sub: String,
    /// Issuance time, NumericDate.
    pub iat: i64,
    /// Expiry, NumericDate (optional in the draft; the issuer sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Seconds a consumer may cache the token before fetching a fresh copy
    /// (optional, positive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// The status list.
    pub status_list: EncodedStatusList,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encoded(bits: u8, lst: &str) -> EncodedStatusList {
        EncodedStatusList {
            bits,
            lst: lst.to_owned(),
            aggregation_uri: None,
        }
    }

    /// The 1-bit example of TSL §4.1/§4.2: statuses 0,3,4,5,7,8,9,13,15 are
    /// INVALID, bytes `b9 a3`, `lst` "eNrbuRgAAhcBXQ". Independent oracle:
    /// `python3 -c 'import zlib,base64;print(base64.urlsafe_b64encode(
    /// zlib.compress(bytes([0xb9,0xa3]),9)))'` prints `eNrbuRgAAhcBXQ==`.
    #[test]
    fn tsl_4_1_one_bit_example_decodes_lsb_first() {
        let list = StatusList::decode(&encoded(1, "eNrbuRgAAhcBXQ")).unwrap();
        assert_eq!(list.as_bytes(), &[0xb9, 0xa3]);
        assert_eq!(list.len(), 16);
        let invalid = [0u64, 3, 4, 5, 7, 8, 9, 13, 15];
        for i in 0..16 {
            let want = if invalid.contains(&i) { 1 } else { 0 };
            assert_eq!(list.get(i), Some(want), "idx {i}");
        }
        assert_eq!(list.get(16), None);

        let mut built = StatusList::new(1, 16).unwrap();
        for i in invalid {
            built.set(i, STATUS_INVALID).unwrap();
        }
        assert_eq!(built.as_bytes(), &[0xb9, 0xa3]);
        assert_eq!(StatusList::decode(&built.encode()).unwrap(), built);
    }

    /// The 2-bit example of TSL §4.1: bytes `c9 44 f9`, `lst`
    /// "eNo76fITAAPfAgc" (oracle: `python3 -c 'import zlib,base64;print(
    /// zlib.decompress(base64.urlsafe_b64decode("eNo76fITAAPfAgc=")).hex())'`
    /// prints `c944f9`).
    #[test]
    fn tsl_4_1_two_bit_example() {
        let list = StatusList::decode(&encoded(2, "eNo76fITAAPfAgc")).unwrap();
        assert_eq!(list.as_bytes(), &[0xc9, 0x44, 0xf9]);
        let want = [1u8, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(list.get(i as u64), Some(*w), "idx {i}");
        }
        let mut built = StatusList::new(2, 12).unwrap();
        for (i, w) in want.iter().enumerate() {
            built.set(i as u64, *w).unwrap();
        }
        assert_eq!(built.as_bytes(), list.as_bytes());
        assert_eq!(
            built.set(0, 4),
            Err(StatusListError::ValueOutOfRange { value: 4, bits: 2 })
        );
    }

    /// Our encoder's output is read by CPython's zlib: `ENCODED_1024` is
    /// what `encode()` produced for 1024 statuses with 1, 2, 500 and 1023
    /// INVALID; `python3 -c 'import zlib,base64,sys;b=zlib.decompress(
    /// base64.urlsafe_b64decode(sys.argv[1]+"=="));print(len(b),[i for i in
    /// range(len(b)*8) if b[i//8]>>(i%8)&1])' "$ENCODED_1024"` prints
    /// `128 [1, 2, 500, 1023]`.
    #[test]
    fn tsl_4_2_encoder_output_is_standard_zlib() {
        let mut list = StatusList::new(1, 1024).unwrap();
        for i in [1, 2, 500, 1023] {
            list.set(i, STATUS_INVALID).unwrap();
        }
        let enc = list.encode();
        assert_eq!(enc.bits, 1);
        assert_eq!(enc.lst, ENCODED_1024);
        assert!(!enc.lst.contains('='));
        assert_eq!(
            serde_json::to_value(&enc).unwrap(),
            json!({"bits": 1, "lst": ENCODED_1024})
        );
    }
    const ENCODED_1024: &str = "eNqlwCEBAAAAwrArNJGJTogvGEXaAQggAJc";

    /// A small `lst` inflating past the limit is refused after reading at
    /// most the limit + 1 bytes (decompression bomb).
    #[test]
    fn tsl_decode_is_bounded_against_decompression_bombs() {
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(&vec![0u8; MAX_STATUS_LIST_BYTES + 1]).unwrap();
        let bomb = URL_SAFE_NO_PAD.encode(z.finish().unwrap());
        assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
        assert_eq!(
            StatusList::decode(&encoded(1, &bomb)),
            Err(StatusListError::TooLarge {
                max: MAX_STATUS_LIST_BYTES
            })
        );
        let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
        z.write_all(&vec![0u8; MAX_STATUS_LIST_BYTES]).unwrap();
        let at_limit = URL_SAFE_NO_PAD.encode(z.finish().unwrap());
        assert_eq!(
            StatusList::decode(&encoded(1, &at_limit)).unwrap().len(),
            MAX_STATUS_LIST_BYTES * 8
        );
        assert!(StatusList::new(1, MAX_STATUS_LIST_BYTES * 8 + 1).is_err());
        let long = "A".repeat(MAX_STATUS_LIST_BYTES * 2);
        assert!(matches!(
            StatusList::decode(&encoded(1, &long)),
            Err(StatusListError::TooLarge { .. })
        ));
    }

    /// Malformed inputs are typed errors, never panics.
    #[test]
    fn tsl_malformed_lists_are_typed_errors() {
        assert_eq!(
            StatusList::decode(&encoded(3, "eNrbuRgAAhcBXQ")),
            Err(StatusListError::InvalidBits(3))
        );
        assert_eq!(
            StatusList::decode(&encoded(1, "eNrbuRgAAhcBXQ==")),
            Err(StatusListError::Base64)
        );
        assert_eq!(
            StatusList::decode(&encoded(1, "AAAA")),
            Err(StatusListError::Zlib)
        );
        // A truncated stream.
        assert_eq!(
            StatusList::decode(&encoded(1, "eNrbuRgA")),
            Err(StatusListError::Zlib)
        );
        let mut l = StatusList::new(1, 8).unwrap();
        assert_eq!(
            l.set(8, 1),
            Err(StatusListError::IndexOutOfRange { idx: 8, size: 8 })
        );
        assert_eq!(l.get(u64::MAX), None);
        assert_eq!(StatusList::new(0, 8), Err(StatusListError::InvalidBits(0)));
    }

    /// TSL §8.3: `sub` must match the reference, `exp` must be in the
    /// future, `idx` must be in the list.
    #[test]
    fn tsl_8_3_referenced_status_checks_sub_exp_and_idx() {
        let token = StatusListTokenClaims {
            iss: None,
            sub: "https://i/s/1".into(),
            iat: 100,
            exp: Some(200),
            ttl: Some(60),
            status_list: encoded(1, "eNrbuRgAAhcBXQ"),
        };
        let at = |idx: u64| StatusListReference {
            idx,
            uri: "https://i/s/1".into(),
        };
        assert_eq!(referenced_status(&token, &at(0), 150), Ok(1));
        assert_eq!(referenced_status(&token, &at(1), 150), Ok(0));
        assert_eq!(
            referenced_status(&token, &at(16), 150),
            Err(StatusListError::IndexOutOfRange { idx: 16, size: 16 })
        );
        assert_eq!(
            referenced_status(&token, &at(0), 200),
            Err(StatusListError::Expired { exp: 200 })
        );
        let other = StatusListReference {
            idx: 0,
            uri: "https://i/s/2".into(),
        };
        assert!(matches!(
            referenced_status(&token, &other, 150),
            Err(StatusListError::SubjectMismatch { .. })
        ));
    }

    /// The JSON shapes of TSL §5.1 and §6.1.
    #[test]
    fn tsl_5_1_6_1_claim_shapes() {
        let status: StatusClaim = serde_json::from_value(json!({
            "status_list": {"idx": 0, "uri": "https://example.com/statuslists/1"}
        }))
        .unwrap();
        assert_eq!(status.status_list.idx, 0);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"status_list": {"idx": 0, "uri": "https://example.com/statuslists/1"}})
        );
        assert!(serde_json::from_value::<StatusClaim>(json!({
            "status_list": {"idx": -1, "uri": "u"}
        }))
        .is_err());
        let token = StatusListTokenClaims {
            iss: None,
            sub: "https://example.com/statuslists/1".into(),
            iat: 1686920170,
            exp: Some(2291720170),
            ttl: Some(43200),
            status_list: encoded(1, "eNrbuRgAAhcBXQ"),
        };
        assert_eq!(
            serde_json::to_value(&token).unwrap(),
            json!({
                "sub": "https://example.com/statuslists/1",
                "iat": 1686920170,
                "exp": 2291720170i64,
                "ttl": 43200,
                "status_list": {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}
            })
        );
    }
}
