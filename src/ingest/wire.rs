//! Protobuf fields read in place: the (tag, value) pairs of one message, each string and
//! nested message a slice of the request's own bytes.
//!
//! The trace and log receivers walk OTLP requests with this instead of decoding them into
//! prost's owned messages first: that tree (two allocations per attribute, dropped right after
//! the columns were built) cost more than building the columns. The wire primitives — keys,
//! varints, skipping groups — are prost's; only the walk over OTLP's messages is ours
//! ([`super::view`]).

use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

/// Why a request's bytes are not a valid message of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OTLP protobuf: {0}")]
pub struct WireError(pub String);

impl WireError {
    /// An error naming the message and field it was found in.
    pub fn at(message: &str, field: &str, problem: impl std::fmt::Display) -> Self {
        WireError(format!("{message}.{field}: {problem}"))
    }
}

impl From<prost::DecodeError> for WireError {
    fn from(e: prost::DecodeError) -> Self {
        WireError(e.to_string())
    }
}

/// One field's value, as its wire type carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// Strings, bytes, nested messages and packed repeated fields.
    Bytes(&'a [u8]),
}

/// What a field of one message is expected to hold, for error messages.
pub struct Field<'m> {
    pub message: &'m str,
    pub name: &'m str,
}

impl<'a> Value<'a> {
    fn wrong(self, field: &Field<'_>, expected: &str) -> WireError {
        WireError::at(
            field.message,
            field.name,
            format!(
                "invalid wire type: expected {expected}, got {}",
                self.kind()
            ),
        )
    }

    fn kind(self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "64-bit",
            Value::Fixed32(_) => "32-bit",
            Value::Bytes(_) => "length-delimited",
        }
    }

    /// A `bytes` field or a nested message.
    pub fn bytes(self, field: &Field<'_>) -> Result<&'a [u8], WireError> {
        match self {
            Value::Bytes(b) => Ok(b),
            other => Err(other.wrong(field, "length-delimited")),
        }
    }

    /// A `string` field: UTF-8, as protobuf requires.
    pub fn str(self, field: &Field<'_>) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes(field)?).map_err(|_| {
            WireError::at(
                field.message,
                field.name,
                "invalid string value: data is not UTF-8 encoded",
            )
        })
    }

    /// An integer, bool or enum field.
    pub fn varint(self, field: &Field<'_>) -> Result<u64, WireError> {
        match self {
            Value::Varint(v) => Ok(v),
            other => Err(other.wrong(field, "varint")),
        }
    }

    /// A `fixed64` or `double` field.
    pub fn fixed64(self, field: &Field<'_>) -> Result<u64, WireError> {
        match self {
            Value::Fixed64(v) => Ok(v),
            other => Err(other.wrong(field, "64-bit")),
        }
    }

    /// A `fixed32` field.
    pub fn fixed32(self, field: &Field<'_>) -> Result<u32, WireError> {
        match self {
            Value::Fixed32(v) => Ok(v),
            other => Err(other.wrong(field, "32-bit")),
        }
    }
}

/// The fields of one message in wire order. Groups (a proto2 feature OTLP never uses) are
/// skipped as prost skips them.
pub struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The fields of the message encoded in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError(
                "buffer underflow: a field runs past its message".into(),
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn read(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        while !self.buf.is_empty() {
            let (tag, wire_type) = decode_key(&mut self.buf)?;
            let value = match wire_type {
                WireType::Varint => Value::Varint(decode_varint(&mut self.buf)?),
                WireType::SixtyFourBit => {
                    let b = self.take(8)?;
                    Value::Fixed64(u64::from_le_bytes([
                        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                    ]))
                }
                WireType::ThirtyTwoBit => {
                    let b = self.take(4)?;
                    Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                }
                WireType::LengthDelimited => {
                    let len = decode_varint(&mut self.buf)?;
                    let len = usize::try_from(len).map_err(|_| {
                        WireError("buffer underflow: a length is out of range".into())
                    })?;
                    Value::Bytes(self.take(len)?)
                }
                WireType::StartGroup | WireType::EndGroup => {
                    skip_field(wire_type, tag, &mut self.buf, DecodeContext::default())?;
                    continue;
                }
            };
            return Ok(Some((tag, value)));
        }
        Ok(None)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.read() {
            Ok(Some(field)) => Some(Ok(field)),
            Ok(None) => None,
            Err(e) => {
                // Nothing after a malformed field can be trusted.
                self.buf = &[];
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use prost::Message;

    #[test]
    fn reads_each_wire_type_and_refuses_truncation() {
        let kv = KeyValue {
            key: "k".into(),
            ..Default::default()
        };
        let bytes = kv.encode_to_vec();
        let fields: Vec<_> = Fields::new(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(fields, vec![(1, Value::Bytes(b"k"))]);
        let truncated = &bytes[..bytes.len() - 1];
        assert!(Fields::new(truncated).any(|f| f.is_err()));
        // fixed64 7 = 1, fixed32 8 = 2, varint 9 = 300
        let mut raw = vec![7 << 3 | 1];
        raw.extend(1u64.to_le_bytes());
        raw.push(8 << 3 | 5);
        raw.extend(2u32.to_le_bytes());
        raw.extend([9 << 3, 0xac, 0x02]);
        let fields: Vec<_> = Fields::new(&raw).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            fields,
            vec![
                (7, Value::Fixed64(1)),
                (8, Value::Fixed32(2)),
                (9, Value::Varint(300))
            ]
        );
        let field = Field {
            message: "Span",
            name: "name",
        };
        let err = Value::Varint(1).str(&field).unwrap_err();
        assert!(err.to_string().contains("Span.name"), "{err}");
        assert!(Value::Bytes(&[0xff]).str(&field).is_err());
    }
}
