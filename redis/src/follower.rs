//! The thread that keeps the local tiers in step with the other replicas: it reloads the shared
//! entries when it starts (and after a gap), then applies every bucket's stream in order.
//!
//! Each event carries its stream's running number. A number that does not follow the last one
//! seen means events were lost to trimming or to a Redis restart, and replaying cannot repair
//! that, so the replica clears its local tiers and reloads from Redis.

use super::core::{Core, Removal};
use super::stats::bump;
use super::wire::{self, StreamId, WireEntry, wall_us};
use paracache::Scope;
use redis::{Connection, RedisResult, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Events read per stream read; the follower loops until it has caught up.
const READ_BATCH: usize = 1024;
/// Entry keys asked for per SCAN step during a reload.
const SCAN_BATCH: usize = 512;
/// How late a server may answer an idle `XREAD BLOCK`: Redis ends blocks on its cron tick,
/// `1000 / hz` ms apart (100 ms at the default `hz 10`, measured at up to 200 ms for a 100 ms
/// block), so the read deadline allows a full tick at the lowest `hz` (1) on top of the block.
const SERVER_TICK: Duration = Duration::from_secs(1);

/// An entry hash's `id` and `e` fields, as HMGET returns them.
type StoredEntry = (Option<Vec<u8>>, Option<Vec<u8>>);
/// An event's field/value pairs.
type Fields<'a> = Vec<(&'a [u8], &'a [u8])>;

/// Where the follower is in every bucket's stream.
struct Position {
    ids: Vec<StreamId>,
    /// The running number of the last event seen; `None` until one is known.
    numbers: Vec<Option<u64>>,
    synced: bool,
    loaded_once: bool,
}

pub(crate) fn spawn<V>(core: Arc<Core<V>>) -> std::io::Result<()>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    std::thread::Builder::new()
        .name("paracache-redis-follower".into())
        .spawn(move || run(&core))
        .map(|_| ())
}

fn run<V>(core: &Core<V>)
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let buckets = core.layout.buckets() as usize;
    let mut pos = Position {
        ids: vec![StreamId::default(); buckets],
        numbers: vec![None; buckets],
        synced: false,
        loaded_once: false,
    };
    // The follower is off the call path: a generous deadline costs nothing but a slower notice
    // of a server that stopped answering, and a tight one drops the connection of every idle
    // follower on a stock server.
    let read_timeout = core.options.block + SERVER_TICK + core.options.timeout;
    while !core.stop.load(Ordering::Relaxed) {
        let followed = core
            .link
            .connect(read_timeout)
            .and_then(|mut conn| follow(core, &mut conn, &mut pos));
        core.connected.store(false, Ordering::Relaxed);
        // Until the follower has checked the server again (it may come back with older data),
        // a local miss does not take entries from it.
        core.trusted.store(false, Ordering::Relaxed);
        if followed.is_err() {
            bump(&core.counters.redis_errors);
            pause(core, core.options.retry_after);
        }
    }
}

/// Sleep, waking early when the cache is dropped.
fn pause<V>(core: &Core<V>, d: Duration) {
    let until = Instant::now() + d;
    while !core.stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10).min(d));
    }
}

