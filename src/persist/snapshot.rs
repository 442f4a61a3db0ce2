//! Writing and reading snapshots.

use super::format::{self, Header, ValueType};
use crate::builder::CacheBuilder;
use crate::cache::{Cache, Inner};
use crate::clock::nanos;
use crate::error::{Error, Result};
use crate::key::{exact_key, normalize};
use crate::liveness::Liveness;
use crate::scope::Scope;
use crate::vector::half::widen;
use crate::vector::saved_graph::SavedGraph;
use crate::vector::validate::unit_vector;
use bincode::error::DecodeError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

/// What a save or a load did.
///
/// ```
/// let r = paracache::SnapshotReport::default();
/// assert_eq!((r.entries, r.expired, r.refused, r.bytes), (0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotReport {
    /// Entries written (save) or loaded (load).
    pub entries: u64,
    /// Entries left out because their TTL or TTI had passed.
    pub expired: u64,
    /// Entries the loading configuration refused (prompt or value over its limits).
    pub refused: u64,
    /// Records that repeated an earlier record's scope and prompt (load only; the later one
    /// replaced the earlier, and `entries` counts the entry once).
    pub duplicates: u64,
    /// Size of the snapshot in bytes.
    pub bytes: u64,
}

#[derive(Serialize)]
struct RecordRef<'a, V> {
    scope: &'a [u8],
    prompt: &'a str,
    vector: &'a [f32],
    created_ns: u64,
    last_access_ns: u64,
    value: &'a V,
}

#[derive(Deserialize)]
struct Record<V> {
    scope: Vec<u8>,
    prompt: String,
    vector: Vec<f32>,
    created_ns: u64,
    last_access_ns: u64,
    value: V,
}

fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Stream every live entry into `w` in the snapshot format.
pub(crate) fn write_snapshot<V: Serialize + Send + Sync + 'static, W: Write>(
    inner: &Inner<V>,
    mut w: W,
) -> Result<SnapshotReport> {
    let now = nanos(inner.config.clock.now());
    let dimension = u32::try_from(inner.config.dimension)
        .map_err(|_| Error::InvalidConfig("dimension".into()))?;
    w.write_all(&format::encode_header(Header {
        dimension,
        saved_at_ns: now,
        value_type: Some(ValueType::of::<V>(inner.config.snapshot_schema)),
    }))?;
    let mut crc = crc32fast::Hasher::new();
    let (mut count, mut payload_len) = (0u64, 0u64);
    for e in inner.entries.all() {
        if inner.liveness(&e, now) != Liveness::Live {
            continue;
        }
        // Records keep f32 vectors, so files read alike whatever precision a cache stores at.
        let vector = widen(&e.vector);
        let rec = RecordRef {
            scope: e.scope.encoding(),
            prompt: &e.prompt,
            vector: &vector,
            created_ns: e.created_ns,
            last_access_ns: e.last_access_ns.load(std::sync::atomic::Ordering::Relaxed),
            value: &e.value,
        };
        payload_len += write_item(&mut w, &mut crc, &rec, "entry")?;
        count += 1;
    }
    // The graphs' links, so a restart links vectors instead of rebuilding their graphs. Only
    // the scopes of records written above can use them; a node whose entry died since is
    // left out on load.
    let graphs: Vec<SavedGraph> = inner
        .partitions
        .all()
        .iter()
        .filter_map(|(scope, p)| p.save_graph(scope.encoding()))
        .collect();
    if !graphs.is_empty() {
        payload_len += write_item(&mut w, &mut crc, &graphs, "graph links")?;
    }
    w.write_all(&format::encode_footer(count, payload_len, crc.finalize()))?;
    w.flush()?;
    let bytes = (format::HEADER_LEN + format::FOOTER_LEN) as u64 + payload_len;
    Ok(SnapshotReport {
        entries: count,
        bytes,
        ..SnapshotReport::default()
    })
}

