//! An OpenAI-compatible caching proxy built on [paracache].
//!
//! The gateway sits between clients and any OpenAI-compatible server (vLLM, llama.cpp's server,
//! Ollama's OpenAI endpoint, OpenAI itself). A `POST /v1/chat/completions` that the
//! [keying policy](policy) allows is looked up in a [`paracache::Cache`] (or, with
//! [`store::Store::Shared`], a cache shared with other gateways through Redis): an exact or
//! semantic hit is answered from the cache, a miss goes to the upstream and its answer is stored.
//! Every other path is proxied to the upstream untouched. Answers carry
//! `x-cache: exact | alias | semantic | shared | miss | refresh | bypass`, `x-cache-key` (a stable
//! id of the entry) and, on hits, `x-cache-similarity`, `Age` and the stored `usage`.
//! Concurrent identical requests (or rewordings of one in flight) make one upstream call, and
//! when its answer cannot be stored (a 429, an error, tool calls) the waiting requests get that
//! answer rather than calling again. A `stream: true` miss streams through as it arrives and is
//! stored once complete; upstream errors, timeouts and non-2xx answers are passed on with the
//! upstream's `retry-after`, `x-ratelimit-*` and `x-request-id` headers, and never stored.
//! Errors the gateway makes itself are in OpenAI's error shape.
//!
//! # Keying policy and controls
//!
//! (In full in [`policy`] and [`controls`].) The **scope**, which partitions both tiers so
//! nothing is ever served across it, is the tenant (the caller's credential, hashed; an
//! `x-tenant-id` header only narrows it, and only with
//! [`Policy::trusted_tenant_header`](policy::Policy::trusted_tenant_header)), the cache
//! namespace, the model, the system and developer messages, every request field that can change
//! the answer (temperature, top_p, max_tokens, tools, response_format, ...), the embedding model,
//! and a hash of the earlier turns. The cached **text** is the last user message. Per request,
//! LiteLLM's `cache` body object, `Cache-Control` and Portkey's force-refresh header choose
//! no-cache (refresh), no-store, a maximum age, a time to live or a namespace. **Bypassed**
//! (forwarded, never cached): `"cache": false`, no-cache with no-store, a temperature above
//! [`Policy::max_temperature`](policy::Policy::max_temperature), `n` > 1, a conversation that does
//! not end with a user message, non-text content, and prompts the cache refuses (empty, too
//! large).
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
//! // A `paracache_redis::SharedCache` in place of `cache` shares it with other gateways.
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