fn follow<V>(core: &Core<V>, conn: &mut Connection, pos: &mut Position) -> RedisResult<()>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    redis::cmd("PING").query::<()>(conn)?;
    core.link.fill()?;
    let streams: Vec<String> = (0..core.layout.buckets())
        .map(|b| core.layout.stream(b))
        .collect();
    // Before anything is written or loaded: a server that went back in time gets the removals
    // it lost again, and what this replica holds is reloaded against it.
    if check_history(core, conn, &streams)? {
        pos.synced = false;
    }
    core.replay_pending(conn)?;
    let grace = restart_grace(core, conn)?;
    if !grace.is_zero() {
        // Other replicas may hold removals this server lost: give them time to write them
        // again before anything is taken from it.
        core.trusted.store(false, Ordering::Relaxed);
        pos.synced = false;
        pause(core, grace);
    }
    core.trusted.store(true, Ordering::Relaxed);
    core.connected.store(true, Ordering::Relaxed);
    core.link.reopen();
    while !core.stop.load(Ordering::Relaxed) {
        core.replay_pending(conn)?;
        if !pos.synced {
            reload(core, conn, pos, &streams)?;
        }
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(READ_BATCH)
            .arg("BLOCK")
            .arg(core.options.block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&streams);
        for id in &pos.ids {
            read.arg(id.to_string());
        }
        let reply: Value = read.query(conn)?;
        for (bucket, events) in stream_events(&reply, &streams) {
            for event in events {
                let Some((id, fields)) = event_fields(event) else {
                    bump(&core.counters.rejected);
                    continue;
                };
                let n = field(&fields, b"n").and_then(number);
                if let (Some(last), Some(n)) = (pos.numbers[bucket], n)
                    && n <= last
                {
                    // A number seen already, on a newer event: the counter went back while this
                    // follower was away, in a way the connect-time check could not see (its
                    // newest event had been trimmed). The first new event is numbered one past
                    // what the server kept.
                    core.reassert(conn, bucket as u16, n.saturating_sub(1))?;
                    pos.synced = false;
                    break;
                }
                let follows = match (pos.numbers[bucket], n) {
                    (Some(last), Some(n)) => n == last + 1,
                    _ => true,
                };
                if !follows {
                    pos.synced = false;
                    break;
                }
                pos.numbers[bucket] = n.or(pos.numbers[bucket]);
                pos.ids[bucket] = id;
                if let Some(n) = n {
                    core.saw(bucket as u16, id, n);
                }
                if field(&fields, b"o") != Some(core.origin.as_bytes()) {
                    apply(core, id, n, &fields);
                }
            }
        }
    }
    Ok(())
}

/// Whether the server still holds, in each bucket, the newest event this replica saw there; where
/// it does not (restarted from older data, or empty), the removals it may have lost are written
/// again (see [`Core::reassert`]). Returns whether any bucket went back.
///
/// Streams are only ever trimmed from the front, so an event between the stream's first and last
/// that is missing was never written on this server's history: the newest surviving event before
/// it says how far the server went back. Comparing counters alone would miss a rewind that other
/// replicas' writes (their re-assertions included) have already carried past this one's count.
fn check_history<V>(core: &Core<V>, conn: &mut Connection, streams: &[String]) -> RedisResult<bool>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let seen: Vec<(u16, StreamId, u64)> = core
        .newest_seen()
        .into_iter()
        .enumerate()
        .filter_map(|(b, s)| s.map(|(id, n)| (b as u16, id, n)))
        .collect();
    if seen.is_empty() {
        return Ok(false);
    }
    let mut ask = redis::pipe();
    for &(b, id, _) in &seen {
        let (stream, id) = (&streams[b as usize], id.to_string());
        ask.cmd("XRANGE").arg(stream).arg(&id).arg(&id);
        ask.cmd("XRANGE")
            .arg(stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1);
        // Inclusive (exclusive ranges need Redis 6.2); only read when `id` itself is missing.
        ask.cmd("XREVRANGE")
            .arg(stream)
            .arg(&id)
            .arg("-")
            .arg("COUNT")
            .arg(1);
        ask.cmd("GET").arg(core.layout.counter(b));
    }
    let replies: Vec<Value> = ask.query(conn)?;
    let mut rewound = false;
    for (&(b, id, n), r) in seen.iter().zip(replies.chunks_exact(4)) {
        let first_event = |v: &Value| {
            let (id, fields) = as_array(v)?.first().and_then(event_fields)?;
            Some((id, field(&fields, b"n").and_then(number)))
        };
        let held = first_event(&r[0]).is_some();
        let first = first_event(&r[1]);
        let kept = match (held, first) {
            (true, _) => None,
            // Trimmed past it: the stream cannot tell, the counter can (unless writes since
            // carried it past this replica's count).
            (false, Some((first, _))) if first > id => {
                let counter = match &r[3] {
                    Value::Nil => 0,
                    v => redis::from_redis_value::<u64>(v.clone()).unwrap_or(0),
                };
                (counter < n).then_some(counter)
            }
            // Missing from the middle of the stream, or the stream is gone: the server went back
            // to its newest event before this one (none: to nothing).
            (false, _) => Some(first_event(&r[2]).and_then(|(_, n)| n).unwrap_or(0)),
        };
        if let Some(kept) = kept {
            core.reassert(conn, b, kept)?;
            rewound = true;
        }
    }
    Ok(rewound)
}