/// Write to a temporary file beside `path`, fsync it, rename it over `path`, fsync the directory:
/// a crash at any point leaves either the previous snapshot or the new one, never a torn file.
/// Write `item` as one payload item (its `u32` length, then its bincode) into `w` and `crc`;
/// the bytes written. `what` names it in the error for an item over 4 GiB.
fn write_item<W: Write>(
    w: &mut W,
    crc: &mut crc32fast::Hasher,
    item: &impl Serialize,
    what: &str,
) -> Result<u64> {
    let bytes =
        bincode::serde::encode_to_vec(item, bincode_config()).map_err(std::io::Error::other)?;
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other(format!("{what} over 4 GiB")))?;
    for chunk in [&len.to_le_bytes()[..], &bytes] {
        w.write_all(chunk)?;
        crc.update(chunk);
    }
    Ok(4 + bytes.len() as u64)
}

pub(crate) fn save_inner<V: Serialize + Send + Sync + 'static>(
    inner: &Inner<V>,
    path: &Path,
) -> Result<SnapshotReport> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::from(std::io::Error::other("snapshot path has no file name")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:?}-{}",
        name.to_string_lossy(),
        std::process::id(),
        std::thread::current().id(),
        nanos(inner.config.clock.now())
    ));
    // Removes the temporary file on every way out but success, a panic in a value's
    // `Serialize` included.
    struct TmpFile<'p> {
        path: &'p Path,
        keep: bool,
    }
    impl Drop for TmpFile<'_> {
        fn drop(&mut self) {
            if !self.keep {
                let _ = fs::remove_file(self.path);
            }
        }
    }
    let mut guard = TmpFile {
        path: &tmp,
        keep: false,
    };
    let mut w = BufWriter::new(File::create(&tmp)?);
    let report = write_snapshot(inner, &mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    guard.keep = true;
    File::open(dir)?.sync_all()?;
    Ok(report)
}

