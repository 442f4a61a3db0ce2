//! The semantic tier's hit/miss decisions against an exact scan, on clustered data where
//! paraphrase hits are real nearest neighbours, and dead candidates that must not hide live ones.

use crate::support::{self, brute_best, clustered, fixed, jitter, random_unit};
use paracache::{Cache, CacheBuilder, GraphEngine, Guards, Scope};

const DIM: usize = 48;
const THRESHOLD: f32 = 0.90;

/// `builder` with the settings every test here shares (threshold, graph above 256 entries,
/// inline rebuilds), holding `data[i]` under prompt `p{i}` with value `i`, graphs built.
fn filled_graph_cache(builder: CacheBuilder<usize>, data: &[Vec<f32>]) -> Cache<usize> {
    let cache = builder
        .max_entries(100_000)
        .threshold(THRESHOLD)
        .exact_scan_limit(256)
        .background_rebuild(false)
        .build()
        .unwrap();
    let s = Scope::global();
    for (i, v) in data.iter().enumerate() {
        cache.insert(&s, &format!("p{i}"), v.clone(), i).unwrap();
    }
    cache.compact();
    cache
}

/// Builds a graph-backed cache over `data` and compares decisions for paraphrase and novel queries.
fn decisions_match_exact_scan(seed: u64, adaptive: bool, engine: GraphEngine) {
    let data = clustered(seed, 1_000, 8, DIM, 0.06);
    let cache = filled_graph_cache(
        Cache::builder(DIM)
            .adaptive_search(adaptive)
            .graph_engine(engine)
            .guards(Guards::none()),
        &data,
    );
    assert_eq!(cache.graph_engine(), engine);
    assert!(cache.stats().rebuilds > 0, "promoted to a graph");
    let s = Scope::global();
    let mut rng = support::rng(seed ^ 0xabc);
    let (mut agree, mut hits, mut top1, mut n, mut close) = (0, 0, 0, 0, 0);
    for q in 0..2_000 {
        let query = if q % 2 == 0 {
            // A paraphrase of a stored prompt, at a distance that puts many near the threshold.
            let scale = 0.03 + 0.10 * (q % 11) as f32 / 10.0;
            jitter(&mut rng, &data[(q * 7919) % data.len()], scale)
        } else {
            random_unit(&mut rng, DIM) // something new
        };
        let best = brute_best(&data, |_| true, &query);
        if best.is_some_and(|b| (b.1 - THRESHOLD).abs() < 0.03) {
            close += 1;
        }
        let truth = best.filter(|b| b.1 >= THRESHOLD);
        let got = cache
            .lookup(&s, &format!("query {q}"), fixed(&query))
            .unwrap();
        n += 1;
        if let Some(hit) = got.hit() {
            assert!(hit.similarity() >= THRESHOLD, "served below threshold");
            let true_sim = support::cos(&data[*hit.value()], &query);
            // Stored vectors are half precision: each component within 2^-11 of itself, so
            // for unit vectors the cosine is within 2^-11 (Cauchy-Schwarz), plus f32 rounding.
            assert!(
                (true_sim - hit.similarity()).abs() <= 1.0 / 2048.0 + 1e-6,
                "reported similarity is the query's cosine with the stored vector"
            );
        }
        if got.is_hit() == truth.is_some() {
            agree += 1;
        }
        if let (Some(hit), Some((best, _))) = (got.hit(), truth) {
            hits += 1;
            if *hit.value() == best {
                top1 += 1;
            }
        }
    }
    let agreement = agree as f64 / n as f64;
    let recall1 = top1 as f64 / hits.max(1) as f64;
    eprintln!(
        "seed {seed} adaptive {adaptive} {engine:?}: agreement {agreement:.4}, recall@1 on hits {recall1:.4} ({hits} hits, {close} queries within 0.03 of the threshold)"
    );
    assert!(hits > 300, "the workload must exercise hits: {hits}");
    assert!(
        close > 200,
        "the workload must exercise near-threshold decisions: {close}"
    );
    assert!(
        agreement >= 0.99,
        "decision agreement {agreement} (seed {seed})"
    );
    assert!(recall1 >= 0.97, "recall@1 {recall1} (seed {seed})");
}

#[test]
fn graph_decisions_match_exact_scan_adaptive() {
    decisions_match_exact_scan(7, true, GraphEngine::Links);
}

