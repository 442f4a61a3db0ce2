//! The scope -> partition map, sharded so lookups in different scopes do not share a lock, and the
//! maintenance that decides when a partition is rebuilt or dropped.

use crate::scope::Scope;
use crate::stats::Counters;
use crate::sync::RwLock;
use crate::vector::IndexParams;
use crate::vector::partition::Partition;
use crate::vector::segment::SearchActivity;
use std::collections::HashMap;
use std::sync::Arc;

const SHARDS: usize = 16;

type Shard = RwLock<HashMap<Scope, Arc<Partition>>>;

pub(crate) struct Partitions {
    shards: Box<[Shard]>,
    /// When lookups last searched any scope's graph (see `Segment`'s indexer).
    activity: Arc<SearchActivity>,
}

/// Vector counts over every partition, for [`crate::Stats`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IndexTotals {
    pub(crate) live: u64,
    pub(crate) dead: u64,
    /// Slots not yet linked into their graph.
    pub(crate) pending: u64,
    /// Scopes whose graph was restored from a snapshot's links.
    pub(crate) restored: u64,
}

impl Partitions {
    pub(crate) fn new() -> Self {
        Partitions {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            activity: Arc::default(),
        }
    }

    fn shard(&self, scope: &Scope) -> &Shard {
        &self.shards[scope.digest()[0] as usize % SHARDS]
    }

    pub(crate) fn get(&self, scope: &Scope) -> Option<Arc<Partition>> {
        self.shard(scope).read().get(scope).cloned()
    }

    pub(crate) fn get_or_create(&self, scope: &Scope) -> Arc<Partition> {
        if let Some(p) = self.get(scope) {
            return p;
        }
        self.shard(scope)
            .write()
            .entry(scope.clone())
            .or_insert_with(|| Arc::new(Partition::new(self.activity.clone())))
            .clone()
    }

    /// Remove and retire a scope's partition: every entry of it stops being servable at once.
    /// It is retired before the shard lock is released, so a second purge of the scope that
    /// finds the map empty cannot return while this partition's entries are still servable
    /// (lock order: shard, then the partition's segment, as in `maintain`).
    pub(crate) fn remove(&self, scope: &Scope) -> Option<Arc<Partition>> {
        let mut shard = self.shard(scope).write();
        let p = shard.remove(scope)?;
        p.retire();
        Some(p)
    }

    /// Remove and retire every partition, each retired before its shard lock is released.
    pub(crate) fn drain(&self) -> Vec<Arc<Partition>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            for (_, p) in shard.drain() {
                p.retire();
                all.push(p);
            }
        }
        all
    }

    /// Every partition with its scope, copied out so no shard lock is held while they are used.
    pub(crate) fn all(&self) -> Vec<(Scope, Arc<Partition>)> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.read()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Run [`Self::maintain`] on every partition (after a bulk load): with background rebuilds on,
    /// graphs are then built off the caller's thread while the scopes answer by exact scan.
    pub(crate) fn maintain_all(&self, params: &IndexParams, counters: &Arc<Counters>) {
        for (scope, p) in self.all() {
            self.maintain(&scope, &p, params, counters);
        }
    }

    /// Live and dead vectors over all partitions.
    pub(crate) fn totals(&self) -> IndexTotals {
        let mut t = IndexTotals::default();
        for shard in self.shards.iter() {
            for p in shard.read().values() {
                let seg = p.segment();
                let (l, d) = seg.counts();
                t.live += l as u64;
                t.dead += d as u64;
                t.pending += seg.backlog() as u64;
                t.restored += u64::from(p.is_restored());
            }
        }
        t
    }

    /// Number of partitions (scopes with indexed vectors).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// After a vector was added to or removed from `p`: rebuild it if it wants, and drop it from
    /// the map once it is empty so that scopes that come and go do not accumulate.
    pub(crate) fn maintain(
        &self,
        scope: &Scope,
        p: &Arc<Partition>,
        params: &IndexParams,
        counters: &Arc<Counters>,
    ) {
        if p.claim_wanted_rebuild(params) {
            // Even a flat compaction (tens of µs) stays off the caller's path: maintenance can
            // be reached from a lookup that finds an expired entry.
            if params.background {
                spawn_rebuild(p.clone(), *params, counters.clone());
            } else if p.rebuild(params) {
                Counters::bump(&counters.rebuilds);
            }
        }
        if p.segment().counts().0 == 0 {
            let mut shard = self.shard(scope).write();
            if shard.get(scope).is_some_and(|cur| Arc::ptr_eq(cur, p)) && p.try_retire() {
                shard.remove(scope);
            }
        }
    }
}

