//! What the shared tier writes to Redis: entries and stream events, as bincode.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Ceiling on what one decode may allocate, so a corrupt length field cannot ask for gigabytes.
const DECODE_LIMIT: usize = 256 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config()).ok()
}

/// Decodes `bytes` only if they hold exactly one `T`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config()).ok()?;
    (used == bytes.len()).then_some(value)
}

/// One cached prompt as stored in Redis and carried by its put event.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct WireEntry {
    /// The scope's full encoding ([`crate::Scope::encoding`]).
    pub(crate) scope: Vec<u8>,
    /// The normalized prompt.
    pub(crate) prompt: String,
    pub(crate) vector: Vec<f32>,
    /// The value, bincode-encoded.
    pub(crate) value: Vec<u8>,
    /// Wall-clock creation time in microseconds since the Unix epoch: replicas age the entry from
    /// it, so it expires everywhere when its Redis key does.
    pub(crate) created_us: u64,
}

/// The payload of a `del` event.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct WireRemoval {
    pub(crate) scope: Vec<u8>,
    pub(crate) prompt: String,
}

/// A Redis stream id: milliseconds and a sequence number, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct StreamId(pub(crate) u64, pub(crate) u64);

impl StreamId {
    /// Above every real id: marks an operation whose id is not known yet.
    pub(crate) const PENDING: StreamId = StreamId(u64::MAX, u64::MAX);

    pub(crate) fn parse(s: &[u8]) -> Option<StreamId> {
        let s = std::str::from_utf8(s).ok()?;
        let (ms, seq) = s.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Wall-clock microseconds since the Unix epoch.
pub(crate) fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros().min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_trailing_or_truncated_bytes_are_refused() {
        let e = WireEntry {
            scope: vec![1, 2],
            prompt: "q".into(),
            vector: vec![0.5, -0.5],
            value: vec![9],
            created_us: 42,
        };
        let bytes = encode(&e).unwrap();
        assert_eq!(decode::<WireEntry>(&bytes), Some(e));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode::<WireEntry>(&longer), None);
        assert_eq!(decode::<WireEntry>(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn stream_ids_parse_and_order_as_redis_does() {
        let a = StreamId::parse(b"1700000000000-2").unwrap();
        let b = StreamId::parse(b"1700000000001-0").unwrap();
        assert!(a < b && b < StreamId::PENDING);
        assert_eq!(a.to_string(), "1700000000000-2");
        for bad in [&b"x"[..], b"1-", b"-1", b"1-2-3", b"\xff"] {
            assert_eq!(StreamId::parse(bad), None);
        }
    }
}
