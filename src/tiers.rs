//! The two tiers behind a lookup: the exact key check, and the semantic search whose effort follows
//! the hit/miss decision.

use crate::alias::Alias;
use crate::cache::Cache;
use crate::clock::nanos;
use crate::entry::Entry;
use crate::key::Key;
use crate::outcome::{Hit, Lookup, Miss, Source};
use crate::relevance::Analysis;
use crate::scope::Scope;
use crate::stats::Counters;
use crate::vector::SearchParams;
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
        if let Some((entry, similarity)) = self.semantic_search(scope, &text, &vector, threshold) {
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
        })
    }

    /// Best servable entry at or above `threshold` that the guards and the verifier admit for
    /// `text`. Dead or turned-away candidates are skipped and, when they fill the whole window,
    /// the window grows, so they never hide a live, admissible neighbour behind them.
    pub(crate) fn semantic_search(
        &self,
        scope: &Scope,
        text: &str,
        query: &[f32],
        threshold: f32,
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
                if self.admits(text, &mut analysis, &entry.prompt, c.similarity) {
                    return Some((entry, c.similarity));
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
            // the right region: only the full beam may decide a miss. The walk goes on from
            // where the probe stopped.
            if segment.has_graph() && ef < search.ef_search {
                ef = search.ef_search;
                continue;
            }
            return None;
        }
    }

    /// Whether the guards, then (in its band) the verifier, let `matched` answer `text`. The
    /// query is analysed once per lookup, at its first candidate.
    fn admits(
        &self,
        text: &str,
        analysis: &mut Option<Analysis>,
        matched: &str,
        similarity: f32,
    ) -> bool {
        let config = &self.inner.config;
        let counters = &self.inner.counters;
        if !config.guards.is_none() {
            let query = analysis.get_or_insert_with(|| Analysis::of(text, config.guards));
            let candidate = Analysis::of(matched, config.guards);
            if config.guards.check_analysed(query, &candidate).is_err() {
                Counters::bump(&counters.guard_rejections);
                return false;
            }
        }
        if let Some(band) = config.verify.as_ref().filter(|b| b.covers(similarity)) {
            Counters::bump(&counters.verifier_calls);
            if !band.verifier.verify(text, matched, similarity) {
                Counters::bump(&counters.verifier_rejections);
                return false;
            }
        }
        true
    }
}