fn spawn_rebuild(p: Arc<Partition>, params: IndexParams, counters: Arc<Counters>) {
    let job = {
        let p = p.clone();
        let counters = counters.clone();
        move || {
            if p.rebuild(&params) {
                Counters::bump(&counters.rebuilds);
            }
        }
    };
    // If no thread can be started, rebuild here rather than never.
    if std::thread::Builder::new()
        .name("paracache-rebuild".into())
        .spawn(job)
        .is_err()
        && p.rebuild(&params)
    {
        Counters::bump(&counters.rebuilds);
    }
}

/// The scope map under shuttle's scheduler, which tries thousands of interleavings of these
/// threads. Run with `RUSTFLAGS="--cfg shuttle" cargo test --release --lib shuttle`.
#[cfg(all(test, shuttle))]
mod shuttle_checks {
    use super::*;
    use shuttle::sync::Mutex;
    use shuttle::thread;

    /// The history checker found a purge that returned while a second, overlapping purge of the
    /// same scope had taken the partition out of the map but not yet retired it, so lookups
    /// after the first purge still saw its entries. When a purge returns, every partition that
    /// an insert had gone into before the purge began is either still the scope's or retired.
    #[test]
    fn a_returned_purge_leaves_no_live_partition_outside_the_map() {
        shuttle::check_random(
            || {
                let parts = Arc::new(Partitions::new());
                let scope = Scope::named("s");
                let inserted: Arc<Mutex<Vec<Arc<Partition>>>> = Arc::default();
                let writer = {
                    let (parts, scope, inserted) = (parts.clone(), scope.clone(), inserted.clone());
                    thread::spawn(move || {
                        for seq in 0..2u64 {
                            // As `Cache::insert_entry` does: retry until a partition takes it.
                            let p = loop {
                                let p = parts.get_or_create(&scope);
                                if p.insert(
                                    [seq as u8; 16],
                                    seq,
                                    crate::vector::half::narrow(&[1.0]),
                                )
                                .is_some()
                                {
                                    break p;
                                }
                            };
                            inserted.lock().unwrap().push(p);
                        }
                    })
                };
                let purgers: Vec<_> = (0..2)
                    .map(|_| {
                        let (parts, scope, inserted) =
                            (parts.clone(), scope.clone(), inserted.clone());
                        thread::spawn(move || {
                            let before = inserted.lock().unwrap().clone();
                            parts.remove(&scope);
                            let current = parts.get(&scope);
                            for p in &before {
                                let in_map = current.as_ref().is_some_and(|c| Arc::ptr_eq(c, p));
                                assert!(
                                    in_map || p.is_retired(),
                                    "a purge returned while a partition outside the map was live"
                                );
                            }
                        })
                    })
                    .collect();
                writer.join().unwrap();
                for p in purgers {
                    p.join().unwrap();
                }
            },
            20_000,
        );
    }

    /// An insert into a partition that is being retired either fails (the caller retries on the
    /// scope's next partition) or gets a generation the retirement then outdates: no entry can
    /// outlive its partition's retirement as servable.
    #[test]
    fn no_insert_survives_its_partitions_retirement() {
        shuttle::check_random(
            || {
                let p = Arc::new(Partition::new(Default::default()));
                let got = {
                    let p = p.clone();
                    thread::spawn(move || p.insert([1; 16], 1, crate::vector::half::narrow(&[1.0])))
                };
                let retirer = {
                    let p = p.clone();
                    thread::spawn(move || p.retire())
                };
                let got = got.join().unwrap();
                retirer.join().unwrap();
                if let Some(generation) = got {
                    let now = p.state.generation.load(std::sync::atomic::Ordering::SeqCst);
                    assert_ne!(
                        generation, now,
                        "an entry of a retired partition is still current"
                    );
                }
            },
            20_000,
        );
    }
}
