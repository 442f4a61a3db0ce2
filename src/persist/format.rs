//! The snapshot file format, version 3 (versions 1 and 2 are still read). All integers
//! little-endian.
//!
//! ```text
//! header (52 bytes; version 1: the first 28, then its CRC32 at 28..32, 32 bytes in all)
//!   0..8    magic            b"PARACACH"
//!   8..12   format version   u32 = 3
//!   12..16  flags            u32, must be 0
//!   16..20  dimension        u32
//!   20..28  saved at         u64, Unix nanoseconds
//!   28..44  value type       MD5 of the value type's name (`std::any::type_name`)
//!   44..48  schema version   u32, set by the user (`CacheBuilder::snapshot_schema`)
//!   48..52  CRC32 of bytes 0..48
//! payload (payload_len bytes): records, each
//!   u32 length, then that many bytes of one bincode-2 (standard config, serde) record
//!   then, in version 3 and only where some scope has a graph, one more item of the same form:
//!   the graphs' links (bincode of a list of `SavedGraph`, src/vector/saved_graph.rs)
//! footer (24 bytes)
//!   entry count  u64
//!   payload_len  u64
//!   CRC32 of the payload  u32
//!   end magic    b"PEND"
//! ```
//!
//! A reader trusts nothing: every length is checked against the bytes actually present before it
//! is used, so a hostile file can never make the loader allocate more than the file's own size.

use crate::error::{Error, Result};

pub(crate) const MAGIC: &[u8; 8] = b"PARACACH";
pub(crate) const END_MAGIC: &[u8; 4] = b"PEND";
pub(crate) const VERSION: u32 = 3;
/// Version 2: version 3's layout without the graphs item.
const V2: u32 = 2;
pub(crate) const HEADER_LEN: usize = 52;
const V1_HEADER_LEN: usize = 32;
pub(crate) const FOOTER_LEN: usize = 24;

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) dimension: u32,
    pub(crate) saved_at_ns: u64,
    /// What the values are: `None` in a version-1 file, which did not say.
    pub(crate) value_type: Option<ValueType>,
}

/// The value type's fingerprint and the user's schema version for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueType {
    pub(crate) name_md5: [u8; 16],
    pub(crate) schema: u32,
}

impl ValueType {
    /// `V`'s fingerprint. Type names are not guaranteed stable across compiler versions: a
    /// snapshot may then be refused after an upgrade (a cold start), never loaded as garbage.
    pub(crate) fn of<V>(schema: u32) -> ValueType {
        use md5::{Digest, Md5};
        ValueType {
            name_md5: Md5::digest(std::any::type_name::<V>().as_bytes()).into(),
            schema,
        }
    }
}

pub(crate) fn encode_header(h: Header) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[16..20].copy_from_slice(&h.dimension.to_le_bytes());
    b[20..28].copy_from_slice(&h.saved_at_ns.to_le_bytes());
    if let Some(t) = h.value_type {
        b[28..44].copy_from_slice(&t.name_md5);
        b[44..48].copy_from_slice(&t.schema.to_le_bytes());
    }
    let crc = crc32fast::hash(&b[..48]);
    b[48..52].copy_from_slice(&crc.to_le_bytes());
    b
}

pub(crate) fn encode_footer(count: u64, payload_len: u64, payload_crc: u32) -> [u8; FOOTER_LEN] {
    let mut b = [0u8; FOOTER_LEN];
    b[0..8].copy_from_slice(&count.to_le_bytes());
    b[8..16].copy_from_slice(&payload_len.to_le_bytes());
    b[16..20].copy_from_slice(&payload_crc.to_le_bytes());
    b[20..24].copy_from_slice(END_MAGIC);
    b
}

fn corrupt(why: &str) -> Error {
    Error::CorruptSnapshot(why.to_string())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A checked file: its header, its records, and the graphs item if it has one.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub(crate) header: Header,
    pub(crate) records: Vec<&'a [u8]>,
    pub(crate) graphs: Option<&'a [u8]>,
}

