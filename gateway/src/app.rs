//! The gateway's HTTP surface: chat completions through the cache, `/metrics` and `/health`.
//!
//! A cacheable request goes through `get_or_insert_with_async`, so concurrent identical requests
//! (or paraphrases of one in flight) make one upstream call. The caller that makes it gets the
//! upstream's own answer, streamed as it arrives when it asked for a stream; the others get the
//! stored answer once it is complete. Only complete, successful, plain-text answers are stored;
//! when the leading call fails, the callers that waited for it make their own upstream call.

use crate::completion::{Completion, StreamAssembler};
use crate::metrics::Metrics;
use crate::policy::{Decision, Policy};
use crate::upstream::{Reply, Upstream};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use paracache::{Cache, CacheBuilder, Embedder, Hit, Scope, SnapshotReport, Source};
use serde_json::{Map, Value};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// The gateway's state, shared by its request handlers: the cache, the embedder, the upstream,
/// the keying policy and the metrics. Serve it with [`serve`], or mount [`router`] in an axum app.
pub struct Gateway {
    pub(crate) cache: Cache<Completion>,
    pub(crate) embedder: Arc<dyn Embedder>,
    /// A model embedder takes milliseconds of CPU: it runs off the async workers' turn.
    embedder_blocks: bool,
    pub(crate) upstream: Upstream,
    pub(crate) policy: Policy,
    pub(crate) metrics: Metrics,
    ids: AtomicU64,
}

/// The upstream answer of the one caller that made the call, kept aside so that caller returns
/// it as it is (while the cache keeps only the completion). Empty for the callers that waited.
#[derive(Clone, Default)]
struct OwnReply(Arc<Mutex<Option<Reply>>>);

impl OwnReply {
    /// Keep `reply` for the calling request and hand it back for the cache's side.
    fn keep(&self, reply: Reply) -> Reply {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(reply.clone());
        }
        reply
    }

    /// The kept reply, if this request made the upstream call.
    fn take(&self) -> Option<Reply> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

impl Gateway {
    /// A gateway answering from `cache`, embedding with `embedder`, and calling `upstream` on
    /// misses and bypasses, under `policy` (whose embedding model it sets from `embedder`).
    /// `embedder_blocks` says that an embedding takes long enough (a model, not the lexical
    /// `HashEmbedder`) to run it off the async workers' turn, which needs tokio's multi-threaded
    /// runtime.
    pub fn new(
        cache: Cache<Completion>,
        embedder: Arc<dyn Embedder>,
        embedder_blocks: bool,
        upstream: Upstream,
        mut policy: Policy,
    ) -> Self {
        // Vectors of another embedder (or of other settings) must never meet these.
        policy.embedding_model = embedder.model_id().to_string();
        Gateway {
            cache,
            embedder,
            embedder_blocks,
            upstream,
            policy,
            metrics: Metrics::default(),
            ids: AtomicU64::new(0),
        }
    }

    fn embed(&self, text: &str) -> Result<Vec<f32>, paracache::BoxError> {
        let start = Instant::now();
        let v = if self.embedder_blocks {
            // Needs the multi-threaded runtime, which the gateway's main and its tests use.
            tokio::task::block_in_place(|| self.embedder.embed(text))
        } else {
            self.embedder.embed(text)
        };
        self.metrics.embed(start.elapsed().as_secs_f64());
        v
    }

    fn id(&self) -> (String, u64) {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        (format!("chatcmpl-paracache-{created}-{n}"), created)
    }

    /// Pass the request to the upstream and its answer back, untouched by the cache.
    async fn forward(&self, headers: &HeaderMap, body: &Map<String, Value>) -> Response {
        let start = Instant::now();
        let response = match self.upstream.send(headers, body).await {
            Ok(r) => r,
            Err(reply) => {
                self.metrics.upstream_error();
                return tagged(reply.into_response(), "bypass", None);
            }
        };
        self.metrics.upstream(start.elapsed().as_secs_f64());
        if !response.status().is_success() {
            self.metrics.upstream_error();
        }
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .cloned();
        let mut out = Response::new(Body::from_stream(response.bytes_stream()));
        *out.status_mut() = status;
        if let Some(ct) = content_type.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            out.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        tagged(out, "bypass", None)
    }