/// How long to wait before trusting a server that restarted from persisted data (an RDB or an
/// AOF) and may have lost writes: until it has been up for twice `retry_after` (plus a second
/// for the coarse uptime Redis reports), by when every live replica's follower has reconnected
/// (it retries every `retry_after`) and written again what it remembers. A server that started
/// empty, or has been up that long, needs none; one that will not say (INFO refused) gets the
/// whole grace.
fn restart_grace<V>(core: &Core<V>, conn: &mut Connection) -> RedisResult<Duration>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    // Redis counts uptime as whole Unix seconds now less whole Unix seconds at start, which runs
    // up to a second ahead of the real uptime: one more second makes the wait long enough.
    let grace = core.options.retry_after * 2 + Duration::from_secs(1);
    let info: String = match redis::cmd("INFO").query(conn) {
        Ok(info) => info,
        Err(e) if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => {
            return Err(e);
        }
        Err(_) => return Ok(grace),
    };
    Ok(grace_left(&info, grace))
}

/// What is left of `grace` for a server whose `INFO` reads `info`.
fn grace_left(info: &str, grace: Duration) -> Duration {
    let value = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    // A server too old to report what it loaded is taken to have loaded something.
    let loaded =
        value("rdb_last_load_keys_loaded").is_none_or(|n| n > 0) || value("aof_enabled") == Some(1);
    let Some(uptime) = value("uptime_in_seconds") else {
        return grace;
    };
    if !loaded {
        return Duration::ZERO;
    }
    grace.saturating_sub(Duration::from_secs(uptime))
}

/// Clear (after a gap) and load every shared entry, noting first where each stream ends so the
/// events written during the load are applied after it.
fn reload<V>(
    core: &Core<V>,
    conn: &mut Connection,
    pos: &mut Position,
    streams: &[String],
) -> RedisResult<()>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let mut ends = redis::pipe();
    for s in streams {
        ends.cmd("XREVRANGE")
            .arg(s)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }
    let ends: Vec<Value> = ends.query(conn)?;
    for (b, end) in ends.iter().enumerate() {
        let last = as_array(end).and_then(|a| a.first()).and_then(event_fields);
        pos.ids[b] = last.as_ref().map_or(StreamId::default(), |(id, _)| *id);
        pos.numbers[b] = last
            .as_ref()
            .and_then(|(_, f)| field(f, b"n").and_then(number));
        core.set_seen(b as u16, pos.numbers[b].map(|n| (pos.ids[b], n)));
    }
    if pos.loaded_once {
        core.cache.clear();
    }
    let pattern = core.layout.entry_pattern();
    let mut cursor: u64 = 0;
    loop {
        let (next, names): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_BATCH)
            .query(conn)?;
        // Each entry key with the exact key it names; other names are not entries.
        let entries: Vec<_> = names
            .iter()
            .filter_map(|n| Some((n, core.layout.parse_entry(n)?)))
            .collect();
        cursor = next;
        if entries.is_empty() {
            if cursor == 0 {
                break;
            }
            continue;
        }
        let mut get = redis::pipe();
        for (name, _) in &entries {
            get.cmd("HMGET").arg(*name).arg("id").arg("e");
        }
        let found: Vec<StoredEntry> = get.query(conn)?;
        for ((_, key), stored) in entries.into_iter().zip(found) {
            // Gone (expired or removed) since the SCAN saw it.
            if let (Some(id), Some(bytes)) = stored {
                core.apply_stored(&id, &bytes, Some(key), |_| true);
            }
        }
        if cursor == 0 {
            break;
        }
    }
    pos.synced = true;
    pos.loaded_once = true;
    bump(&core.counters.resyncs);
    Ok(())
}

fn apply<V>(core: &Core<V>, id: StreamId, generation: Option<u64>, fields: &[(&[u8], &[u8])])
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let payload = field(fields, b"e").unwrap_or_default();
    let applied = match field(fields, b"op") {
        Some(b"put") => wire::decode::<WireEntry>(payload)
            .map(|w| core.apply_put(id, w, None))
            .is_some(),
        Some(b"del") => Core::<V>::removal_of(payload)
            .map(|r| core.apply_removal(id, generation, r))
            .is_some(),
        Some(b"purge") => {
            let scope = Scope::from_encoding(payload.to_vec());
            core.apply_removal(id, generation, Removal::Scope(scope));
            true
        }
        _ => false,
    };
    if !applied {
        bump(&core.counters.rejected);
        return;
    }
    bump(&core.counters.applied_events);
    if let Some(t) = field(fields, b"t").and_then(number) {
        core.counters.record_lag(wall_us().saturating_sub(t));
    }
}

