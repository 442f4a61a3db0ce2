//! Operation sequences decoded from bytes (insert, lookup, invalidate, invalidate scope, clear,
//! save-and-load, advance time), run against the cache and a reference model (a map plus
//! an exact scan). Scopes stay below the exact scan limit, so the semantic tier is exact and the cache
//! must agree with the model on every hit *and* miss, except for similarities within [`NEAR`] of
//! the threshold. Shared by the cargo-fuzz target and by `tests/it/fuzz_corpus.rs`.

use paracache::{Cache, Error, Guards, Lookup, MockClock, Scope, Source};
use std::collections::HashMap;
use std::time::Duration;

const DIM: usize = 4;
const THRESHOLD: f32 = 0.9;
/// How far the cache's cosine may lie from the model's f32 one: the cache stores vectors at half
/// precision, and reports a cosine within 2^-11 of the f32 one (src/vector/half.rs); 1e-4 more
/// covers the f32 arithmetic.
const NEAR: f32 = 1.0 / 2048.0 + 1e-4;
const TTL: u64 = 10;

struct Model {
    /// (scope, normalized prompt) -> (value, unit vector, inserted at second)
    live: HashMap<(u8, String), (u32, Vec<f32>, u64)>,
    now: u64,
}

impl Model {
    fn alive(&self, at: u64) -> bool {
        self.now < at + TTL
    }
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
}

fn vector(code: u8) -> Vec<f32> {
    // A few special vectors (invalid or near-duplicates) and a spread of directions.
    match code % 16 {
        0 => vec![0.0; DIM],
        1 => vec![f32::NAN, 1.0, 0.0, 0.0],
        2 => vec![1.0, f32::INFINITY, 0.0, 0.0],
        3 => vec![1.0, 0.0, 0.0],
        4 => vec![1e-39, 0.0, 0.0, 0.0],
        c => {
            let a = f32::from(c) * 0.37 + f32::from(code / 16) * 0.05;
            vec![a.cos(), a.sin(), (a * 0.5).cos() * 0.3, 0.1]
        }
    }
}

fn unit(v: &[f32]) -> Option<Vec<f32>> {
    if v.len() != DIM || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let n = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    (n.is_normal()).then(|| v.iter().map(|&x| (f64::from(x) / n) as f32).collect())
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn prompt(code: u8) -> String {
    match code % 8 {
        0 => String::new(),
        1 => "  ".into(),
        c => format!(" prompt\t{} ", c % 6),
    }
}

pub(crate) fn check(data: &[u8]) {
    let clock = MockClock::new();
    let builder = || {
        Cache::<u32>::builder(DIM)
            .max_entries(10_000)
            .threshold(THRESHOLD)
            .time_to_live(Duration::from_secs(TTL))
            .clock(clock.clone())
            // The model decides hits by vector alone, and the same text may come with another
            // vector here, which no real embedder does: guards and aliases have their own tests.
            .guards(Guards::none())
            .alias_hits(false)
    };
    let mut cache = builder().build().unwrap();
    let scopes: Vec<Scope> = (0..3).map(|i| Scope::named([i])).collect();
    let mut model = Model {
        live: HashMap::new(),
        now: 0,
    };
    let mut bytes = Bytes(data);
    let mut next_value = 0u32;
    while let (Some(op), Some(a), Some(b)) = (bytes.next(), bytes.next(), bytes.next()) {
        let s = a % 3;
        let scope = &scopes[s as usize];
        let text = prompt(a / 3);
        let norm = paracache::normalize(&text).into_owned();
        match op % 8 {
            0..=2 => {
                next_value += 1;
                let v = vector(b);
                let r = cache.insert(scope, &text, v.clone(), next_value);
                match (norm.is_empty(), unit(&v)) {
                    (true, _) => assert_eq!(r.unwrap_err(), Error::EmptyPrompt),
                    (false, None) => assert!(r.is_err()),
                    (false, Some(u)) => {
                        r.unwrap();
                        model.live.insert((s, norm), (next_value, u, model.now));
                    }
                }
            }
            3 | 4 => {
                let v = vector(b);
                let r = cache.lookup(scope, &text, |_| Ok::<_, std::io::Error>(v.clone()));
                let exact = model
                    .live
                    .get(&(s, norm.clone()))
                    .filter(|e| model.alive(e.2));
                match r {
                    Err(_) => assert!(norm.is_empty() || (exact.is_none() && unit(&v).is_none())),
                    Ok(Lookup::Hit(hit)) => {
                        let key = (s, hit.matched_prompt().to_string());
                        let (value, stored, at) = model
                            .live
                            .get(&key)
                            .expect("served an entry the model does not hold");
                        assert!(model.alive(*at), "served an expired entry");
                        assert_eq!(hit.value(), value, "served a stale or foreign value");
                        assert_eq!(hit.scope(), scope);
                        match hit.source() {
                            Source::Exact => assert_eq!(hit.matched_prompt(), norm),
                            _ => {
                                assert!(
                                    exact.is_none(),
                                    "a live exact entry lost to the semantic tier"
                                );
                                let q = unit(&v).expect("semantic hit for an invalid vector");
                                assert!(cos(&q, stored) >= THRESHOLD - NEAR);
                            }
                        }
                    }
                    Ok(Lookup::Miss(_)) => {
                        assert!(exact.is_none(), "exact entry missed");
                        let q = unit(&v).expect("a miss carries a valid vector");
                        let best = model
                            .live
                            .iter()
                            .filter(|((ms, _), e)| *ms == s && model.alive(e.2))
                            .map(|(_, e)| cos(&q, &e.1))
                            .fold(f32::MIN, f32::max);
                        assert!(best < THRESHOLD + NEAR, "missed a live neighbour at {best}");
                    }
                    Ok(_) => unreachable!("a lookup answers a hit or a miss"),
                }
            }
            5 => {
                let removed = cache.invalidate(scope, &text);
                let had = model.live.remove(&(s, norm)).is_some();
                // An expired entry may already be gone from the store.
                assert!(removed <= had);
            }
            6 => {
                if b % 4 == 0 {
                    cache.clear();
                    model.live.clear();
                } else if b % 4 == 1 {
                    // Restart from a snapshot: the model is unchanged (expired entries are not
                    // loaded, and the model never serves them either).
                    let bytes = cache.to_snapshot_bytes().unwrap();
                    cache = builder().build_from_snapshot_bytes(&bytes).unwrap().0;
                } else {
                    cache.invalidate_scope(scope);
                    model.live.retain(|(ms, _), _| *ms != s);
                }
            }
            _ => {
                let secs = u64::from(b % 8);
                clock.advance(Duration::from_secs(secs));
                model.now += secs;
            }
        }
    }
}