#[test]
fn graph_decisions_match_exact_scan_full_ef() {
    decisions_match_exact_scan(11, false, GraphEngine::Links);
}

#[test]
fn hnsw_rs_graph_decisions_match_exact_scan() {
    decisions_match_exact_scan(7, true, GraphEngine::HnswRs);
    decisions_match_exact_scan(11, false, GraphEngine::HnswRs);
}

/// Kill the nearest neighbours of a query in a graph partition: the live one behind them is found.
#[test]
fn dead_neighbours_never_hide_a_live_one() {
    for exact_scan_limit in [10_000, 64] {
        let mut rng = support::rng(42);
        let centre = random_unit(&mut rng, DIM);
        let cache: Cache<usize> = Cache::builder(DIM)
            .guards(Guards::none())
            .threshold(0.8)
            .exact_scan_limit(exact_scan_limit)
            .max_dead_ratio(0.9) // keep the tombstones in the graph for this test
            .background_rebuild(false)
            .build()
            .unwrap();
        let s = Scope::global();
        // Background noise far away, then 40 points near the centre; the farthest of those stays live.
        for i in 0..400 {
            cache
                .insert(
                    &s,
                    &format!("noise{i}"),
                    random_unit(&mut rng, DIM),
                    10_000 + i,
                )
                .unwrap();
        }
        let mut near: Vec<(usize, Vec<f32>)> = (0..40)
            .map(|i| (i, jitter(&mut rng, &centre, 0.01 + 0.002 * i as f32)))
            .collect();
        near.sort_by(|a, b| support::cos(&b.1, &centre).total_cmp(&support::cos(&a.1, &centre)));
        for (i, v) in &near {
            cache
                .insert(&s, &format!("near{i}"), v.clone(), *i)
                .unwrap();
        }
        cache.compact();
        let survivor = near.last().unwrap().0;
        for (i, _) in &near[..near.len() - 1] {
            assert!(cache.invalidate(&s, &format!("near{i}")));
        }
        let hit = cache.lookup(&s, "centre", fixed(&centre)).unwrap();
        let hit = hit.hit().unwrap_or_else(|| {
            panic!("live neighbour hidden (exact_scan_limit {exact_scan_limit})")
        });
        assert_eq!(*hit.value(), survivor);
        cache.run_pending_tasks();
        assert!(cache.stats().index_dead >= 39 || exact_scan_limit == 10_000);
    }
}

/// A graph cache (beam 1) of 4 000 uniformly random 64-d vectors, the hardest case for HNSW, and
/// 400 close paraphrases of stored ones, each with the value it should find.
fn random_graph_with_paraphrases(seed: u64) -> (Cache<usize>, Vec<(usize, Vec<f32>)>) {
    let dim = 64;
    let mut rng = support::rng(seed);
    let data: Vec<Vec<f32>> = (0..4_000).map(|_| random_unit(&mut rng, dim)).collect();
    let builder = Cache::builder(dim)
        .hnsw(8, 32, 1)
        .adaptive_search(false)
        .guards(Guards::none())
        .alias_hits(false); // every query is the same text: only its vector differs
    let cache = filled_graph_cache(builder, &data);
    let queries = (0..400)
        .map(|k| (k * 10, jitter(&mut rng, &data[k * 10], 0.01)))
        .collect();
    (cache, queries)
}

/// A unit vector at cosine `c` to unit `v`: `v` turned towards a random direction orthogonal
/// to it.
fn at_cosine(rng: &mut rand::rngs::StdRng, v: &[f32], c: f32) -> Vec<f32> {
    let r = random_unit(rng, v.len());
    let along: f32 = r.iter().zip(v).map(|(a, b)| a * b).sum();
    let o: Vec<f32> = r.iter().zip(v).map(|(a, b)| a - along * b).collect();
    let n = o.iter().map(|x| x * x).sum::<f32>().sqrt();
    let s = (1.0 - c * c).sqrt();
    v.iter().zip(&o).map(|(a, b)| c * a + s * b / n).collect()
}

/// How many of `queries` hit the entry they paraphrase.
fn paraphrases_found(cache: &Cache<usize>, queries: &[(usize, Vec<f32>)]) -> usize {
    queries
        .iter()
        .filter(|(i, q)| {
            let r = cache
                .lookup(&Scope::global(), "a paraphrase", fixed(q))
                .unwrap();
            r.hit().is_some_and(|h| *h.value() == *i)
        })
        .count()
}