    /// A non-streaming cacheable request.
    async fn complete(
        &self,
        headers: &HeaderMap,
        body: &Map<String, Value>,
        scope: &Scope,
        text: &str,
    ) -> Response {
        let start = Instant::now();
        let upstream_ns = AtomicU64::new(0);
        let own = OwnReply::default();
        let compute = || async {
            let t = Instant::now();
            let reply = match self.upstream.send(headers, body).await {
                Ok(response) => Reply::read(response).await,
                Err(unreachable) => unreachable,
            };
            let elapsed = t.elapsed();
            upstream_ns.store(elapsed.as_nanos() as u64, Ordering::Relaxed);
            self.metrics.upstream(elapsed.as_secs_f64());
            let completion = reply
                .status
                .is_success()
                .then(|| serde_json::from_slice::<Value>(&reply.body).ok())
                .flatten()
                .and_then(|v| Completion::from_response(&v, elapsed.as_millis() as u64));
            // Kept whatever it is: this request answers with it, stored or not.
            let reply = own.keep(reply);
            completion.ok_or(reply)
        };
        let result = self
            .cache
            .get_or_insert_with_async(scope, text, |t| self.embed(t), compute)
            .await;
        let spent =
            (start.elapsed().as_nanos() as u64).saturating_sub(upstream_ns.load(Ordering::Relaxed));
        self.metrics.lookup(spent as f64 / 1e9);
        if let Some(reply) = own.take() {
            return self.own_reply(reply);
        }
        match result {
            Ok(hit) => {
                let (id, created) = self.id();
                let json = hit.value().to_response(&id, created).to_string();
                let response = ([(header::CONTENT_TYPE, "application/json")], json).into_response();
                self.served(response, &hit)
            }
            // A waiting caller whose leader failed, or a prompt the cache refuses (too long,
            // empty): answered by the upstream alone.
            Err(_) => self.forward(headers, body).await,
        }
    }

    /// A streaming cacheable request.
    async fn streamed(
        self: Arc<Self>,
        headers: HeaderMap,
        body: Map<String, Value>,
        scope: Scope,
        text: String,
    ) -> Response {
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let (tx, chunks) = mpsc::channel(64);
        let own = OwnReply::default();
        let (gw, leader_reply) = (Arc::clone(&self), own.clone());
        let (fwd_headers, fwd_body) = (headers.clone(), body.clone());
        // The upstream call runs in its own task so that it completes, and is cached, even when
        // the client that asked for it hangs up mid-stream. The task holds the stream's sender
        // until the answer is stored, so a client that has read to the end finds it cached.
        let task = tokio::spawn(async move {
            let leader = Arc::clone(&gw);
            let sender = tx.clone();
            let result = gw
                .cache
                .get_or_insert_with_async(
                    &scope,
                    &text,
                    |t| gw.embed(t),
                    move || {
                        leader.stream_upstream(
                            fwd_headers,
                            fwd_body,
                            started_tx,
                            sender,
                            leader_reply,
                        )
                    },
                )
                .await;
            drop(tx);
            result
        });
        // Either this request leads and its stream starts, or the signal is dropped unused: a
        // hit, another caller's finished stream, or an upstream refusal.
        if started_rx.await.is_ok() {
            self.metrics.request("miss");
            return tagged(
                sse(Body::from_stream(ReceiverStream::new(chunks))),
                "miss",
                None,
            );
        }
        let result = task.await;
        if let Some(reply) = own.take() {
            return self.own_reply(reply);
        }
        match result {
            Ok(Ok(hit)) => {
                let (id, created) = self.id();
                let events = hit.value().to_sse(&id, created).concat();
                self.served(sse(Body::from(events)), &hit)
            }
            _ => self.forward(&headers, &body).await,
        }
    }

