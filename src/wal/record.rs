//! The framing of one WAL record: `len: u32 LE | crc32: u32 LE | signal: u8 | payload`.
//!
//! The checksum covers the signal byte and the payload, so a torn write (a crash in the middle
//! of a record) or a flipped bit is detected on replay instead of being decoded as data.

use crate::model::Signal;

/// Bytes before the payload: length, checksum, signal.
pub const HEADER_LEN: usize = 4 + 4 + 1;

/// Largest payload a record may hold; anything bigger in a header is treated as corruption.
pub const MAX_PAYLOAD: usize = 1 << 30;

/// The header that frames `payload`: written beside the payload (a vectored write), so the
/// payload is never copied into a second buffer.
pub fn header(signal: Signal, payload: &[u8]) -> [u8; HEADER_LEN] {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[signal as u8]);
    hasher.update(payload);
    let mut header = [0u8; HEADER_LEN];
    // Payloads are bounded by the request size limit, far below 4 GiB.
    header[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..8].copy_from_slice(&hasher.finalize().to_le_bytes());
    header[8] = signal as u8;
    header
}

/// Appends one framed record to `out`.
#[cfg(test)]
pub fn encode(signal: Signal, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&header(signal, payload));
    out.extend_from_slice(payload);
}

/// What reading one record from the front of a buffer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, intact record and the number of bytes it took.
    Record {
        signal: Signal,
        payload: &'a [u8],
        len: usize,
    },
    /// The buffer is empty: a clean end.
    End,
    /// The bytes do not form a valid record: a torn or corrupt tail.
    Corrupt(&'static str),
}

/// Reads the record at the front of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<'_> {
    if buf.is_empty() {
        return Decoded::End;
    }
    if buf.len() < HEADER_LEN {
        return Decoded::Corrupt("truncated record header");
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len > MAX_PAYLOAD {
        return Decoded::Corrupt("record length out of range");
    }
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Decoded::Corrupt("truncated record payload");
    };
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&buf[8..9]);
    hasher.update(body);
    if hasher.finalize() != crc {
        return Decoded::Corrupt("checksum mismatch");
    }
    match Signal::from_u8(buf[8]) {
        Some(signal) => Decoded::Record {
            signal,
            payload: body,
            len: HEADER_LEN + len,
        },
        None => Decoded::Corrupt("unknown signal byte"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_torn_tail() {
        let mut buf = Vec::new();
        encode(Signal::Logs, b"hello", &mut buf);
        encode(Signal::Traces, b"world!", &mut buf);
        let Decoded::Record {
            signal,
            payload,
            len,
        } = decode(&buf)
        else {
            panic!("first record should decode")
        };
        assert_eq!((signal, payload), (Signal::Logs, &b"hello"[..]));
        assert!(matches!(
            decode(&buf[len..]),
            Decoded::Record {
                signal: Signal::Traces,
                ..
            }
        ));
        // Every proper prefix of the second record is detected as corrupt, never as data.
        for cut in len + 1..buf.len() {
            assert!(
                matches!(decode(&buf[len..cut]), Decoded::Corrupt(_)),
                "cut at {cut}"
            );
        }
        let mut flipped = buf.clone();
        flipped[HEADER_LEN + 1] ^= 0x40;
        assert_eq!(decode(&flipped), Decoded::Corrupt("checksum mismatch"));
    }
}