impl<V: DeserializeOwned + Send + Sync + 'static> CacheBuilder<V> {
    /// Build a cache with this configuration and fill it from the snapshot at `path`.
    ///
    /// The whole file is verified (magic, version, checksums, every length and every record)
    /// before anything is inserted: a bad file is an error and nothing else. Graphs for large
    /// scopes are built afterwards in the background (unless `background_rebuild(false)`), so the
    /// cache answers at once, by exact scan, while they build; call [`Cache::compact`] to wait. Entries whose TTL or
    /// TTI passed (by this configuration's clock and durations) are left out; entries this
    /// configuration refuses (prompt or value over its limits) are skipped and counted.
    ///
    /// ```
    /// use paracache::{Cache, Error};
    /// let err = Cache::<u8>::builder(2).build_from_snapshot("/nonexistent/x.snapshot").unwrap_err();
    /// assert!(matches!(err, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    /// ```
    pub fn build_from_snapshot(self, path: impl AsRef<Path>) -> Result<(Cache<V>, SnapshotReport)> {
        let bytes = fs::read(path)?;
        self.build_from_snapshot_bytes(&bytes)
    }

    /// [`build_from_snapshot`](Self::build_from_snapshot) from bytes already in memory.
    ///
    /// ```
    /// use paracache::{Cache, Error};
    /// let err = Cache::<u8>::builder(2).build_from_snapshot_bytes(b"definitely not a snapshot").unwrap_err();
    /// assert!(matches!(err, Error::CorruptSnapshot(_)));
    /// ```
    pub fn build_from_snapshot_bytes(self, bytes: &[u8]) -> Result<(Cache<V>, SnapshotReport)> {
        // Verify everything before a cache exists: a cache built and then dropped on failure would
        // otherwise run its snapshot-on-drop over the very file that failed to load.
        let format::Decoded {
            header,
            records: raw,
            graphs,
        } = format::decode(bytes)?;
        if let Some(found) = header.value_type {
            let expected = ValueType::of::<V>(self.snapshot_schema);
            if found.name_md5 != expected.name_md5 {
                return Err(Error::SnapshotValueType(format!(
                    "the snapshot holds values of another type than {}",
                    std::any::type_name::<V>()
                )));
            }
            if found.schema != expected.schema {
                return Err(Error::SnapshotValueType(format!(
                    "the snapshot's schema version is {}, this cache's is {}",
                    found.schema, expected.schema
                )));
            }
        }
        let dimension = self.dimension;
        if header.dimension as usize != dimension {
            return Err(Error::DimensionMismatch {
                expected: dimension,
                got: header.dimension as usize,
            });
        }
        let records = raw
            .into_iter()
            .map(|r| decode_record::<V>(r, dimension))
            .collect::<Result<Vec<_>>>()?;
        let graphs = graphs.map(decode_graphs).transpose()?.unwrap_or_default();
        let cache = self.build()?;
        let mut report = SnapshotReport {
            bytes: bytes.len() as u64,
            ..SnapshotReport::default()
        };
        let now = cache.now();
        let cfg = &cache.inner.config;
        let mut seen = std::collections::HashSet::new();
        for (rec, vector) in records {
            // A time in the future (a clock set back, or a crafted file) would never expire:
            // nothing loaded is younger than now.
            let (created_ns, last_access_ns) =
                (rec.created_ns.min(now), rec.last_access_ns.min(now));
            if cfg.is_expired(created_ns, last_access_ns, now) {
                report.expired += 1;
                continue;
            }
            if rec.prompt.len() > cfg.max_prompt_bytes {
                report.refused += 1;
                continue;
            }
            let scope = Scope::from_encoding(rec.scope);
            let key = exact_key(&scope, &rec.prompt);
            let times = (created_ns, last_access_ns);
            match cache.insert_entry(
                &scope,
                rec.prompt.into(),
                key,
                vector,
                rec.value,
                times,
                false,
            ) {
                // A repeated record replaces the one before it: count each entry once.
                Ok(_) if seen.insert(key) => report.entries += 1,
                Ok(_) => report.duplicates += 1,
                Err(Error::ValueTooLarge { .. }) => report.refused += 1,
                Err(e) => return Err(e),
            }
        }
        // One graph build per large scope instead of one graph insert per entry, from the saved
        // links where the scope has them (milliseconds instead of minutes). With background
        // rebuilds (the default) this returns at once and those scopes answer by exact scan until
        // their graph is swapped in; `Cache::compact` waits for it.
        let inner = &cache.inner;
        for g in graphs {
            if let Some(p) = inner.partitions.get(&Scope::from_encoding(g.scope.clone())) {
                p.seed(g);
            }
        }
        inner
            .partitions
            .maintain_all(&inner.config.index, &inner.counters);
        Ok((cache, report))
    }
}

/// Decode and check one record; anything a valid save could not have written is corruption.
fn decode_record<V: DeserializeOwned>(
    bytes: &[u8],
    dimension: usize,
) -> Result<(Record<V>, Arc<[f32]>)> {
    let bad = |why: &str| Error::CorruptSnapshot(why.to_string());
    let (rec, read) =
        decode_bounded::<Record<V>>(bytes).map_err(|e| bad(&format!("record: {e}")))?;
    if read != bytes.len() {
        return Err(bad("trailing bytes after a record"));
    }
    if rec.prompt.is_empty() || normalize(&rec.prompt) != rec.prompt.as_str() {
        return Err(bad("record prompt is empty or not normalized"));
    }
    let vector =
        unit_vector(&rec.vector, dimension).map_err(|e| bad(&format!("record vector: {e}")))?;
    Ok((rec, vector))
}

/// Decode and check the graphs item; links a save could not have written are corruption.
fn decode_graphs(bytes: &[u8]) -> Result<Vec<SavedGraph>> {
    let bad = |why: &str| Error::CorruptSnapshot(why.to_string());
    let (graphs, read) =
        decode_bounded::<Vec<SavedGraph>>(bytes).map_err(|e| bad(&format!("graph links: {e}")))?;
    if read != bytes.len() {
        return Err(bad("trailing bytes after the graph links"));
    }
    for g in &graphs {
        g.check().map_err(bad)?;
    }
    Ok(graphs)
}

