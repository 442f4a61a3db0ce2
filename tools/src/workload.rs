//! Synthetic workload shared by the criterion benches and the bench tools: clustered 384-d unit
//! vectors, so a paraphrase's nearest neighbour is a real entry, and ~200-byte prompts.
//!
//! Clusters of [`PER_CLUSTER`] points around random centres, each point the centre plus uniform
//! noise of [`SPREAD`] per coordinate: points of a cluster are at cosine ~0.95 of each other and
//! ~0 of every other cluster, which gives a graph search no gradient until it reaches the right
//! cluster (the hard case for HNSW).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Dimension of all-MiniLM-L6-v2, the most common small sentence embedder.
pub const DIM: usize = 384;
/// Points per cluster.
pub const PER_CLUSTER: usize = 10;
/// Per-coordinate noise of a cluster member around its centre.
pub const SPREAD: f32 = 0.02;
/// Noise that puts a query at cosine ~0.99 of the point it paraphrases: a clear hit at 0.90.
pub const CLEAR_PARAPHRASE: f32 = 0.01;
/// Noise that puts a query at cosine ~0.90 of the point it paraphrases (noise std 0.043/sqrt(3)
/// against a coordinate std of 1/sqrt(384)): decisions at the default threshold are close calls.
pub const NEAR_THRESHOLD: f32 = 0.043;

/// Scale to unit length.
pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// A uniformly random direction.
pub fn random_unit(rng: &mut StdRng) -> Vec<f32> {
    unit((0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
}

/// `v` plus uniform noise of `scale` per coordinate, renormalized.
pub fn jitter(rng: &mut StdRng, v: &[f32], scale: f32) -> Vec<f32> {
    unit(
        v.iter()
            .map(|x| x + scale * rng.gen_range(-1.0f32..1.0))
            .collect(),
    )
}

/// A ~200-byte prompt, distinct per `i`.
pub fn prompt(i: usize) -> String {
    let mut p = format!("Question {i}: please explain, with examples, ");
    while p.len() < 200 {
        p.push_str("how the cache answers repeated and paraphrased prompts quickly; ");
    }
    p.truncate(200);
    p
}

/// `n` clustered unit vectors (rounded down to whole clusters), deterministic in `seed`.
pub fn clustered(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..n / PER_CLUSTER)
        .map(|_| random_unit(&mut rng))
        .collect();
    centres
        .iter()
        .flat_map(|c| {
            (0..PER_CLUSTER)
                .map(|_| jitter(&mut rng, c, SPREAD))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Exact scan: index and cosine of the best of `data` for unit `query` (simsimd dot, the same
/// kernel the cache uses, so the baseline is as fast as a scan gets).
pub fn brute_force(data: &[Vec<f32>], query: &[f32]) -> (usize, f32) {
    use simsimd::SpatialSimilarity;
    data.iter()
        .enumerate()
        .map(|(i, v)| {
            (
                i,
                <f32 as SpatialSimilarity>::dot(query, v).unwrap_or(0.0) as f32,
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, -1.0))
}

/// Insert `data[i]` under [`prompt`]`(i)` with value `i` into the global scope, from all cores
/// (graph inserts dominate and hnsw_rs takes them concurrently), then compact. `after_each` runs
/// after every insert (the stress runner advances its clock there, to spread entry ages).
/// `progress`, when given, counts the inserts (tools pass one; benches stay quiet).
pub fn fill(
    cache: &paracache::Cache<usize>,
    data: &[Vec<f32>],
    after_each: &(dyn Fn() + Sync),
    progress: Option<&crate::progress::Progress>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let scope = paracache::Scope::global();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(v) = data.get(i) else { break };
                    cache
                        .insert(&scope, &prompt(i), v.clone(), i)
                        .expect("valid entry");
                    after_each();
                    if let Some(p) = progress {
                        p.add(1);
                    }
                }
            });
        }
    });
    if let Some(p) = progress {
        p.note("all inserted; compacting (waits for graph builds) ...");
    }
    cache.compact();
}

