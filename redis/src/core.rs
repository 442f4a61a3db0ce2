//! The shared tier's state and the two ways entries move: this replica's changes written to
//! Redis, and other replicas' changes (fetched entries, stream events) applied locally.

use super::layout::Layout;
use super::link::Link;
use super::marks::Marks;
use super::options::RedisOptions;
use super::scripts::Scripts;
use super::stats::{SharedCounters, bump};
use super::wire::{self, StreamId, WireEntry, WireRemoval, wall_us};
use crate::{Key, exact_key};
use paracache::{Cache, Capacity, ExactProbe, Hit, Scope, SecondTier, normalize};
use parking_lot::Mutex;
use redis::{Connection, RedisResult};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Removals remembered to re-assert after a rewind; the oldest go first beyond this.
const MAX_KNOWN: usize = 100_000;

/// A removal: this replica's (kept until Redis has it) or another's.
#[derive(Clone)]
pub(crate) enum Removal {
    Key {
        scope: Scope,
        prompt: Box<str>,
        key: Key,
    },
    Scope(Scope),
}

impl Removal {
    pub(crate) fn scope(&self) -> &Scope {
        match self {
            Removal::Key { scope, .. } | Removal::Scope(scope) => scope,
        }
    }
}

/// A removal Redis has had, with its bucket's generation: if the server comes back with an older
/// generation it may have lost it, and this replica writes it again.
struct Known {
    bucket: u16,
    generation: u64,
    at: Instant,
    removal: Removal,
}

/// What became of an entry from Redis.
pub(crate) enum Applied<V> {
    Inserted(Hit<V>),
    /// A newer removal (or own put) of its key or scope has decided already.
    Superseded,
    /// Its TTL has passed.
    Expired,
    /// It failed a check.
    Rejected,
}

pub(crate) struct Core<V> {
    pub(crate) cache: Cache<V>,
    pub(crate) options: RedisOptions,
    pub(crate) layout: Layout,
    pub(crate) link: Link,
    scripts: Scripts,
    marks: Marks,
    pub(crate) counters: SharedCounters,
    pending: Mutex<VecDeque<Removal>>,
    /// Removals made or applied here within the TTL, oldest first.
    known: Mutex<VecDeque<Known>>,
    /// Per bucket, the newest event (stream id, generation) this replica has seen Redis hold:
    /// a server that no longer has it went back in time.
    seen: Mutex<Vec<Option<(StreamId, u64)>>>,
    /// Tells this replica's events from the others' in the streams.
    pub(crate) origin: String,
    ttl: Duration,
    pub(crate) stop: AtomicBool,
    pub(crate) connected: AtomicBool,
    /// Whether a local miss may take an entry from Redis: only while the follower is connected
    /// and has checked the server, and not during the grace after it restarted from persisted
    /// data.
    pub(crate) trusted: AtomicBool,
}