/// Check the whole file and split its payload into record slices (and the graphs item).
pub(crate) fn decode(file: &[u8]) -> Result<Decoded<'_>> {
    if file.len() < V1_HEADER_LEN + FOOTER_LEN {
        return Err(corrupt("file shorter than header and footer"));
    }
    if &file[0..8] != MAGIC {
        return Err(corrupt("not a paracache snapshot (bad magic)"));
    }
    let version = u32_at(file, 8);
    let header_len = match version {
        1 => V1_HEADER_LEN,
        V2 | VERSION => HEADER_LEN,
        _ => {
            // Only trust the number once some header checksum vouches for it.
            let v1_ok = crc32fast::hash(&file[..28]) == u32_at(file, 28);
            let v2_ok = file.len() >= HEADER_LEN + FOOTER_LEN
                && crc32fast::hash(&file[..48]) == u32_at(file, 48);
            if v1_ok || v2_ok {
                return Err(Error::UnsupportedSnapshotVersion {
                    found: version,
                    supported: VERSION,
                });
            }
            return Err(corrupt("header checksum mismatch"));
        }
    };
    if file.len() < header_len + FOOTER_LEN {
        return Err(corrupt("file shorter than header and footer"));
    }
    let head = &file[..header_len];
    let crc_at = header_len - 4;
    if crc32fast::hash(&head[..crc_at]) != u32_at(head, crc_at) {
        return Err(corrupt("header checksum mismatch"));
    }
    if u32_at(head, 12) != 0 {
        return Err(corrupt("unknown header flags"));
    }
    let value_type = (version >= V2).then(|| {
        let mut name_md5 = [0u8; 16];
        name_md5.copy_from_slice(&head[28..44]);
        ValueType {
            name_md5,
            schema: u32_at(head, 44),
        }
    });
    let header = Header {
        dimension: u32_at(head, 16),
        saved_at_ns: u64_at(head, 20),
        value_type,
    };
    let foot = &file[file.len() - FOOTER_LEN..];
    if &foot[20..24] != END_MAGIC {
        return Err(corrupt("missing end marker (truncated file?)"));
    }
    let payload = &file[header_len..file.len() - FOOTER_LEN];
    if u64_at(foot, 8) != payload.len() as u64 {
        return Err(corrupt("payload length does not match the file size"));
    }
    if crc32fast::hash(payload) != u32_at(foot, 16) {
        return Err(corrupt("payload checksum mismatch"));
    }
    let count = u64_at(foot, 0);
    // Never trust `count` for allocation: each record needs at least its 4-byte length.
    let mut records = Vec::with_capacity((count as usize).min(payload.len() / 4));
    let mut rest = payload;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(corrupt("truncated record length"));
        }
        let len = u32_at(rest, 0) as usize;
        if len > rest.len() - 4 {
            return Err(corrupt("record longer than the payload"));
        }
        records.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    // One item beyond the counted records is the graphs item, which only version 3 has.
    let graphs = if version == VERSION && records.len() as u64 == count.saturating_add(1) {
        records.pop()
    } else {
        None
    };
    if records.len() as u64 != count {
        return Err(corrupt("record count does not match the footer"));
    }
    Ok(Decoded {
        header,
        records,
        graphs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            dimension: 3,
            saved_at_ns: 7,
            value_type: Some(ValueType::of::<String>(4)),
        }
    }

    /// A file of `items`, the first `count` of them counted as records, in format `version`.
    fn file_of(version: u32, items: &[&[u8]], count: usize) -> Vec<u8> {
        let mut payload = Vec::new();
        for r in items {
            payload.extend_from_slice(&(r.len() as u32).to_le_bytes());
            payload.extend_from_slice(r);
        }
        let mut f = encode_header(header()).to_vec();
        f[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&f[..48]);
        f[48..52].copy_from_slice(&crc.to_le_bytes());
        f.extend_from_slice(&payload);
        f.extend_from_slice(&encode_footer(
            count as u64,
            payload.len() as u64,
            crc32fast::hash(&payload),
        ));
        f
    }

    fn file(records: &[&[u8]]) -> Vec<u8> {
        file_of(VERSION, records, records.len())
    }

    #[test]
    fn round_trip() {
        let f = file(&[b"abc", b"", b"de"]);
        let d = decode(&f).unwrap();
        assert_eq!(d.header, header());
        assert_eq!(d.records, vec![&b"abc"[..], b"", b"de"]);
        assert_eq!(d.graphs, None);
        assert_ne!(ValueType::of::<String>(4), ValueType::of::<Vec<u64>>(4));
        assert_ne!(ValueType::of::<u64>(0), ValueType::of::<i64>(0));
        assert_ne!(ValueType::of::<u64>(0), ValueType::of::<u64>(1));
    }

    /// Files written by format version 1 (no value type in the header) still load.
    #[test]
    fn version_1_files_are_read() {
        let mut f = vec![0u8; V1_HEADER_LEN];
        f[0..8].copy_from_slice(MAGIC);
        f[8..12].copy_from_slice(&1u32.to_le_bytes());
        f[16..20].copy_from_slice(&3u32.to_le_bytes());
        f[20..28].copy_from_slice(&7u64.to_le_bytes());
        let crc = crc32fast::hash(&f[..28]);
        f[28..32].copy_from_slice(&crc.to_le_bytes());
        let payload = [1u8, 0, 0, 0, b'x'];
        f.extend_from_slice(&payload);
        f.extend_from_slice(&encode_footer(1, 5, crc32fast::hash(&payload)));
        let d = decode(&f).unwrap();
        assert_eq!((d.header.dimension, d.header.saved_at_ns), (3, 7));
        assert_eq!(d.header.value_type, None);
        assert_eq!(d.records, vec![&b"x"[..]]);
    }

    #[test]
    fn one_item_beyond_the_records_is_the_graphs_item_in_version_3_only() {
        let v3 = file_of(VERSION, &[b"a", b"b", b"links"], 2);
        let d = decode(&v3).unwrap();
        assert_eq!(d.records, vec![&b"a"[..], b"b"]);
        assert_eq!(d.graphs, Some(&b"links"[..]));
        // Version 2 (same layout, no graphs item) still reads, and has no such item.
        let v2 = file_of(V2, &[b"a", b"b"], 2);
        let d = decode(&v2).unwrap();
        assert_eq!((d.records.len(), d.graphs), (2, None));
        assert_eq!(d.header, header());
        for (version, items, count) in [(V2, 3, 2), (VERSION, 4, 2), (VERSION, 1, 2)] {
            let items: Vec<&[u8]> = vec![b"x"; items];
            let err = decode(&file_of(version, &items, count)).unwrap_err();
            assert_eq!(
                err,
                corrupt("record count does not match the footer"),
                "v{version}"
            );
        }
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused() {
        let f = file(&[b"hello", b"world"]);
        for len in 0..f.len() {
            assert!(decode(&f[..len]).is_err(), "truncated to {len} accepted");
        }
        for i in 0..f.len() {
            for bit in 0..8 {
                let mut g = f.clone();
                g[i] ^= 1 << bit;
                assert!(decode(&g).is_err(), "flip of byte {i} bit {bit} accepted");
            }
        }
    }

    #[test]
    fn future_version_is_named_as_such() {
        let f = file_of(VERSION + 1, &[], 0);
        assert_eq!(
            decode(&f).unwrap_err(),
            Error::UnsupportedSnapshotVersion {
                found: VERSION + 1,
                supported: VERSION
            }
        );
    }

    #[test]
    fn huge_length_fields_are_refused_without_allocating() {
        let mut f = file(&[b"x"]);
        // A record length of 4 GiB, with the checksum fixed up so only the length is wrong.
        f[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let n = f.len();
        let crc = crc32fast::hash(&f[HEADER_LEN..n - FOOTER_LEN]);
        f[n - 8..n - 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode(&f), Err(Error::CorruptSnapshot(_))));
        // A count of u64::MAX.
        let mut g = file(&[b"x"]);
        let n = g.len();
        g[n - FOOTER_LEN..n - FOOTER_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode(&g), Err(Error::CorruptSnapshot(_))));
    }
}