/// Queries whose hit/miss decision at `threshold` is known from an exact scan over `data`: a third
/// near the threshold, a third clear paraphrases, a third novel. Built once, then run against any
/// cache filled with `data` by [`fill`].
pub struct DecisionCheck {
    threshold: f32,
    queries: Vec<Vec<f32>>,
    /// Best index into `data` and its cosine, per query.
    truth: Vec<(usize, f32)>,
    /// The exact scan's latency per query, sorted (ns): the baseline of the same run.
    pub scan_ns: Vec<u64>,
}

/// How a cache's decisions compared with the exact scan's.
pub struct CheckReport {
    /// Share of queries whose hit/miss decision equals the scan's.
    pub agreement: f64,
    /// Share of agreed hits that returned the scan's best entry.
    pub recall_at_1: f64,
    /// Lookup latency per query, sorted (ns).
    pub lookup_ns: Vec<u64>,
}

impl DecisionCheck {
    /// `count` queries around `data` (seeded by `seed`), each decided by an exact scan at
    /// `threshold`; the scan is timed as it goes.
    pub fn new(data: &[Vec<f32>], count: usize, seed: u64, threshold: f32) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let queries: Vec<Vec<f32>> = (0..count)
            .map(|k| {
                let i = rng.gen_range(0..data.len());
                match k % 3 {
                    0 => jitter(&mut rng, &data[i], NEAR_THRESHOLD),
                    1 => jitter(&mut rng, &data[i], CLEAR_PARAPHRASE),
                    _ => random_unit(&mut rng),
                }
            })
            .collect();
        Self::with_queries(data, queries, threshold)
    }

    /// Given queries, each decided by an exact scan of `data` at `threshold` (timed).
    pub fn with_queries(data: &[Vec<f32>], queries: Vec<Vec<f32>>, threshold: f32) -> Self {
        let mut scan_ns = Vec::with_capacity(queries.len());
        let truth = queries
            .iter()
            .map(|q| {
                let t = std::time::Instant::now();
                let best = brute_force(data, q);
                scan_ns.push(t.elapsed().as_nanos() as u64);
                best
            })
            .collect();
        scan_ns.sort_unstable();
        DecisionCheck {
            threshold,
            queries,
            truth,
            scan_ns,
        }
    }

    /// Queries in the check.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the check has no queries.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Queries whose best cosine is within 0.02 of the threshold: the close calls.
    pub fn near_threshold(&self) -> usize {
        self.truth
            .iter()
            .filter(|(_, s)| (s - self.threshold).abs() < 0.02)
            .count()
    }

    /// Queries the scan answers with a hit.
    pub fn expected_hits(&self) -> usize {
        self.truth
            .iter()
            .filter(|(_, s)| *s >= self.threshold)
            .count()
    }

    /// Look every query up in `cache` (global scope, values are indices into the data) on this
    /// thread and compare with the scan.
    pub fn run(&self, cache: &paracache::Cache<usize>) -> CheckReport {
        let scope = paracache::Scope::global();
        let (mut agree, mut hits, mut r1) = (0usize, 0usize, 0usize);
        let mut lookup_ns = Vec::with_capacity(self.queries.len());
        for (q, &(best, sim)) in self.queries.iter().zip(&self.truth) {
            let t = std::time::Instant::now();
            let r = cache
                .lookup(&scope, "check", |_| {
                    Ok::<_, std::convert::Infallible>(q.clone())
                })
                .expect("valid query");
            lookup_ns.push(t.elapsed().as_nanos() as u64);
            let truth = sim >= self.threshold;
            agree += usize::from(r.is_hit() == truth);
            if let (Some(h), true) = (r.hit(), truth) {
                hits += 1;
                r1 += usize::from(*h.value() == best);
            }
        }
        lookup_ns.sort_unstable();
        CheckReport {
            agreement: agree as f64 / self.queries.len().max(1) as f64,
            recall_at_1: r1 as f64 / hits.max(1) as f64,
            lookup_ns,
        }
    }
}
