//! A concurrent history checker: many threads run random operations on one cache, each logged
//! with a ticket taken before and after it, and [`check`] proves from the log alone that
//!
//! - every hit names an insert that had begun before the lookup ended (no phantom),
//! - in the lookup's own scope (no foreign answer),
//! - and that was not certainly dead for the whole lookup: no operation that kills it
//!   (an `invalidate` of its prompt, a newer insert of its prompt, a purge of its scope, a
//!   `clear`) began after the insert returned and returned before the lookup began (no stale
//!   hit; in particular nothing survives an `invalidate` that returned).
//!
//! Misses are never violations: eviction and expiry may drop anything at any time. The checker
//! has no model of the cache's internals, so it judges every tier (exact, alias, semantic) alike.
//! Values are unique per insert, which is how a hit names its insert.

use paracache::{Cache, Scope};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Where a prompt lives: (scope index, prompt index).
pub type Slot = (u16, u16);

/// What one call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `insert` of `value` under `slot` (it returned `Ok`).
    Insert {
        /// Where.
        slot: Slot,
        /// The value, unique to this insert.
        value: u64,
    },
    /// `lookup` in `scope` that answered `hit` (the value of the insert that answered).
    Lookup {
        /// The scope looked up.
        scope: u16,
        /// The value served, if any.
        hit: Option<u64>,
        /// Which tier served it (`exact`, `alias`, `semantic`), for the report.
        tier: &'static str,
    },
    /// `invalidate` of `slot`.
    Invalidate {
        /// Where.
        slot: Slot,
    },
    /// `invalidate_scope`.
    InvalidateScope {
        /// The scope purged.
        scope: u16,
    },
    /// `clear`.
    Clear,
}

/// One logged call: tickets drawn from one counter just before it began and just after it
/// returned.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Ticket drawn before the call.
    pub start: u64,
    /// Ticket drawn after it returned.
    pub end: u64,
    /// The call and its outcome.
    pub op: Op,
}

/// A hit the log cannot justify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What went wrong, with the tickets involved.
    pub what: String,
}

/// What [`check`] looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Events in the log.
    pub events: usize,
    /// Hits judged.
    pub hits: usize,
}

/// The tickets of operations that kill something, sorted by start, with the smallest end of
/// every suffix: the earliest moment something that began after `t` had certainly finished.
struct Kills {
    starts: Vec<u64>,
    min_end_from: Vec<u64>,
}

impl Kills {
    fn new(mut spans: Vec<(u64, u64)>) -> Kills {
        spans.sort_unstable();
        let mut min_end_from = vec![u64::MAX; spans.len() + 1];
        for i in (0..spans.len()).rev() {
            min_end_from[i] = min_end_from[i + 1].min(spans[i].1);
        }
        Kills {
            starts: spans.iter().map(|s| s.0).collect(),
            min_end_from,
        }
    }

    /// The earliest end of a kill that began after `t` (`u64::MAX` if none).
    fn first_end_after(&self, t: u64) -> u64 {
        let i = self.starts.partition_point(|&s| s <= t);
        self.min_end_from[i]
    }
}