// ----- reading Redis replies -----

fn as_array(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(a) | Value::Set(a) => Some(a),
        _ => None,
    }
}

fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn number(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn field<'a>(fields: &[(&'a [u8], &'a [u8])], name: &[u8]) -> Option<&'a [u8]> {
    fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// `[id, [field, value, ...]]`
fn event_fields(v: &Value) -> Option<(StreamId, Fields<'_>)> {
    let [id, fields] = as_array(v)? else {
        return None;
    };
    let id = StreamId::parse(as_bytes(id)?)?;
    let flat = as_array(fields)?;
    if flat.len() % 2 != 0 {
        return None;
    }
    let pairs = flat
        .chunks_exact(2)
        .map(|p| Some((as_bytes(&p[0])?, as_bytes(&p[1])?)))
        .collect::<Option<Vec<_>>>()?;
    Some((id, pairs))
}

/// XREAD's reply as (bucket, events), whether it came as RESP2 arrays or a RESP3 map.
fn stream_events<'a>(reply: &'a Value, streams: &[String]) -> Vec<(usize, &'a [Value])> {
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| match as_array(s)? {
                [name, events] => Some((name, events)),
                _ => None,
            })
            .collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(name, events)| {
            let name = as_bytes(name)?;
            let bucket = streams.iter().position(|s| s.as_bytes() == name)?;
            Some((bucket, as_array(events)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn only_a_young_server_that_loaded_data_gets_a_grace() {
        let g = Duration::from_secs(3);
        let info = |up: u64, loaded: &str, aof: u8| {
            format!(
                "# Server\r\nuptime_in_seconds:{up}\r\n# Persistence\r\n{loaded}aof_enabled:{aof}\r\n"
            )
        };
        let keys = |n: u64| format!("rdb_last_load_keys_loaded:{n}\r\n");
        assert_eq!(grace_left(&info(1, &keys(5), 0), g), Duration::from_secs(2));
        assert_eq!(grace_left(&info(9, &keys(5), 0), g), Duration::ZERO);
        assert_eq!(grace_left(&info(0, &keys(0), 0), g), Duration::ZERO);
        // An AOF, or a server that does not report what it loaded: assume it loaded data.
        assert_eq!(grace_left(&info(0, &keys(0), 1), g), g);
        assert_eq!(grace_left(&info(0, "", 0), g), g);
        assert_eq!(grace_left("", g), g);
    }

    #[test]
    fn xread_replies_are_read_in_both_protocols_and_junk_is_skipped() {
        let streams = vec!["s0".to_string(), "s1".to_string()];
        let event = Value::Array(vec![
            bulk("5-1"),
            Value::Array(vec![bulk("op"), bulk("put"), bulk("n"), bulk("7")]),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("s1"),
            Value::Array(vec![event.clone()]),
        ])]);
        let resp3 = Value::Map(vec![(bulk("s1"), Value::Array(vec![event.clone()]))]);
        for reply in [resp2, resp3] {
            let got = stream_events(&reply, &streams);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, 1);
            let (id, fields) = event_fields(&got[0].1[0]).unwrap();
            assert_eq!(id, StreamId(5, 1));
            assert_eq!(field(&fields, b"n").and_then(number), Some(7));
            assert_eq!(field(&fields, b"op"), Some(&b"put"[..]));
        }
        assert!(stream_events(&Value::Nil, &streams).is_empty());
        let unknown = Value::Array(vec![Value::Array(vec![
            bulk("other"),
            Value::Array(vec![]),
        ])]);
        assert!(stream_events(&unknown, &streams).is_empty());
        let odd = Value::Array(vec![bulk("5-1"), Value::Array(vec![bulk("op")])]);
        assert!(event_fields(&odd).is_none());
        assert!(event_fields(&Value::Array(vec![bulk("x"), Value::Array(vec![])])).is_none());
    }
}