    /// The leader's side of a streamed miss: stream the upstream's events to the client as they
    /// arrive and return the completion they add up to, if it is complete and cacheable.
    async fn stream_upstream(
        self: Arc<Self>,
        headers: HeaderMap,
        body: Map<String, Value>,
        started: oneshot::Sender<()>,
        tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
        own: OwnReply,
    ) -> Result<Completion, Reply> {
        let t = Instant::now();
        let response = self
            .upstream
            .send(&headers, &body)
            .await
            .map_err(|reply| own.keep(reply))?;
        if !response.status().is_success() {
            return Err(own.keep(Reply::read(response).await));
        }
        // A client that has gone away no longer listens; the stream is still read to the end.
        let _ = started.send(());
        let mut assembler = StreamAssembler::default();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    assembler.push(&bytes);
                    let _ = tx.send(Ok(bytes)).await;
                }
                Err(e) => {
                    self.metrics.upstream_error();
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return Err(Reply::gateway_error(
                        StatusCode::BAD_GATEWAY,
                        "stream broke",
                    ));
                }
            }
        }
        let elapsed = t.elapsed();
        self.metrics.upstream(elapsed.as_secs_f64());
        assembler
            .finish(elapsed.as_millis() as u64)
            .ok_or_else(|| Reply::gateway_error(StatusCode::BAD_GATEWAY, "stream not cacheable"))
    }

    /// The upstream's answer to the caller that made the call: a miss when it was stored, passed
    /// on as it is either way.
    fn own_reply(&self, reply: Reply) -> Response {
        if !reply.status.is_success() {
            self.metrics.upstream_error();
        }
        self.metrics.request("miss");
        tagged(reply.into_response(), "miss", None)
    }

    /// A cached answer: tag it, count it, credit the upstream time it saved.
    fn served(&self, response: Response, hit: &Hit<Completion>) -> Response {
        let outcome = match hit.source() {
            Source::Computed => "miss",
            // `exact`, `semantic`, `alias`, and whatever paths the cache adds later.
            source => source.as_str(),
        };
        self.metrics.request(outcome);
        self.metrics.saved(hit.value().upstream_ms as f64 / 1e3);
        tagged(response, outcome, Some(hit.similarity()))
    }
}

/// The cache a gateway starts with: `builder`'s, filled from `snapshot` when that file exists
/// (with what it loaded).
pub fn load_cache(
    builder: CacheBuilder<Completion>,
    snapshot: Option<&PathBuf>,
) -> paracache::Result<(Cache<Completion>, Option<SnapshotReport>)> {
    match snapshot {
        Some(path) if path.exists() => {
            let (cache, report) = builder.build_from_snapshot(path)?;
            Ok((cache, Some(report)))
        }
        _ => Ok((builder.build()?, None)),
    }
}

/// Serve `gateway` on `listener` until `shutdown` resolves; then stop accepting, let the
/// requests in flight finish, and save the cache to `snapshot` when one is configured.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    snapshot: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Option<SnapshotReport>, Box<dyn std::error::Error + Send + Sync>> {
    axum::serve(listener, router(Arc::clone(&gateway)))
        .with_graceful_shutdown(shutdown)
        .await?;
    match snapshot {
        Some(path) => Ok(Some(gateway.cache.save(path)?)),
        None => Ok(None),
    }
}

/// Routes: `POST /v1/chat/completions`, `GET /metrics`, `GET /health`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .with_state(gateway)
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], gw.metrics.render()).into_response()
}

async fn chat(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&body) else {
        let reply = Reply::gateway_error(StatusCode::BAD_REQUEST, "body must be a JSON object");
        return reply.into_response();
    };
    let decision = gw.policy.decide(&headers, &body);
    // The gateway's own switch; an upstream may reject fields it does not know.
    body.remove("cache");
    let stream = body.get("stream") == Some(&Value::Bool(true));
    match decision {
        Decision::Bypass(reason) => {
            gw.metrics.request("bypass");
            let mut response = gw.forward(&headers, &body).await;
            response
                .headers_mut()
                .insert("x-cache-bypass", HeaderValue::from_static(reason));
            response
        }
        Decision::Cache { scope, text } if stream => gw.streamed(headers, body, scope, text).await,
        Decision::Cache { scope, text } => gw.complete(&headers, &body, &scope, &text).await,
    }
}

fn sse(body: Body) -> Response {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Add `x-cache` (and, for hits, `x-cache-similarity`).
fn tagged(mut response: Response, outcome: &'static str, similarity: Option<f32>) -> Response {
    let h = response.headers_mut();
    h.insert("x-cache", HeaderValue::from_static(outcome));
    if let Some(s) = similarity.and_then(|s| HeaderValue::from_str(&format!("{s:.4}")).ok()) {
        h.insert("x-cache-similarity", s);
    }
    response
}