/// An id for this replica, unique enough among the replicas of one deployment.
fn new_origin() -> String {
    use md5::{Digest, Md5};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = Md5::new();
    h.update(std::process::id().to_le_bytes());
    h.update(wall_us().to_le_bytes());
    h.update(NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(format!("{:?}", std::thread::current().id()).as_bytes());
    let d: [u8; 16] = h.finalize().into();
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl<V> Core<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(crate) fn new(cache: Cache<V>, options: RedisOptions, link: Link, ttl: Duration) -> Self {
        // A mark per recently changed key; a few times the entry count covers every entry
        // changing within one TTL more than once.
        let marks_capacity = match cache.capacity() {
            Capacity::Entries(n) => n.saturating_mul(4),
            Capacity::Bytes(b) => b / 64,
            // A kind of capacity this crate does not know yet: the upper bound below.
            _ => u64::MAX,
        }
        .clamp(100_000, 10_000_000);
        Core {
            layout: Layout::new(&options.namespace, options.buckets),
            marks: Marks::new(marks_capacity, ttl),
            scripts: Scripts::new(),
            counters: SharedCounters::default(),
            pending: Mutex::new(VecDeque::new()),
            known: Mutex::new(VecDeque::new()),
            seen: Mutex::new(vec![None; options.buckets as usize]),
            origin: new_origin(),
            stop: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            trusted: AtomicBool::new(false),
            cache,
            options,
            link,
            ttl,
        }
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.pending.lock().len()
    }

    /// What is left of the TTL of an entry created at `created_us`, in whole milliseconds.
    fn ttl_left_ms(&self, created_us: u64) -> Option<u64> {
        let age = Duration::from_micros(wall_us().saturating_sub(created_us));
        let left = self.ttl.checked_sub(age)?.as_millis() as u64;
        (left > 0).then_some(left)
    }

    // ----- this replica's changes, written to Redis -----

    /// Share an entry just inserted locally. A failure leaves it local-only.
    pub(crate) fn publish_put(&self, hit: &Hit<V>) {
        let created_us = wall_us();
        let entry = wire::encode(hit.value()).and_then(|value| {
            wire::encode(&WireEntry {
                scope: hit.scope().encoding().to_vec(),
                prompt: hit.matched_prompt().to_string(),
                vector: hit.embedding().to_vec(),
                value,
                created_us,
            })
        });
        let (Some(bytes), Some(ttl_ms)) = (entry, self.ttl_left_ms(created_us)) else {
            bump(&self.counters.unshared_inserts);
            return;
        };
        let scope = hit.scope();
        let key = exact_key(scope, hit.matched_prompt());
        let b = self.layout.bucket(scope);
        let put = |c: &mut Connection| {
            self.scripts
                .put
                .key(self.layout.entry(b, &key))
                .key(self.layout.stream(b))
                .key(self.layout.counter(b))
                .key(self.layout.scope_set(b, scope))
                .arg(bytes.as_slice())
                .arg(self.origin.as_str())
                .arg(created_us)
                .arg(ttl_ms)
                .arg(self.options.stream_max_len)
                .invoke::<(String, u64)>(c)
        };
        match self.link.run(put) {
            Some((id, generation)) => {
                bump(&self.counters.published);
                if let Some(id) = StreamId::parse(id.as_bytes()) {
                    self.saw(b, id, generation);
                    let _stripe = self.marks.lock(&key);
                    self.marks.mark_key(key, id);
                }
            }
            None => {
                bump(&self.counters.redis_errors);
                bump(&self.counters.unshared_inserts);
            }
        }
    }

    /// Remove locally at once, then tell Redis (now, or once it is back).
    pub(crate) fn remove(&self, removal: Removal) -> bool {
        let removed = match &removal {
            Removal::Key { scope, prompt, key } => {
                let _stripe = self.marks.lock(key);
                self.marks.set_key(*key, StreamId::PENDING);
                self.cache.invalidate(scope, prompt)
            }
            Removal::Scope(scope) => {
                let _purge = self.marks.purge.write();
                self.marks.set_scope(scope, StreamId::PENDING);
                self.cache.invalidate_scope(scope);
                true
            }
        };
        match self.link.run(|c| self.write_removal(c, &removal)) {
            Some((id, _)) => self.settle(&removal, id),
            None => {
                bump(&self.counters.redis_errors);
                self.queue(removal);
            }
        }
        removed
    }

    /// Write a removal to Redis, remember it, and return its stream id and generation.
    fn write_removal(
        &self,
        conn: &mut Connection,
        removal: &Removal,
    ) -> RedisResult<(StreamId, u64)> {
        let now = wall_us();
        let max_len = self.options.stream_max_len;
        let b = self.layout.bucket(removal.scope());
        let (id, generation): (String, u64) = match removal {
            Removal::Key { scope, prompt, key } => {
                let payload = wire::encode(&WireRemoval {
                    scope: scope.encoding().to_vec(),
                    prompt: prompt.to_string(),
                })
                .unwrap_or_default();
                self.scripts
                    .del
                    .key(self.layout.entry(b, key))
                    .key(self.layout.stream(b))
                    .key(self.layout.counter(b))
                    .key(self.layout.scope_set(b, scope))
                    .arg(payload)
                    .arg(self.origin.as_str())
                    .arg(now)
                    .arg(max_len)
                    .invoke(conn)?
            }
            Removal::Scope(scope) => self
                .scripts
                .purge
                .key(self.layout.scope_set(b, scope))
                .key(self.layout.stream(b))
                .key(self.layout.counter(b))
                .arg(scope.encoding())
                .arg(self.origin.as_str())
                .arg(now)
                .arg(max_len)
                .invoke(conn)?,
        };
        bump(&self.counters.published);
        self.remember(generation, removal.clone());
        let id = StreamId::parse(id.as_bytes()).unwrap_or(StreamId::PENDING);
        if id != StreamId::PENDING {
            self.saw(b, id, generation);
        }
        Ok((id, generation))
    }

    /// Note an event Redis holds in `bucket`'s stream (kept if it is the newest seen).
    pub(crate) fn saw(&self, bucket: u16, id: StreamId, generation: u64) {
        if let Some(seen) = self.seen.lock().get_mut(bucket as usize)
            && seen.is_none_or(|(_, g)| g < generation)
        {
            *seen = Some((id, generation));
        }
    }

    /// Replace what is known of `bucket`'s newest event (a reload's, or after a rewind).
    pub(crate) fn set_seen(&self, bucket: u16, newest: Option<(StreamId, u64)>) {
        if let Some(seen) = self.seen.lock().get_mut(bucket as usize) {
            *seen = newest;
        }
    }

    /// The newest event seen in each bucket.
    pub(crate) fn newest_seen(&self) -> Vec<Option<(StreamId, u64)>> {
        self.seen.lock().clone()
    }

    /// Remember a removal Redis had at `generation`, to write again if Redis loses it.
    pub(crate) fn remember(&self, generation: u64, removal: Removal) {
        let bucket = self.layout.bucket(removal.scope());
        let mut known = self.known.lock();
        // A removal older than the TTL guards nothing: what it removed has expired everywhere.
        while known.front().is_some_and(|k| k.at.elapsed() >= self.ttl) {
            known.pop_front();
        }
        if known.len() >= MAX_KNOWN {
            known.pop_front();
        }
        known.push_back(Known {
            bucket,
            generation,
            at: Instant::now(),
            removal,
        });
    }

    /// Bucket `b` went back in time to `generation`: write again the removals Redis had after
    /// it. Until every one is written what this replica has seen stays as it was, so its next
    /// connection finds the rewind again.
    pub(crate) fn reassert(
        &self,
        conn: &mut Connection,
        b: u16,
        generation: u64,
    ) -> RedisResult<()> {
        bump(&self.counters.rewinds);
        let lost: VecDeque<Known> = {
            let mut known = self.known.lock();
            let (lost, kept) = std::mem::take(&mut *known)
                .into_iter()
                .partition(|k| k.bucket == b && k.generation > generation);
            *known = kept;
            lost
        };
        let mut newest = None;
        let mut lost = lost.into_iter();
        while let Some(k) = lost.next() {
            match self.write_removal(conn, &k.removal) {
                Ok((id, written)) => {
                    bump(&self.counters.reasserted);
                    newest = Some((id, written));
                    self.mark_applied(&k.removal, id);
                }
                Err(e) => {
                    let mut known = self.known.lock();
                    known.push_front(k);
                    known.extend(lost);
                    return Err(e);
                }
            }
        }
        self.set_seen(b, newest);
        Ok(())
    }

    /// Record a removal's stream id, keeping the later mark (puts before it stay superseded).
    fn mark_applied(&self, removal: &Removal, id: StreamId) {
        match removal {
            Removal::Key { key, .. } => {
                let _stripe = self.marks.lock(key);
                self.marks.mark_key(*key, id);
            }
            Removal::Scope(scope) => {
                let _purge = self.marks.purge.write();
                self.marks.mark_scope(scope, id);
            }
        }
    }

    /// The removal's real id replaces its pending mark: puts after it apply again.
    fn settle(&self, removal: &Removal, id: StreamId) {
        match removal {
            Removal::Key { key, .. } => {
                let _stripe = self.marks.lock(key);
                self.marks.set_key(*key, id);
            }
            Removal::Scope(scope) => {
                let _purge = self.marks.purge.write();
                self.marks.set_scope(scope, id);
            }
        }
    }

    fn queue(&self, removal: Removal) {
        let mut pending = self.pending.lock();
        if pending.len() >= self.options.max_pending {
            pending.pop_front();
            bump(&self.counters.dropped_invalidations);
        }
        pending.push_back(removal);
    }

    /// Write the removals made while Redis was away, oldest first.
    pub(crate) fn replay_pending(&self, conn: &mut Connection) -> RedisResult<()> {
        loop {
            let Some(removal) = self.pending.lock().pop_front() else {
                return Ok(());
            };
            match self.write_removal(conn, &removal) {
                Ok((id, _)) => self.settle(&removal, id),
                Err(e) => {
                    self.pending.lock().push_front(removal);
                    return Err(e);
                }
            }
        }
    }

    // ----- other replicas' changes, applied here -----

    /// A local exact miss asks Redis: another replica may have cached this prompt.
    pub(crate) fn fetch(&self, scope: &Scope, text: &str, key: &Key) -> Option<Hit<V>> {
        if !self.trusted.load(Ordering::Relaxed) {
            return None;
        }
        let name = self.layout.entry(self.layout.bucket(scope), key);
        let reply = self.link.run(|c| {
            redis::cmd("HMGET")
                .arg(&name)
                .arg("id")
                .arg("e")
                .query::<(Option<Vec<u8>>, Option<Vec<u8>>)>(c)
        });
        let (id, bytes) = match reply {
            Some((Some(id), Some(bytes))) => (id, bytes),
            Some(_) => {
                bump(&self.counters.redis_misses);
                return None;
            }
            None => {
                bump(&self.counters.redis_errors);
                return None;
            }
        };
        // Another scope's or prompt's entry under this key (an MD5 collision) is a miss.
        let same = |w: &WireEntry| w.scope == scope.encoding() && w.prompt == text;
        match self.apply_stored(&id, &bytes, Some(*key), same) {
            Applied::Inserted(hit) => {
                bump(&self.counters.redis_hits);
                Some(hit)
            }
            _ => {
                bump(&self.counters.redis_misses);
                None
            }
        }
    }

    /// An entry as Redis stores it (its put's id and bytes), checked against `key` if given.
    pub(crate) fn apply_stored(
        &self,
        id: &[u8],
        bytes: &[u8],
        key: Option<Key>,
        wanted: impl Fn(&WireEntry) -> bool,
    ) -> Applied<V> {
        let decoded = StreamId::parse(id).zip(wire::decode::<WireEntry>(bytes));
        match decoded {
            Some((id, entry)) if wanted(&entry) => self.apply_put(id, entry, key),
            Some(_) => Applied::Rejected,
            None => {
                bump(&self.counters.rejected);
                Applied::Rejected
            }
        }
    }

    /// Insert another replica's entry unless a newer removal has decided its key or scope.
    pub(crate) fn apply_put(&self, id: StreamId, w: WireEntry, expect: Option<Key>) -> Applied<V> {
        let outcome = self.apply_put_checked(id, w, expect);
        match &outcome {
            Applied::Rejected => bump(&self.counters.rejected),
            Applied::Superseded => bump(&self.counters.superseded),
            _ => {}
        }
        outcome
    }

    fn apply_put_checked(&self, id: StreamId, w: WireEntry, expect: Option<Key>) -> Applied<V> {
        let cache = &self.cache;
        let scope = Scope::from_encoding(w.scope);
        let Ok(text) = cache.check_prompt(&w.prompt) else {
            return Applied::Rejected;
        };
        if text != w.prompt.as_str() {
            return Applied::Rejected;
        }
        let key = exact_key(&scope, &w.prompt);
        if expect.is_some_and(|k| k != key) {
            return Applied::Rejected;
        }
        if w.vector.len() != cache.dimension() {
            return Applied::Rejected;
        }
        let Some(value) = wire::decode::<V>(&w.value) else {
            return Applied::Rejected;
        };
        let age = Duration::from_micros(wall_us().saturating_sub(w.created_us));
        if age >= self.ttl {
            return Applied::Expired;
        }
        let _purge = self.marks.purge.read();
        let _stripe = self.marks.lock(&key);
        if self.marks.supersedes(&key, &scope, id) {
            return Applied::Superseded;
        }
        match cache.insert_shared(&scope, &w.prompt, w.vector, value, age) {
            Ok(hit) => {
                self.marks.mark_key(key, id);
                Applied::Inserted(hit)
            }
            Err(_) => Applied::Rejected,
        }
    }

    /// Another replica's removal: always applied (a removal at worst costs a miss), and
    /// remembered with its generation, if the event had one.
    pub(crate) fn apply_removal(&self, id: StreamId, generation: Option<u64>, removal: Removal) {
        if let Some(generation) = generation {
            self.remember(generation, removal.clone());
        }
        match removal {
            Removal::Key { scope, prompt, key } => {
                let _stripe = self.marks.lock(&key);
                self.cache.invalidate(&scope, &prompt);
                self.marks.mark_key(key, id);
            }
            Removal::Scope(scope) => {
                let _purge = self.marks.purge.write();
                self.cache.invalidate_scope(&scope);
                self.marks.mark_scope(&scope, id);
            }
        }
    }

    /// A `del` event's payload as a removal, if it is well formed.
    pub(crate) fn removal_of(bytes: &[u8]) -> Option<Removal> {
        let r = wire::decode::<WireRemoval>(bytes)?;
        let scope = Scope::from_encoding(r.scope);
        if normalize(&r.prompt) != r.prompt.as_str() || r.prompt.is_empty() {
            return None;
        }
        let key = exact_key(&scope, &r.prompt);
        Some(Removal::Key {
            scope,
            prompt: r.prompt.into_boxed_str(),
            key,
        })
    }
}

/// The shared tier is the cache's second tier: a local exact miss asks Redis.
impl<V> SecondTier<V> for Core<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn lookup(&self, probe: &ExactProbe<'_>) -> Option<Hit<V>> {
        self.fetch(probe.scope(), probe.prompt(), probe.key().as_bytes())
    }
}