/// `set_search` changes the effort of a running cache: a beam of 1 misses some paraphrases of
/// stored prompts in a graph of hard (uniformly random) vectors; a wide beam finds them all.
#[test]
fn search_effort_can_be_changed_at_run_time() {
    let (cache, queries) = random_graph_with_paraphrases(21);
    let narrow = paraphrases_found(&cache, &queries);
    cache.set_search(256, false).unwrap();
    let wide = paraphrases_found(&cache, &queries);
    assert_eq!(wide, queries.len(), "a wide beam finds every paraphrase");
    assert!(narrow < wide, "beam 1 found {narrow} of {wide}");
    assert!(cache.set_search(5_000, true).is_err());
    assert_eq!(
        paraphrases_found(&cache, &queries),
        wide,
        "a rejected change changes nothing"
    );
}

/// Adaptive search serves what its cheap probe finds, but never lets the probe decide a miss:
/// a probe that finds nothing goes on to the full beam.
#[test]
fn adaptive_search_decides_misses_at_the_full_beam() {
    let (cache, queries) = random_graph_with_paraphrases(23);
    let found = |ef: usize, adaptive: bool| {
        cache.set_search(ef, adaptive).unwrap();
        paraphrases_found(&cache, &queries)
    };
    // An adaptive search at 40 probes at 10.
    let probe_alone = found(10, false);
    let full = found(40, false);
    let adaptive = found(40, true);
    assert!(
        probe_alone < full,
        "the probe alone finds {probe_alone} of {full}"
    );
    assert!(
        adaptive * 100 >= full * 99,
        "adaptive found {adaptive}, the full beam {full}"
    );
}

/// With a miss margin, a probe ending that far below the threshold, but clearly above chance,
/// decides a miss alone: a prompt unlike anything stored costs one probe. A probe no better
/// than chance (lost, or a prompt unrelated to everything) still widens. A margin of 2 never
/// lets a probe decide.
#[test]
fn the_miss_margin_lets_a_far_probe_decide_a_miss() {
    let (cache, queries) = random_graph_with_paraphrases(23);
    cache.set_search(40, true).unwrap();
    let mut rng = support::rng(5);
    // Related but not servable: cosine 0.7 to a paraphrase query, so ~0.7 to its stored vector
    // (at 64-d chance is 0.625, and the threshold 0.9). Unrelated: uniformly random, whose best
    // of 4 000 stored is near 0.45, below chance.
    let related: Vec<Vec<f32>> = (0..200)
        .map(|k| at_cosine(&mut rng, &queries[k].1, 0.7))
        .collect();
    let unrelated: Vec<Vec<f32>> = (0..200).map(|_| random_unit(&mut rng, 64)).collect();
    let hits = |qs: &[Vec<f32>]| {
        qs.iter()
            .filter(|q| {
                let r = cache.lookup(&Scope::global(), "new", fixed(q)).unwrap();
                r.is_hit()
            })
            .count()
    };
    let full = paraphrases_found(&cache, &queries);
    cache.set_adaptive_miss_margin(2.0).unwrap();
    assert_eq!(hits(&related) + hits(&unrelated), 0);
    assert_eq!(
        cache.stats().probe_misses,
        0,
        "a margin of 2 never decides on the probe"
    );

    cache.set_adaptive_miss_margin(0.15).unwrap();
    let before = cache.stats().probe_misses;
    assert_eq!(hits(&related), 0);
    let decided = cache.stats().probe_misses - before;
    // A probe of 10 on random 64-d vectors does not always reach the related one; one that
    // does not ends near chance and widens.
    assert!(
        decided >= 100,
        "{decided} of 200 related prompts decided by their probe"
    );
    let before = cache.stats().probe_misses;
    assert_eq!(hits(&unrelated), 0);
    assert_eq!(
        cache.stats().probe_misses - before,
        0,
        "a probe no better than chance widens"
    );
    // Close paraphrases are hits the probe finds, or misses the full beam decides as before.
    assert!(paraphrases_found(&cache, &queries) <= full);
    assert!(cache.set_adaptive_miss_margin(2.5).is_err());
    assert!(cache.set_adaptive_miss_margin(-0.1).is_err());
}
