//! The paracache gateway: an OpenAI-compatible caching proxy in front of a model server.
//!
//! ```text
//! cargo run --release -p paracache-gateway -- --upstream http://127.0.0.1:8000/v1 \
//!     --snapshot target/gateway-cache.bin
//! curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"m","messages":[{"role":"user","content":"How do I reset my password?"}]}' -i
//! ```
//!
//! `--help` lists the flags with their defaults. Without `--model-dir` the embedder is
//! paracache's offline, lexical `HashEmbedder`, so the gateway runs with nothing to download: it
//! matches rewordings that share most words, not paraphrases in general, at its own threshold of
//! 0.85. With `--model-dir` (built with `--features bert`; `bash .ci/fetch-model` fetches
//! all-MiniLM-L6-v2 into `target/models/all-MiniLM-L6-v2`) it matches paraphrases, at the
//! crate's default threshold for that model. The keying policy is in the library's `policy`
//! module, the routes in `app`.

use clap::Parser;
use paracache::{Cache, Embedder, HashEmbedder};
use paracache_gateway::store::Store;
use paracache_gateway::{app, policy, upstream};
use paracache_redis::{RedisOptions, SharedCache};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// An OpenAI-compatible caching proxy built on paracache: answers POST /v1/chat/completions from
/// its cache, or from the upstream on a miss, proxies every other path to the upstream, and
/// serves GET /metrics and GET /health.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Base URL of the OpenAI-compatible server behind the gateway
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8000/v1")]
    upstream: String,
    /// Sentence-embedding model directory (feature bert) [default: none, the lexical HashEmbedder]
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
    /// Cosine similarity a semantic hit needs [default: 0.85 lexical, 0.90 with a model]
    #[arg(long, value_name = "T")]
    threshold: Option<f32>,
    /// Requests sampled hotter than this bypass the cache
    #[arg(long, value_name = "T", default_value = "1.0")]
    max_temperature: f64,
    /// Most answers the cache holds
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_entries: u64,
    /// Seconds an answer is served after it was stored
    #[arg(long, value_name = "S", default_value_t = 86_400)]
    ttl_secs: u64,
    /// Longest silence from the upstream, before its answer or within a stream, in seconds
    #[arg(long, value_name = "S", default_value = "120", value_parser = at_least_one)]
    timeout_secs: u64,
    /// Cache file: loaded on start when it exists, saved on shutdown [default: none]
    #[arg(long, value_name = "PATH")]
    snapshot: Option<PathBuf>,
    /// Read the x-tenant-id header to narrow each caller's partition within its API key. Only
    /// behind a proxy that sets it and strips any the client sent; without this flag the header
    /// is ignored, and the tenant is the caller's credential alone
    #[arg(long)]
    trusted_tenant_header: bool,
    /// Share the cache with every other gateway on this Redis (redis://host:port/db): an answer
    /// one stores is a hit on all [default: none, this process's cache alone]
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// Prefix of the shared tier's Redis keys; gateways that share use the same one
    #[arg(long, value_name = "NAME", default_value = "paracache-gateway")]
    redis_namespace: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let (embedder, threshold): (Arc<dyn Embedder>, f32) = match &args.model_dir {
        None => (Arc::new(HashEmbedder::new(384)), 0.85),
        Some(dir) => (model(dir)?, paracache::DEFAULT_THRESHOLD),
    };
    let builder = || {
        Cache::builder(embedder.dimension())
            .threshold(args.threshold.unwrap_or(threshold))
            .max_entries(args.max_entries)
            .time_to_live(Duration::from_secs(args.ttl_secs))
    };
    let snapshot = args.snapshot;
    let (cache, loaded) = app::load_cache(builder, snapshot.as_ref())?;
    if let (Some(report), Some(path)) = (loaded, &snapshot) {
        eprintln!("loaded {} entries from {}", report.entries, path.display());
    }
    let upstream = upstream::Upstream::new(&args.upstream, Duration::from_secs(args.timeout_secs))?;
    let policy = policy::Policy {
        max_temperature: args.max_temperature,
        trusted_tenant_header: args.trusted_tenant_header,
        ..policy::Policy::default()
    };
    let blocks = args.model_dir.is_some();
    let store: Store = match &args.redis {
        None => cache.into(),
        Some(url) => {
            let options = RedisOptions::new(url).namespace(&args.redis_namespace);
            eprintln!(
                "sharing the cache through {url} (namespace {})",
                args.redis_namespace
            );
            SharedCache::connect(cache, options)?.into()
        }
    };
    let gateway = Arc::new(app::Gateway::new(store, embedder, blocks, upstream, policy));
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

/// A whole number of seconds, at least 1.
fn at_least_one(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// The sentence-embedding model in `dir`.
#[cfg(feature = "bert")]
fn model(dir: &Path) -> Result<Arc<dyn Embedder>, paracache::BoxError> {
    Ok(Arc::new(paracache::BertEmbedder::from_dir(dir)?))
}

#[cfg(not(feature = "bert"))]
fn model(_: &Path) -> Result<Arc<dyn Embedder>, paracache::BoxError> {
    Err("--model-dir needs the bert feature: \
         cargo run --release -p paracache-gateway --features bert -- --model-dir DIR"
        .into())
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
