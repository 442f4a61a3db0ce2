//! The two tiers behind a lookup: the exact key check, and the semantic search whose effort follows
//! the hit/miss decision.

use crate::alias::Alias;
use crate::cache::Cache;
use crate::clock::nanos;
use crate::entry::Entry;
use crate::key::Key;
use crate::outcome::{Hit, Lookup, Miss, Source};
use crate::relevance::{Analysis, PairFeatures, Rejection};
use crate::scope::Scope;
use crate::stats::Counters;
use crate::vector::SearchParams;
use crate::vector::chance_similarity;
use crate::vector::half::widen;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How many candidates the first search asks for; dead ones make it ask for more.
const FIRST_K: usize = 4;

/// Candidates at or above the threshold that the guards or the verifier may turn away in one
/// lookup before it is decided as a miss. Each costs a check (and the verifier a model call);
/// when this many close prompts in one scope all ask something else, a further one that does
/// not is unlikely, and a miss is always a safe answer.
pub(crate) const MAX_TURNED_AWAY: usize = 16;

impl<V> crate::cache::Inner<V> {
    /// The search effort in force (see [`Cache::set_search`]).
    pub(crate) fn search(&self) -> SearchParams {
        SearchParams::unpack(self.search.load(Ordering::Relaxed))
    }
}