/// Judge every hit in `events` (see the module docs).
pub fn check(events: &[Event]) -> (Checked, Vec<Violation>) {
    let mut inserts: HashMap<u64, (Slot, u64, u64)> = HashMap::new();
    let mut by_slot: HashMap<Slot, Vec<(u64, u64)>> = HashMap::new();
    let mut by_scope: HashMap<u16, Vec<(u64, u64)>> = HashMap::new();
    let mut clears = Vec::new();
    for e in events {
        let span = (e.start, e.end);
        match e.op {
            Op::Insert { slot, value } => {
                inserts.insert(value, (slot, e.start, e.end));
                by_slot.entry(slot).or_default().push(span);
            }
            Op::Invalidate { slot } => by_slot.entry(slot).or_default().push(span),
            Op::InvalidateScope { scope } => by_scope.entry(scope).or_default().push(span),
            Op::Clear => clears.push(span),
            Op::Lookup { .. } => {}
        }
    }
    let by_slot: HashMap<Slot, Kills> = by_slot
        .into_iter()
        .map(|(k, v)| (k, Kills::new(v)))
        .collect();
    let by_scope: HashMap<u16, Kills> = by_scope
        .into_iter()
        .map(|(k, v)| (k, Kills::new(v)))
        .collect();
    let clears = Kills::new(clears);
    let mut checked = Checked {
        events: events.len(),
        hits: 0,
    };
    let mut violations = Vec::new();
    for e in events {
        let Op::Lookup {
            scope,
            hit: Some(value),
            tier,
        } = e.op
        else {
            continue;
        };
        checked.hits += 1;
        let Some(&(slot, i_start, i_end)) = inserts.get(&value) else {
            violations.push(Violation {
                what: format!(
                    "lookup [{}, {}] served {value}, which no insert wrote",
                    e.start, e.end
                ),
            });
            continue;
        };
        if i_start > e.end {
            violations.push(Violation {
                what: format!(
                    "phantom: lookup [{}, {}] served insert [{i_start}, {i_end}], which began after it",
                    e.start, e.end
                ),
            });
        }
        if slot.0 != scope {
            violations.push(Violation {
                what: format!(
                    "foreign: lookup [{}, {}] in scope {scope} served an entry of scope {}",
                    e.start, e.end, slot.0
                ),
            });
        }
        // The insert's own span is in its slot's list; a kill must begin after it returned.
        let kills = [
            (
                by_slot
                    .get(&slot)
                    .map_or(u64::MAX, |k| k.first_end_after(i_end)),
                "an invalidate or newer insert of its prompt",
            ),
            (
                by_scope
                    .get(&slot.0)
                    .map_or(u64::MAX, |k| k.first_end_after(i_end)),
                "a purge of its scope",
            ),
            (clears.first_end_after(i_end), "a clear"),
        ];
        let (death, by) = kills.into_iter().min().unwrap_or((u64::MAX, ""));
        if death < e.start {
            violations.push(Violation {
                what: format!(
                    "stale: {tier} lookup [{}, {}] served insert [{i_start}, {i_end}] of {slot:?}, dead since {death} by {by}",
                    e.start, e.end
                ),
            });
        }
    }
    (checked, violations)
}

/// Shape of a random workload for [`run_thread`].
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Scopes the prompts spread over.
    pub scopes: u16,
    /// Prompts per scope (few, so operations meet on the same keys).
    pub prompts: u16,
    /// Embedding dimension of the cache.
    pub dim: usize,
}

impl Workload {
    /// The scope with this index.
    pub fn scope(&self, s: u16) -> Scope {
        Scope::named(format!("history-{s}"))
    }

    /// The stored vector of a slot: fixed per slot, so a lookup can repeat or paraphrase it.
    pub fn vector(&self, slot: Slot) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(u64::from(slot.0) << 16 | u64::from(slot.1));
        (0..self.dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }
}

/// Run random operations on `cache` until `stop`, logging each with tickets from `clock`.
/// Values are `thread << 40 | serial`, unique across threads.
pub fn run_thread(
    cache: &Cache<u64>,
    w: Workload,
    thread: u64,
    clock: &AtomicU64,
    stop: &AtomicBool,
) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(0x5eed ^ thread);
    let mut log = Vec::new();
    let mut serial = 0u64;
    let ticket = || clock.fetch_add(1, Ordering::SeqCst);
    while !stop.load(Ordering::Relaxed) {
        let slot = (rng.gen_range(0..w.scopes), rng.gen_range(0..w.prompts));
        let scope = w.scope(slot.0);
        let prompt = format!("prompt {}", slot.1);
        let roll = rng.gen_range(0..1000);
        let start = ticket();
        let op = match roll {
            0..300 => {
                serial += 1;
                let value = thread << 40 | serial;
                cache
                    .insert(&scope, &prompt, w.vector(slot), value)
                    .expect("a valid insert");
                Op::Insert { slot, value }
            }
            300..380 => {
                cache.invalidate(&scope, &prompt);
                Op::Invalidate { slot }
            }
            380..383 => {
                cache.invalidate_scope(&scope);
                Op::InvalidateScope { scope: slot.0 }
            }
            383 => {
                cache.clear();
                Op::Clear
            }
            _ => {
                // Half repeats (exact tier), half rephrasings with a nearby vector (semantic
                // tier, and aliases once served).
                let (text, mut v) = (
                    if rng.gen_bool(0.5) {
                        prompt.clone()
                    } else {
                        format!("rephrased {}", slot.1)
                    },
                    w.vector(slot),
                );
                v.iter_mut()
                    .for_each(|x| *x += rng.gen_range(-0.01f32..0.01));
                let r = cache
                    .lookup(&scope, &text, |_| Ok::<_, std::io::Error>(v))
                    .expect("a valid lookup");
                Op::Lookup {
                    scope: slot.0,
                    hit: r.hit().map(|h| *h.value()),
                    tier: r.hit().map_or("miss", |h| h.source().as_str()),
                }
            }
        };
        log.push(Event {
            start,
            end: ticket(),
            op,
        });
    }
    log
}