/// Decode one item with bincode's allocation limit set to a small multiple of the item's own
/// size. Without a limit, bincode allocates a string or byte vector of whatever length a hostile
/// record claims before reading it. The limit is a compile-time constant, hence the buckets; 16×
/// leaves room for in-memory sizes larger than their encoding (a varint u64 claims 8 bytes).
fn decode_bounded<T: DeserializeOwned>(
    bytes: &[u8],
) -> std::result::Result<(T, usize), DecodeError> {
    fn with<T: DeserializeOwned, const LIMIT: usize>(
        b: &[u8],
    ) -> std::result::Result<(T, usize), DecodeError> {
        bincode::serde::decode_from_slice(b, bincode_config().with_limit::<LIMIT>())
    }
    match bytes.len().saturating_mul(16) {
        n if n <= 1 << 16 => with::<T, { 1 << 16 }>(bytes),
        n if n <= 1 << 20 => with::<T, { 1 << 20 }>(bytes),
        n if n <= 1 << 24 => with::<T, { 1 << 24 }>(bytes),
        n if n <= 1 << 28 => with::<T, { 1 << 28 }>(bytes),
        n if n <= 1 << 32 => with::<T, { 1 << 32 }>(bytes),
        _ => with::<T, { 1 << 36 }>(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::saved_graph::SavedNode;

    /// A one-record snapshot of a flat cache with `item` appended as its graphs item.
    fn with_graphs_item(item: &[u8]) -> Vec<u8> {
        let c: Cache<u8> = Cache::builder(2).build().unwrap();
        c.insert(&Scope::global(), "q", vec![1.0, 0.0], 1).unwrap();
        let f = c.to_snapshot_bytes().unwrap();
        let payload = &f[format::HEADER_LEN..f.len() - format::FOOTER_LEN];
        let mut payload = payload.to_vec();
        payload.extend_from_slice(&(item.len() as u32).to_le_bytes());
        payload.extend_from_slice(item);
        let mut out = f[..format::HEADER_LEN].to_vec();
        out.extend_from_slice(&payload);
        out.extend_from_slice(&format::encode_footer(
            1,
            payload.len() as u64,
            crc32fast::hash(&payload),
        ));
        out
    }

    fn graphs(entry: u32, scope: &Scope) -> Vec<u8> {
        let g = SavedGraph {
            scope: scope.encoding().to_vec(),
            m: 4,
            entry,
            nodes: vec![SavedNode {
                key: Some([7; 16]),
                layers: vec![vec![]],
            }],
        };
        bincode::serde::encode_to_vec(vec![g], bincode_config()).unwrap()
    }

    #[test]
    fn graph_links_a_save_cannot_write_are_corrupt() {
        for (item, why) in [
            (graphs(5, &Scope::global()), "entry out of range"),
            (b"\xff\xff\xff\xff\xff".to_vec(), "graph links"),
        ] {
            let err = Cache::<u8>::builder(2)
                .build_from_snapshot_bytes(&with_graphs_item(&item))
                .unwrap_err();
            assert!(
                matches!(&err, Error::CorruptSnapshot(m) if m.contains(why)),
                "{why}: {err:?}"
            );
        }
    }

    #[test]
    fn well_formed_links_that_fit_nothing_are_ignored() {
        // Links for a scope with no entries, and for one too small for a graph.
        for scope in [Scope::builder().tenant("nobody").build(), Scope::global()] {
            let (c, report) = Cache::<u8>::builder(2)
                .build_from_snapshot_bytes(&with_graphs_item(&graphs(0, &scope)))
                .unwrap();
            assert_eq!(report.entries, 1);
            c.compact();
            assert_eq!(c.stats().graphs_restored, 0);
            let hit = c.lookup(&Scope::global(), "q", |_| Ok::<_, Error>(vec![1.0, 0.0]));
            assert_eq!(hit.unwrap().hit().map(|h| *h.value()), Some(1));
        }
    }
}
