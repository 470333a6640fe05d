//! Trace and span identifiers as fixed-size types, so that an id of the wrong length can never
//! travel past the ingest boundary.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a byte string or hex text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id had the wrong number of bytes.
    #[error("expected {expected} bytes, got {got}")]
    Length { expected: usize, got: usize },
    /// An all-zero id is invalid by the OTLP specification.
    #[error("id is all zeroes")]
    Zero,
    /// The text was not hexadecimal.
    #[error("not a hex id: {0}")]
    Hex(String),
}

macro_rules! fixed_id {
    ($name:ident, $len:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Number of bytes in this id.
            pub const LEN: usize = $len;

            /// Accepts exactly `LEN` bytes that are not all zero, as OTLP requires.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| IdError::Length {
                    expected: $len,
                    got: bytes.len(),
                })?;
                if arr.iter().all(|b| *b == 0) {
                    return Err(IdError::Zero);
                }
                Ok(Self(arr))
            }

            /// Like `from_bytes`, but an empty slice means "absent" (OTLP's encoding of no id).
            pub fn from_optional_bytes(bytes: &[u8]) -> Result<Option<Self>, IdError> {
                if bytes.is_empty() {
                    Ok(None)
                } else {
                    Self::from_bytes(bytes).map(Some)
                }
            }

            /// Like `from_optional_bytes`, but an all-zero id of the right length is absent
            /// too: how some SDKs say "no trace context" on a log record.
            pub fn from_context_bytes(bytes: &[u8]) -> Result<Option<Self>, IdError> {
                if bytes.len() == $len && bytes.iter().all(|b| *b == 0) {
                    Ok(None)
                } else {
                    Self::from_optional_bytes(bytes)
                }
            }

            /// Lower-case hex, the form used in URLs, JSON and the index.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let bytes = hex::decode(s.trim()).map_err(|_| IdError::Hex(s.to_string()))?;
                Self::from_bytes(&bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_id!(
    TraceId,
    16,
    "A 16-byte W3C trace id; shared by every span of one distributed request."
);
fixed_id!(SpanId, 8, "An 8-byte span id; unique within its trace.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_lengths_and_zero() {
        assert!(TraceId::from_bytes(&[1; 15]).is_err());
        assert_eq!(TraceId::from_bytes(&[0; 16]), Err(IdError::Zero));
        assert!(SpanId::from_bytes(&[1; 8]).is_ok());
        assert_eq!(SpanId::from_optional_bytes(&[]), Ok(None));
    }

    #[test]
    fn hex_round_trip() {
        let id: TraceId = "0102030405060708090a0b0c0d0e0f10".parse().unwrap();
        assert_eq!(id.to_hex(), "0102030405060708090a0b0c0d0e0f10");
        assert!("xyz".parse::<TraceId>().is_err());
    }
}