impl<V: Send + Sync + 'static> Cache<V> {
    pub(crate) fn now(&self) -> u64 {
        nanos(self.inner.config.clock.now())
    }

    /// Tier 1. A stored entry answers only if its scope and prompt are the query's own: an MD5
    /// collision is a miss.
    pub(crate) fn exact_entry(
        &self,
        scope: &Scope,
        text: &str,
        key: &Key,
    ) -> Option<Arc<Entry<V>>> {
        let entry = self.read(key)?;
        if entry.scope != *scope || *entry.prompt != *text || !self.servable(&entry, self.now()) {
            return None;
        }
        Some(entry)
    }

    /// Tier 1 through an alias: this phrasing was served a semantic hit by an entry that is still
    /// the same live insert.
    pub(crate) fn alias_entry(
        &self,
        scope: &Scope,
        text: &str,
        key: &Key,
    ) -> Option<(Arc<Entry<V>>, f32)> {
        let alias = self.inner.aliases.as_ref()?.get(key, scope, text)?;
        let entry = self.read(&alias.target)?;
        if entry.seq != alias.seq || entry.scope != *scope || !self.servable(&entry, self.now()) {
            return None;
        }
        Some((entry, alias.similarity))
    }

    /// Tier 1 (the prompt itself, then an alias of it), counted.
    pub(crate) fn exact_hit(&self, scope: &Scope, text: &str, key: &Key) -> Option<Hit<V>> {
        let (entry, source, similarity) = match self.exact_entry(scope, text, key) {
            Some(entry) => (entry, Source::Exact, 1.0),
            None => {
                let (entry, similarity) = self.alias_entry(scope, text, key)?;
                Counters::bump(&self.inner.counters.alias_hits);
                (entry, Source::Alias, similarity)
            }
        };
        Counters::bump(&self.inner.counters.exact_hits);
        Some(Hit {
            entry,
            source,
            similarity,
        })
    }

    /// Tier 2, and the miss that follows it. Counts exactly one of semantic hit or miss.
    pub(crate) fn semantic_lookup(
        &self,
        scope: &Scope,
        text: Box<str>,
        key: Key,
        vector: Arc<[f32]>,
    ) -> Lookup<V> {
        let threshold = self.inner.config.threshold_for(scope);
        let mut rejected = None;
        if let Some((entry, similarity)) =
            self.semantic_search(scope, &text, &vector, threshold, &mut rejected)
        {
            Counters::bump(&self.inner.counters.semantic_hits);
            if let Some(aliases) = &self.inner.aliases {
                let alias = Alias {
                    scope: scope.clone(),
                    prompt: text,
                    target: entry.key,
                    seq: entry.seq,
                    similarity,
                };
                aliases.insert(key, alias);
            }
            return Lookup::Hit(Hit {
                entry,
                source: Source::Semantic,
                similarity,
            });
        }
        Counters::bump(&self.inner.counters.misses);
        Lookup::Miss(Miss {
            scope: scope.clone(),
            prompt: text,
            key,
            vector,
            rejected,
        })
    }

    /// Best servable entry at or above `threshold` that the guards and the verifier admit for
    /// `text`. Dead or turned-away candidates are skipped and, when they fill the whole window,
    /// the window grows, so they never hide a live, admissible neighbour behind them. The reason
    /// the first (most similar) turned-away candidate was turned away is left in `rejected`.
    pub(crate) fn semantic_search(
        &self,
        scope: &Scope,
        text: &str,
        query: &[f32],
        threshold: f32,
        rejected: &mut Option<Rejection>,
    ) -> Option<(Arc<Entry<V>>, f32)> {
        let partition = self.inner.partitions.get(scope)?;
        let segment = partition.segment();
        let (live, dead) = segment.counts();
        let total = live + dead;
        if live == 0 {
            return None;
        }
        let search = self.inner.search();
        let now = self.now();
        let mut k = FIRST_K.min(total);
        let mut ef = if segment.has_graph() {
            search.ef_probe
        } else {
            search.ef_search
        };
        let mut searcher = segment.searcher(query);
        let mut analysis = None;
        // Turned-away candidates, by insert, so a grown window does not check them again.
        let mut turned_away: Vec<u64> = Vec::new();
        loop {
            let found = searcher.find(k, ef, threshold);
            for c in &found.candidates {
                if turned_away.contains(&c.seq) {
                    continue;
                }
                let Some(entry) = self
                    .read(&c.key)
                    .filter(|e| e.seq == c.seq && e.scope == *scope && self.servable(e, now))
                else {
                    continue;
                };
                match self.admits(text, query, &mut analysis, &entry, c.similarity) {
                    Ok(()) => return Some((entry, c.similarity)),
                    Err(why) => {
                        rejected.get_or_insert(why);
                    }
                }
                turned_away.push(c.seq);
                if turned_away.len() >= MAX_TURNED_AWAY {
                    return None;
                }
            }
            let window_all_above = found.raw_len == k && found.raw_worst >= threshold;
            if window_all_above && k < total {
                k = (k * 4).min(total);
                ef = ef.max(k);
                continue;
            }
            // A probe's hit is a hit at any width, but its miss may be a beam that never reached
            // the right region: as a rule the full beam decides a miss. The walk goes on from
            // where the probe stopped.
            if segment.has_graph() && ef < search.ef_search {
                // Unless the probe ended far from anything servable, yet clearly among related
                // prompts: a prompt unlike every stored one, whose best match a wider beam would
                // not lift over the threshold. A probe whose best is no better than chance may
                // just be lost in an unrelated region (a wrong cluster), so it widens.
                if ef == search.ef_probe
                    && found.raw_best < threshold - search.miss_margin
                    && found.raw_best > chance_similarity(query.len())
                {
                    Counters::bump(&self.inner.counters.probe_misses);
                    return None;
                }
                ef = search.ef_search;
                continue;
            }
            return None;
        }
    }

    /// Whether the guards, then the pair check, then (in its band) the verifier, let `matched`
    /// answer `text`; `Err` says which turned it away. The query is analysed once per lookup, at
    /// its first candidate.
    fn admits(
        &self,
        text: &str,
        query: &[f32],
        analysis: &mut Option<Analysis>,
        entry: &Entry<V>,
        similarity: f32,
    ) -> Result<(), Rejection> {
        let matched: &str = &entry.prompt;
        let config = &self.inner.config;
        let counters = &self.inner.counters;
        let check = config.pair_check.as_ref();
        if !config.guards.is_none() || check.is_some() {
            let read = |p: &str| Analysis::read(p, config.guards, check.is_some());
            let read_query = analysis.get_or_insert_with(|| read(text));
            let candidate = read(matched);
            if let Err(guard) = config.guards.check_analysed(read_query, &candidate) {
                Counters::bump(&counters.guard_rejections);
                return Err(Rejection::Guard(guard));
            }
            if let Some(check) = check {
                let features = PairFeatures::of_analyses(read_query, &candidate, similarity);
                if let Err(why) = check.check_features(&features, query, &widen(&entry.vector)) {
                    Counters::bump(&counters.pair_check_rejections);
                    return Err(Rejection::PairCheck(why));
                }
            }
        }
        if let Some(band) = config.verify.as_ref().filter(|b| b.covers(similarity)) {
            Counters::bump(&counters.verifier_calls);
            if !band.verifier.verify(text, matched, similarity) {
                Counters::bump(&counters.verifier_rejections);
                return Err(Rejection::Verifier);
            }
        }
        Ok(())
    }
}
