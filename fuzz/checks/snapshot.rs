//! The snapshot loader on arbitrary bytes: an error or a working cache, never a panic; and what
//! loads saves and loads again. Shared by the cargo-fuzz target and `tests/it/fuzz_corpus.rs`.

use paracache::{Cache, CacheBuilder};

pub(crate) const DIM: usize = 4;

pub(crate) fn builder() -> CacheBuilder<String> {
    Cache::builder(DIM)
        .max_entries(1_000)
        .background_rebuild(false)
}

pub(crate) fn check(data: &[u8]) {
    loads_or_refuses(data);
    // Checksums stop almost every mutation at the frame; also frame the bytes correctly as one
    // record, and as the graphs item, so both decoders themselves meet arbitrary input.
    loads_or_refuses(&framed_as_one_record(data));
    loads_or_refuses(&framed_as_graphs_item(data));
}

/// A snapshot file of the current format with no record and `item` as its graphs item (the
/// saved graph links), with valid checksums.
pub(crate) fn framed_as_graphs_item(item: &[u8]) -> Vec<u8> {
    let empty = builder()
        .build()
        .and_then(|c| c.to_snapshot_bytes())
        .expect("an empty cache saves");
    // An empty cache's file is its header, then the 24-byte footer.
    let mut f = empty[..empty.len() - 24].to_vec();
    end_with_one_item(&mut f, item, 0);
    f
}

/// Append `item` as the payload's one length-prefixed item, then a footer counting `records`
/// records, with the payload's checksum.
fn end_with_one_item(f: &mut Vec<u8>, item: &[u8], records: u64) {
    let start = f.len();
    f.extend_from_slice(&(item.len() as u32).to_le_bytes());
    f.extend_from_slice(item);
    let crc = crc32(&f[start..]);
    let payload_len = (f.len() - start) as u64;
    f.extend_from_slice(&records.to_le_bytes());
    f.extend_from_slice(&payload_len.to_le_bytes());
    f.extend_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(b"PEND");
}

fn loads_or_refuses(data: &[u8]) {
    let Ok((cache, report)) = builder().build_from_snapshot_bytes(data) else {
        return;
    };
    // Every record costs at least a few bytes: a loader that "finds" more is inventing entries.
    assert!(report.entries + report.expired + report.refused <= data.len() as u64 / 4);
    let again = cache.to_snapshot_bytes().expect("a loaded cache saves");
    let (_, second) = builder()
        .build_from_snapshot_bytes(&again)
        .expect("a saved cache loads");
    assert!(second.entries <= report.entries);
}

/// A snapshot file (format v1) whose single record is `record`, with valid checksums.
pub(crate) fn framed_as_one_record(record: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(record.len() + 60);
    f.extend_from_slice(b"PARACACH");
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&(DIM as u32).to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes());
    let crc = crc32(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    end_with_one_item(&mut f, record, 1);
    f
}

/// Bitwise CRC-32 (IEEE), independent of the library's implementation.
pub(crate) fn crc32(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}