/// Run `threads` threads of [`run_thread`] on `cache` for `duration` and return all their
/// events. Thread ids (and so values) start at `first_id`; tickets come from `clock`, which a
/// caller running several windows keeps across them.
pub fn run_for(
    cache: &Cache<u64>,
    w: Workload,
    threads: u64,
    first_id: u64,
    clock: &AtomicU64,
    duration: Duration,
) -> Vec<Event> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || run_thread(cache, w, first_id + t, clock, stop))
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .flat_map(|h| h.join().expect("a history worker panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(start: u64, end: u64, op: Op) -> Event {
        Event { start, end, op }
    }

    fn insert(start: u64, end: u64, slot: Slot, value: u64) -> Event {
        ev(start, end, Op::Insert { slot, value })
    }

    fn hit(start: u64, end: u64, scope: u16, value: u64) -> Event {
        let hit = Some(value);
        ev(
            start,
            end,
            Op::Lookup {
                scope,
                hit,
                tier: "exact",
            },
        )
    }

    #[test]
    fn a_hit_after_a_returned_invalidate_is_stale() {
        let log = [
            insert(1, 2, (0, 0), 7),
            ev(3, 4, Op::Invalidate { slot: (0, 0) }),
            hit(5, 6, 0, 7),
        ];
        let (checked, v) = check(&log);
        assert_eq!(checked.hits, 1);
        assert_eq!(v.len(), 1);
        assert!(v[0].what.starts_with("stale"), "{v:?}");
    }

    #[test]
    fn overlapping_calls_may_go_either_way() {
        let log = [
            insert(1, 2, (0, 0), 7),
            ev(3, 6, Op::Invalidate { slot: (0, 0) }),
            hit(4, 5, 0, 7),
            ev(
                7,
                9,
                Op::Lookup {
                    scope: 0,
                    hit: None,
                    tier: "miss",
                },
            ),
        ];
        assert!(check(&log).1.is_empty());
    }

    #[test]
    fn foreign_phantom_unknown_and_killed_by_purge_clear_or_replace() {
        let log = [
            insert(1, 2, (1, 0), 7),
            hit(3, 4, 0, 7),
            hit(5, 6, 1, 8),
            hit(7, 9, 1, 10),
            insert(8, 20, (1, 1), 10),
            insert(21, 22, (1, 0), 11),
            hit(23, 24, 1, 7),
            ev(25, 26, Op::InvalidateScope { scope: 1 }),
            hit(27, 28, 1, 11),
            insert(29, 30, (2, 0), 12),
            ev(31, 32, Op::Clear),
            hit(33, 34, 2, 12),
            hit(40, 41, 3, 13),
            insert(42, 43, (3, 0), 13),
        ];
        let (checked, v) = check(&log);
        assert_eq!(checked.hits, 7);
        let kinds: Vec<&str> = v
            .iter()
            .map(|v| v.what.split(':').next().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "foreign",
                "lookup [5, 6] served 8, which no insert wrote",
                "stale",
                "stale",
                "stale",
                "phantom"
            ]
        );
    }
}
