//! The five-minute tour: an exact hit, a paraphrase hit, a miss, scope isolation and the stats.
//!
//! Runs offline: it uses `HashEmbedder`, a lexical hashing embedder that ships with the crate.
//! Run it with `cargo run --release --example quickstart`.

use paracache::{Cache, Embedder, HashEmbedder, Lookup, Scope, Source};
use std::time::Instant;

fn main() -> Result<(), paracache::Error> {
    let embedder = HashEmbedder::new(384);
    println!(
        "embedder: {} — an offline *lexical* hashing embedder (word + character-trigram",
        embedder.model_id()
    );
    println!("          features); it matches rewordings that share words, not meaning. Plug in a");
    println!("          real sentence-embedding model for production.\n");

    let cache: Cache<String> = Cache::builder(embedder.dimension())
        .max_entries(10_000)
        .threshold(0.75)
        .build()?;
    let acme = Scope::builder()
        .tenant("acme")
        .model("gpt-4o-mini")
        .param("temperature", "0")
        .build();
    let embed = |t: &str| embedder.embed(t);

    // 1. A miss: ask the "model" (here a closure) and cache its answer.
    let answer = cache.get_or_insert_with(&acme, "How do I reset my password?", embed, || {
        Ok::<_, std::io::Error>("Open Settings > Security and choose Reset password.".to_string())
    })?;
    println!(
        "[{:>8}] How do I reset my password?\n           -> {}",
        answer.source().as_str(),
        answer.value()
    );

    // 2. The same prompt again (different whitespace): exact tier, no embedding computed.
    let t = Instant::now();
    let r = cache.lookup(&acme, "  How do I reset   my password? ", |_| {
        Err::<Vec<f32>, _>(std::io::Error::other("never called on an exact hit"))
    })?;
    report("  How do I reset   my password? ", &r, t);
    assert!(matches!(&r, Lookup::Hit(h) if h.source() == Source::Exact));

    // 3. A rewording: semantic tier.
    let t = Instant::now();
    let r = cache.lookup(&acme, "how can I reset my password", embed)?;
    report("how can I reset my password", &r, t);
    assert!(matches!(&r, Lookup::Hit(h) if h.source() == Source::Semantic));

    // 4. Something else: a miss, which hands back its embedding for the insert.
    let t = Instant::now();
    let r = cache.lookup(&acme, "What are your opening hours?", embed)?;
    report("What are your opening hours?", &r, t);
    assert!(!r.is_hit());
    if let Lookup::Miss(miss) = r {
        cache.insert_miss(miss, "9 to 5, Monday to Friday.".to_string())?;
    }

    // 5. Another tenant asking the very same question sees nothing of acme's.
    let globex = Scope::builder()
        .tenant("globex")
        .model("gpt-4o-mini")
        .param("temperature", "0")
        .build();
    let t = Instant::now();
    let r = cache.lookup(&globex, "How do I reset my password?", embed)?;
    report("(tenant globex) How do I reset my password?", &r, t);
    assert!(!r.is_hit(), "scopes must never leak");

    cache.run_pending_tasks();
    let s = cache.stats();
    println!(
        "\nstats: {} exact hits, {} semantic hits, {} misses, {} inserts, {} embed calls, {} entries, {} vectors indexed",
        s.exact_hits, s.semantic_hits, s.misses, s.inserts, s.embed_calls, s.entries, s.index_live
    );
    Ok(())
}

fn report(prompt: &str, r: &Lookup<String>, started: Instant) {
    let us = started.elapsed().as_secs_f64() * 1e6;
    match r.hit() {
        Some(h) => println!(
            "[{:>8}] {prompt}\n           -> {} (similarity {:.3}, matched \"{}\", {us:.1} µs)",
            h.source().as_str(),
            h.value(),
            h.similarity(),
            h.matched_prompt()
        ),
        None => println!(
            "[{:>8}] {prompt}\n           -> not cached ({us:.1} µs)",
            "miss"
        ),
    }
}
