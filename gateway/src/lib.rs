//! An OpenAI-compatible caching proxy built on [paracache].
//!
//! The gateway sits between clients and any server that speaks `POST /v1/chat/completions`
//! (vLLM, llama.cpp's server, Ollama's OpenAI endpoint, OpenAI itself). A request that the
//! [keying policy](policy) allows is looked up in a [`paracache::Cache`]: an exact or semantic hit
//! is answered from the cache, a miss goes to the upstream and its answer is stored. Answers carry
//! `x-cache: exact | alias | semantic | miss | bypass` and, on hits, `x-cache-similarity`.
//! Concurrent identical requests (or rewordings of one in flight) make one upstream call; a
//! `stream: true` miss streams through as it arrives and is stored once complete; upstream errors,
//! timeouts and non-2xx answers are passed on and never stored.
//!
//! # Keying policy
//!
//! (In full in [`policy`].) The **scope**, which partitions both tiers so nothing is ever served
//! across it, is the tenant (`x-tenant-id`, else the bearer token, hashed), the model, the system
//! and developer messages, every request field that can change the answer (temperature, top_p,
//! max_tokens, tools, response_format, ...), the embedding model, and a hash of the earlier turns.
//! The cached **text** is the last user message. **Bypassed** (forwarded, never cached):
//! `cache-control: no-store` or `no-cache`, `"cache": false` in the body, a temperature above
//! [`Policy::max_temperature`](policy::Policy::max_temperature), `n` > 1, a conversation that does
//! not end with a user message, and non-text content. Answers with tool calls or several choices
//! are passed on, never stored.
//!
//! # Running it
//!
//! The `paracache-gateway` binary wraps this library (`--help` lists its flags); the
//! `fake_upstream` binary is a model server with a fixed latency, to try it without a model:
//!
//! ```text
//! cargo run --release -p paracache-gateway --bin fake_upstream -- --delay-ms 500 &
//! cargo run --release -p paracache-gateway -- --upstream http://127.0.0.1:8000/v1 \
//!     --snapshot target/gateway-cache.bin
//! curl -si localhost:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"m","messages":[{"role":"user","content":"How do I reset my password?"}]}'
//! ```
//!
//! # Embedding it
//!
//! The same pieces serve from inside another program:
//!
//! ```no_run
//! use paracache::{Cache, Embedder, HashEmbedder};
//! use paracache_gateway::app::{self, Gateway};
//! use paracache_gateway::policy::Policy;
//! use paracache_gateway::upstream::Upstream;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(384));
//! let cache = Cache::builder(embedder.dimension()).threshold(0.85).build()?;
//! let upstream = Upstream::new("http://127.0.0.1:8000/v1", Duration::from_secs(120))?;
//! let gateway = Arc::new(Gateway::new(cache, embedder, false, upstream, Policy::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! app::serve(listener, gateway, None, shutdown).await?;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod completion;
pub mod controls;
pub mod fake;
mod metrics;
pub mod policy;
pub mod store;
pub mod upstream;
