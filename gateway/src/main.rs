//! An OpenAI-compatible caching proxy built on paracache.
//!
//! ```text
//! cargo run --release --example gateway -- --upstream http://127.0.0.1:8000/v1
//! curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"m","messages":[{"role":"user","content":"How do I reset my password?"}]}' -i
//! ```
//!
//! Flags (defaults in brackets): `--listen ADDR` [127.0.0.1:8080], `--upstream URL`
//! [http://127.0.0.1:8000/v1], `--model-dir DIR` (a sentence-embedding model, feature `bert`),
//! `--threshold T` [0.85 lexical, 0.90 with a model], `--max-temperature T` [1.0],
//! `--max-entries N` [100000], `--ttl-secs S` [86400], `--timeout-secs S` [120] (the longest
//! silence from the upstream, before its answer or within a stream),
//! `--snapshot PATH` (load on start when the file exists, save on shutdown).
//!
//! Without `--model-dir` the embedder is paracache's offline, lexical `HashEmbedder`, so the
//! gateway runs with nothing to download: it matches rewordings that share most words, not
//! paraphrases in general, at its own threshold of 0.85. With `--model-dir` (built with
//! `--features bert`; `.ci/fetch-model` fetches all-MiniLM-L6-v2) it matches paraphrases, at the
//! crate's default threshold for that model.
//! The keying policy is in policy.rs; the routes in app.rs.

mod app;
mod completion;
mod metrics;
mod policy;
mod upstream;

use paracache::{Cache, Embedder, HashEmbedder};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct Args {
    listen: String,
    upstream: String,
    model_dir: Option<PathBuf>,
    threshold: Option<f32>,
    max_temperature: f64,
    max_entries: u64,
    ttl: Duration,
    timeout: Duration,
    snapshot: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        listen: "127.0.0.1:8080".into(),
        upstream: "http://127.0.0.1:8000/v1".into(),
        model_dir: None,
        threshold: None,
        max_temperature: 1.0,
        max_entries: 100_000,
        ttl: Duration::from_secs(86_400),
        timeout: Duration::from_secs(120),
        snapshot: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--listen" => a.listen = value.clone(),
            "--upstream" => a.upstream = value.clone(),
            "--model-dir" => a.model_dir = Some(PathBuf::from(&value)),
            "--threshold" => a.threshold = Some(value.parse().map_err(|_| bad())?),
            "--max-temperature" => a.max_temperature = value.parse().map_err(|_| bad())?,
            "--max-entries" => a.max_entries = value.parse().map_err(|_| bad())?,
            "--ttl-secs" => a.ttl = Duration::from_secs(value.parse().map_err(|_| bad())?),
            "--timeout-secs" => a.timeout = Duration::from_secs(value.parse().map_err(|_| bad())?),
            "--snapshot" => a.snapshot = Some(value.clone()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = parse_args()?;
    let (embedder, threshold): (Arc<dyn Embedder>, f32) = match &args.model_dir {
        None => (Arc::new(HashEmbedder::new(384)), 0.85),
        Some(dir) => (model(dir)?, paracache::DEFAULT_THRESHOLD),
    };
    let builder = Cache::builder(embedder.dimension())
        .threshold(args.threshold.unwrap_or(threshold))
        .max_entries(args.max_entries)
        .time_to_live(args.ttl);
    let snapshot = args.snapshot.map(PathBuf::from);
    let (cache, loaded) = app::load_cache(builder, snapshot.as_ref())?;
    if let (Some(report), Some(path)) = (loaded, &snapshot) {
        eprintln!("loaded {} entries from {}", report.entries, path.display());
    }
    let upstream = upstream::Upstream::new(&args.upstream, args.timeout)?;
    let policy = policy::Policy {
        max_temperature: args.max_temperature,
        ..policy::Policy::default()
    };
    let blocks = args.model_dir.is_some();
    let gateway = Arc::new(app::Gateway::new(cache, embedder, blocks, upstream, policy));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    eprintln!(
        "paracache gateway on http://{} -> {}",
        listener.local_addr()?,
        args.upstream
    );
    let saved = app::serve(listener, gateway, snapshot.clone(), shutdown_signal()).await?;
    if let (Some(report), Some(path)) = (saved, &snapshot) {
        eprintln!("saved {} entries to {}", report.entries, path.display());
    }
    Ok(())
}

/// The sentence-embedding model in `dir`.
#[cfg(feature = "bert")]
fn model(dir: &std::path::Path) -> Result<Arc<dyn Embedder>, paracache::BoxError> {
    Ok(Arc::new(paracache::BertEmbedder::from_dir(dir)?))
}

#[cfg(not(feature = "bert"))]
fn model(_: &std::path::Path) -> Result<Arc<dyn Embedder>, paracache::BoxError> {
    Err(
        "--model-dir needs the bert feature: cargo run --release --features bert --example gateway"
            .into(),
    )
}

/// Ctrl-C or SIGTERM: stop accepting, finish the requests in flight, then save.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
