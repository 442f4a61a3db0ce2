//! The scope -> partition map, sharded so lookups in different scopes do not share a lock, and the
//! maintenance that decides when a partition is rebuilt or dropped.

use crate::scope::Scope;
use crate::stats::Counters;
use crate::vector::IndexParams;
use crate::vector::partition::{Partition, Rebuild};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

const SHARDS: usize = 16;

type Shard = RwLock<HashMap<Scope, Arc<Partition>>>;

pub(crate) struct Partitions {
    shards: Box<[Shard]>,
}

impl Partitions {
    pub(crate) fn new() -> Self {
        Partitions {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
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
            .or_insert_with(|| Arc::new(Partition::new()))
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
    pub(crate) fn totals(&self) -> (u64, u64) {
        let mut live = 0;
        let mut dead = 0;
        for shard in self.shards.iter() {
            for p in shard.read().values() {
                let (l, d) = p.segment().counts();
                live += l as u64;
                dead += d as u64;
            }
        }
        (live, dead)
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
        let wanted = p.wanted_rebuild(params);
        if wanted != Rebuild::None && p.claim_rebuild() {
            let heavy = wanted == Rebuild::Promote || p.segment().has_graph();
            if params.background && heavy {
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
