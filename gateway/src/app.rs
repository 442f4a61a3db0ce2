//! The gateway's HTTP surface: chat completions through the cache, every other path proxied to
//! the upstream, `/metrics` and `/health`.
//!
//! A cacheable request goes through `get_or_insert_with_async`, so concurrent identical requests
//! (or paraphrases of one in flight) make one upstream call. The caller that makes it gets the
//! upstream's own answer, streamed as it arrives when it asked for a stream; the others get the
//! stored answer once it is complete. Only complete, successful, plain-text answers are stored.
//! When the leader's answer cannot be stored (an error, a 429, tool calls), the callers that
//! waited for it get that same answer (a stream put back together for a plain caller, a
//! completion as events for a streaming one): no caller waits for a leader and then makes an
//! upstream call of its own.
//!
//! The per-request [controls](crate::controls) choose between three paths: the shared one above;
//! a refresh (`no-cache`: call the upstream, store its answer in place of the old one); and a
//! read without a store (`no-store`). A hit older than the request's `max-age`, or past the
//! `ttl` it was stored with, is removed and answered as a miss.

use crate::completion::{
    COMPLETION_SCHEMA, Completion, StreamAssembler, completion_to_sse, now_ms, sse_to_completion,
};
use crate::controls::Controls;
use crate::metrics::Metrics;
use crate::policy::{Decision, Policy};
use crate::store::Store;
use crate::upstream::{Reply, Upstream, error_response, passed_on, status_of};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use paracache::{
    Cache, CacheBuilder, Embedder, Error, Hit, Lookup, Scope, SnapshotReport, Source, normalize,
};
use serde_json::{Map, Value};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// The largest request body the gateway reads (2 MiB): a larger one is a 413 in OpenAI's error
/// shape.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The gateway's state, shared by its request handlers: the cache, the embedder, the upstream,
/// the keying policy and the metrics. Serve it with [`serve`], or mount [`router`] in an axum app.
pub struct Gateway {
    pub(crate) cache: Store,
    pub(crate) embedder: Arc<dyn Embedder>,
    /// A model embedder takes milliseconds of CPU: it runs off the async workers' turn.
    embedder_blocks: bool,
    pub(crate) upstream: Upstream,
    pub(crate) policy: Policy,
    pub(crate) metrics: Metrics,
    ids: AtomicU64,
}

/// One cacheable chat request, as the policy and the controls read it.
struct Chat {
    headers: HeaderMap,
    /// The body as forwarded: without the gateway's own `cache` field.
    body: Map<String, Value>,
    scope: Scope,
    text: String,
    controls: Controls,
    stream: bool,
    /// `stream_options.include_usage`: a replayed stream ends with the usage chunk.
    include_usage: bool,
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

/// How a miss is answered.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Through the cache's single flight; the answer is stored.
    Shared,
    /// Straight to the upstream; its answer replaces the stored one when `store`.
    Refresh { store: bool, outcome: &'static str },
}

/// What one try of the shared path came to.
enum Served {
    Done(Response),
    /// The cache answered with an entry too old for this request (now removed): try again.
    Stale,
}

/// The answer a failed leading computation carried, for the callers that waited on it.
fn leader_reply(e: &Error) -> Option<Reply> {
    match e {
        Error::Compute(inner) => inner.downcast_ref::<Reply>().cloned(),
        _ => None,
    }
}

/// The stable id of a request's cache entry: a hash of its scope and normalized prompt, sent as
/// `x-cache-key` (it says nothing about the key or the prompt).
pub fn cache_key(scope: &Scope, prompt: &str) -> String {
    let mut h = Md5::new();
    h.update(b"paracache-gateway-key\0");
    h.update(scope.digest());
    h.update(normalize(prompt).as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Gateway {
    /// A gateway answering from `cache` (a [`Cache`], or a [`SharedCache`](paracache_redis::SharedCache)
    /// shared with other gateways), embedding with `embedder`, and calling `upstream` on
    /// misses and bypasses, under `policy` (whose embedding model it sets from `embedder`).
    /// `embedder_blocks` says that an embedding takes long enough (a model, not the lexical
    /// `HashEmbedder`) to run it off the async workers' turn, which needs tokio's multi-threaded
    /// runtime.
    pub fn new(
        cache: impl Into<Store>,
        embedder: Arc<dyn Embedder>,
        embedder_blocks: bool,
        upstream: Upstream,
        mut policy: Policy,
    ) -> Self {
        // Vectors of another embedder (or of other settings) must never meet these.
        policy.embedding_model = embedder.model_id().to_string();
        Gateway {
            cache: cache.into(),
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

    /// Pass the request to the upstream and its answer back (with the upstream's rate-limit
    /// and request-id headers), untouched by the cache, tagged `outcome`.
    async fn forward(
        &self,
        headers: &HeaderMap,
        body: &Map<String, Value>,
        outcome: &'static str,
    ) -> Response {
        let start = Instant::now();
        let response = match self.upstream.send(headers, body).await {
            Ok(r) => r,
            Err(reply) => {
                self.metrics.upstream_error();
                return tagged(reply.into_response(), outcome, None);
            }
        };
        self.metrics.upstream(start.elapsed().as_secs_f64());
        if !response.status().is_success() {
            self.metrics.upstream_error();
        }
        let status = status_of(&response);
        let headers = passed_on(response.headers());
        let mut out = Response::new(Body::from_stream(response.bytes_stream()));
        *out.status_mut() = status;
        out.headers_mut().extend(headers);
        tagged(out, outcome, None)
    }

    /// A request that does not use the cache: counted, forwarded, and told why.
    async fn bypass(
        &self,
        headers: &HeaderMap,
        body: &Map<String, Value>,
        reason: &'static str,
    ) -> Response {
        self.metrics.request("bypass");
        let mut response = self.forward(headers, body, "bypass").await;
        response
            .headers_mut()
            .insert("x-cache-bypass", HeaderValue::from_static(reason));
        response
    }

    /// Whether a stored answer may be served to `chat`: within its own `ttl` and younger than
    /// the request's `max-age`.
    fn fresh(chat: &Chat, hit: &Hit<Completion>) -> bool {
        let now = now_ms();
        let c = hit.value();
        !c.expired(now) && chat.controls.accepts_age(c.age_ms(now))
    }

    /// Answer a cacheable request by its controls.
    async fn cached(self: &Arc<Self>, chat: Arc<Chat>) -> Response {
        if chat.controls.no_cache {
            let mode = Mode::Refresh {
                store: true,
                outcome: "refresh",
            };
            return self.miss(&chat, mode).await;
        }
        if chat.controls.no_store {
            let start = Instant::now();
            let found = self
                .cache
                .lookup(&chat.scope, &chat.text, |t| self.embed(t));
            self.metrics.lookup(start.elapsed().as_secs_f64());
            if let Ok(Lookup::Hit(hit)) = found
                && Self::fresh(&chat, &hit)
            {
                return self.serve(&chat, &hit);
            }
            let mode = Mode::Refresh {
                store: false,
                outcome: "miss",
            };
            return self.miss(&chat, mode).await;
        }
        // A stale entry is removed and the shared path tried once more (so concurrent callers
        // of an expired entry still make one call); stale again, the request refreshes it.
        for _ in 0..2 {
            let served = if chat.stream {
                self.stream(&chat, Mode::Shared).await
            } else {
                self.complete(&chat).await
            };
            if let Served::Done(response) = served {
                return response;
            }
        }
        let mode = Mode::Refresh {
            store: true,
            outcome: "miss",
        };
        self.miss(&chat, mode).await
    }

    /// A request answered by the upstream without the single flight (refresh, no-store miss).
    async fn miss(self: &Arc<Self>, chat: &Arc<Chat>, mode: Mode) -> Response {
        let Mode::Refresh { store, outcome } = mode else {
            unreachable!("only refreshes come here");
        };
        if chat.stream {
            return match self.stream(chat, mode).await {
                Served::Done(response) => response,
                Served::Stale => self.forward(&chat.headers, &chat.body, outcome).await,
            };
        }
        let (reply, completion) = self.call(chat).await;
        if let (true, Some(c)) = (store, completion) {
            self.store(chat, c);
        }
        self.own_reply(reply, outcome)
    }

    /// Store `completion` for `chat`, replacing any entry of the same prompt.
    fn store(&self, chat: &Chat, completion: Completion) {
        if let Ok(vector) = self.embed(&chat.text) {
            // A prompt the cache refuses never gets here (checked before); an insert error
            // leaves the cache as it was, and the caller has its answer either way.
            let _ = self
                .cache
                .insert(&chat.scope, &chat.text, vector, completion);
        }
    }

    /// One plain upstream call: the reply as it came, and the completion to store if it is one.
    async fn call(&self, chat: &Chat) -> (Reply, Option<Completion>) {
        let t = Instant::now();
        let reply = match self.upstream.send(&chat.headers, &chat.body).await {
            Ok(response) => Reply::read(response).await,
            Err(unreachable) => unreachable,
        };
        let elapsed = t.elapsed();
        self.metrics.upstream(elapsed.as_secs_f64());
        let completion = reply
            .status
            .is_success()
            .then(|| serde_json::from_slice::<Value>(&reply.body).ok())
            .flatten()
            .and_then(|v| Completion::from_response(&v, elapsed.as_millis() as u64))
            .map(|c| c.with_ttl(chat.controls.ttl));
        (reply, completion)
    }

    /// A non-streaming request through the single flight.
    async fn complete(&self, chat: &Chat) -> Served {
        let start = Instant::now();
        let upstream_ns = AtomicU64::new(0);
        let own = OwnReply::default();
        let compute = || async {
            let t = Instant::now();
            let (reply, completion) = self.call(chat).await;
            upstream_ns.store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            // Kept whatever it is: this request answers with it, stored or not; the callers
            // waiting for it get it as the flight's error when it is not stored.
            let reply = own.keep(reply);
            completion.ok_or(reply)
        };
        let result = self
            .cache
            .get_or_insert_with_async(&chat.scope, &chat.text, |t| self.embed(t), compute)
            .await;
        let spent =
            (start.elapsed().as_nanos() as u64).saturating_sub(upstream_ns.load(Ordering::Relaxed));
        self.metrics.lookup(spent as f64 / 1e9);
        if let Some(reply) = own.take() {
            return Served::Done(self.own_reply(reply, "miss"));
        }
        self.after_flight(chat, result).await
    }

    /// A waiting (or hitting) caller's answer from the single flight's result.
    async fn after_flight(
        &self,
        chat: &Chat,
        result: paracache::Result<Hit<Completion>>,
    ) -> Served {
        match result {
            Ok(hit) if Self::fresh(chat, &hit) => Served::Done(self.serve(chat, &hit)),
            Ok(hit) => {
                self.cache.invalidate(&chat.scope, hit.matched_prompt());
                Served::Stale
            }
            Err(e) => Served::Done(match leader_reply(&e) {
                Some(reply) => self.handed(chat, reply).await,
                // The prompt was checked before: an embedding failure, say.
                None => self.bypass(&chat.headers, &chat.body, "cache error").await,
            }),
        }
    }

    /// The leader's uncacheable answer, handed to a caller that waited for it: as it is, or
    /// converted when the leader streamed and this caller did not, or the reverse.
    async fn handed(&self, chat: &Chat, mut reply: Reply) -> Response {
        if reply.status.is_success() && reply.is_event_stream() != chat.stream {
            let converted = if chat.stream {
                serde_json::from_slice(&reply.body)
                    .ok()
                    .and_then(|v| completion_to_sse(&v, chat.include_usage))
                    .map(|events| (events, "text/event-stream"))
            } else {
                sse_to_completion(&reply.body).map(|v| (v.to_string(), "application/json"))
            };
            let Some((body, content_type)) = converted else {
                // Nothing this caller can read: it asks on its own.
                self.metrics.request("miss");
                return self.forward(&chat.headers, &chat.body, "miss").await;
            };
            reply.body = Bytes::from(body);
            reply
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        self.metrics.request("miss");
        let mut response = tagged(reply.into_response(), "miss", None);
        response
            .headers_mut()
            .insert("x-cache-shared-flight", HeaderValue::from_static("leader"));
        response
    }

    /// A streaming request: through the single flight (`Mode::Shared`) or straight to the
    /// upstream (`Mode::Refresh`).
    async fn stream(self: &Arc<Self>, chat: &Arc<Chat>, mode: Mode) -> Served {
        let (started_tx, started_rx) = oneshot::channel::<HeaderMap>();
        let (tx, chunks) = mpsc::channel(64);
        let own = OwnReply::default();
        let (gw, c, leader_reply) = (Arc::clone(self), Arc::clone(chat), own.clone());
        // The upstream call runs in its own task so that it completes, and is cached, even when
        // the client that asked for it hangs up mid-stream. The task holds the stream's sender
        // until the answer is stored, so a client that has read to the end finds it cached.
        let task = tokio::spawn(async move {
            let leader = Arc::clone(&gw);
            let sender = tx.clone();
            let call = leader.stream_upstream(Arc::clone(&c), started_tx, sender, leader_reply);
            let result = match mode {
                Mode::Shared => gw
                    .cache
                    .get_or_insert_with_async(&c.scope, &c.text, |t| gw.embed(t), move || call)
                    .await
                    .map(Some),
                Mode::Refresh { store, .. } => match call.await {
                    Ok(completion) => {
                        if store {
                            gw.store(&c, completion);
                        }
                        Ok(None)
                    }
                    Err(reply) => Err(Error::Compute(Arc::new(reply))),
                },
            };
            drop(tx);
            result
        });
        let outcome = match mode {
            Mode::Shared => "miss",
            Mode::Refresh { outcome, .. } => outcome,
        };
        // Either this request leads and its stream starts, or the signal is dropped unused: a
        // hit, another caller's finished stream, or an upstream refusal.
        if let Ok(headers) = started_rx.await {
            self.metrics.request(outcome);
            let mut response = sse(Body::from_stream(ReceiverStream::new(chunks)));
            response.headers_mut().extend(headers);
            return Served::Done(tagged(response, outcome, None));
        }
        let result = task.await;
        if let Some(reply) = own.take() {
            return Served::Done(self.own_reply(reply, outcome));
        }
        match result {
            Ok(Ok(Some(hit))) => self.after_flight(chat, Ok(hit)).await,
            Ok(Err(e)) => self.after_flight(chat, Err(e)).await,
            // A refresh always starts its stream or keeps its reply; a panicked task.
            Ok(Ok(None)) | Err(_) => Served::Done(
                Reply::gateway_error(
                    StatusCode::BAD_GATEWAY,
                    "the upstream call failed",
                    "gateway_error",
                )
                .into_response(),
            ),
        }
    }

    /// The leader's side of a streamed miss: stream the upstream's events to the client as they
    /// arrive and return the completion they add up to, if it is complete and cacheable. A
    /// complete stream that cannot be cached (tool calls) comes back whole as the error, for
    /// the callers that waited for it.
    async fn stream_upstream(
        self: Arc<Self>,
        chat: Arc<Chat>,
        started: oneshot::Sender<HeaderMap>,
        tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
        own: OwnReply,
    ) -> Result<Completion, Reply> {
        let t = Instant::now();
        let response = self
            .upstream
            .send(&chat.headers, &chat.body)
            .await
            .map_err(|reply| own.keep(reply))?;
        if !response.status().is_success() {
            return Err(own.keep(Reply::read(response).await));
        }
        let headers = passed_on(response.headers());
        // A client that has gone away no longer listens; the stream is still read to the end.
        let _ = started.send(headers.clone());
        let mut assembler = StreamAssembler::default();
        let mut whole = Vec::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    assembler.push(&bytes);
                    whole.extend_from_slice(&bytes);
                    let _ = tx.send(Ok(bytes)).await;
                }
                Err(e) => {
                    self.metrics.upstream_error();
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return Err(Reply::gateway_error(
                        StatusCode::BAD_GATEWAY,
                        "the upstream's stream broke",
                        "upstream_stream_broken",
                    ));
                }
            }
        }
        let elapsed = t.elapsed();
        self.metrics.upstream(elapsed.as_secs_f64());
        let ended = assembler.ended();
        match assembler.finish(elapsed.as_millis() as u64) {
            Some(c) => Ok(c.with_ttl(chat.controls.ttl)),
            None if ended => Err(Reply {
                status: StatusCode::OK,
                headers,
                body: Bytes::from(whole),
            }),
            None => Err(Reply::gateway_error(
                StatusCode::BAD_GATEWAY,
                "the upstream's stream ended early",
                "upstream_stream_incomplete",
            )),
        }
    }

    /// The upstream's answer to the caller that made the call: passed on as it is, counted
    /// under `outcome`.
    fn own_reply(&self, reply: Reply, outcome: &'static str) -> Response {
        if !reply.status.is_success() {
            self.metrics.upstream_error();
        }
        self.metrics.request(outcome);
        tagged(reply.into_response(), outcome, None)
    }

    /// A cached answer in the shape the request asked for, with its `Age`.
    fn serve(&self, chat: &Chat, hit: &Hit<Completion>) -> Response {
        let (id, created) = self.id();
        let value = hit.value();
        let response = if chat.stream {
            sse(Body::from(
                value.to_sse(&id, created, chat.include_usage).concat(),
            ))
        } else {
            let json = value.to_response(&id, created).to_string();
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        };
        let mut response = self.served(response, hit);
        let age = value.age_ms(now_ms()) / 1000;
        response.headers_mut().insert(header::AGE, age.into());
        response
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

/// The cache a gateway starts with: `builder()`'s (with the gateway's snapshot schema), filled
/// from `snapshot` when that file exists (with what it loaded). A snapshot of another schema (an
/// older gateway's answers) is left unread: the gateway starts empty and says so on stderr.
pub fn load_cache(
    builder: impl Fn() -> CacheBuilder<Completion>,
    snapshot: Option<&PathBuf>,
) -> paracache::Result<(Cache<Completion>, Option<SnapshotReport>)> {
    let builder = || builder().snapshot_schema(COMPLETION_SCHEMA);
    match snapshot {
        Some(path) if path.exists() => match builder().build_from_snapshot(path) {
            Ok((cache, report)) => Ok((cache, Some(report))),
            Err(Error::SnapshotValueType(why)) => {
                eprintln!(
                    "not loading {} (another gateway version's answers: {why}); starting empty",
                    path.display()
                );
                Ok((builder().build()?, None))
            }
            Err(e) => Err(e),
        },
        _ => Ok((builder().build()?, None)),
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
        Some(path) => Ok(Some(gateway.cache.local().save(path)?)),
        None => Ok(None),
    }
}

/// Routes: `POST /v1/chat/completions` through the cache (bodies read up to
/// [`MAX_BODY_BYTES`]), `GET /metrics`, `GET /health`, and every other method and path proxied
/// to the upstream as it is, uncached (bodies streamed through, of any size: file and audio
/// uploads).
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(chat)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                .fallback(proxy),
        )
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .fallback(proxy)
        .with_state(gateway)
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], gw.metrics.render()).into_response()
}

/// A body that could not be read: too large (413) or broken, in OpenAI's error shape.
fn unreadable(rejection: &BytesRejection) -> Response {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let message = format!(
            "the request body is larger than the gateway's limit of {MAX_BODY_BYTES} bytes"
        );
        return error_response(
            status,
            &message,
            "invalid_request_error",
            None,
            Some("request_too_large"),
        );
    }
    let message = rejection.body_text();
    error_response(status, &message, "invalid_request_error", None, None)
}

fn bad_request(message: &str, param: Option<&str>, code: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        Some(code),
    )
}

async fn proxy(
    State(gw): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.metrics.proxied();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    gw.upstream.proxy(method, path, &headers, body).await
}

async fn chat(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return unreadable(&r),
    };
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body must be a JSON object", None, "invalid_json");
    };
    match body.get("messages") {
        Some(Value::Array(_)) => {}
        None => {
            let message = "Missing required parameter: 'messages'.";
            return bad_request(message, Some("messages"), "missing_required_parameter");
        }
        Some(_) => {
            let message = "Invalid type for 'messages': expected an array.";
            return bad_request(message, Some("messages"), "invalid_type");
        }
    }
    let controls = match Controls::parse(&headers, &body) {
        Ok(c) => c,
        Err(message) => return bad_request(&message, Some("cache"), "invalid_cache_control"),
    };
    // The gateway's own field; an upstream may reject fields it does not know.
    body.remove("cache");
    let decision = match controls.bypass() {
        Some(reason) => Decision::Bypass(reason),
        None => gw
            .policy
            .decide(&headers, &body, controls.namespace.as_deref()),
    };
    let (scope, text) = match decision {
        Decision::Bypass(reason) => return gw.bypass(&headers, &body, reason).await,
        Decision::Cache { scope, text } => (scope, text),
    };
    if let Err(e) = gw.cache.local().check_prompt(&text) {
        let reason = match e {
            Error::EmptyPrompt => "empty prompt",
            Error::PromptTooLarge { .. } => "prompt too large",
            _ => "prompt refused",
        };
        return gw.bypass(&headers, &body, reason).await;
    }
    let key = cache_key(&scope, &text);
    let stream = body.get("stream") == Some(&Value::Bool(true));
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        == Some(&Value::Bool(true));
    let chat = Arc::new(Chat {
        headers,
        body,
        scope,
        text,
        controls,
        stream,
        include_usage,
    });
    let mut response = gw.cached(chat).await;
    if let Ok(key) = HeaderValue::from_str(&key) {
        response.headers_mut().insert("x-cache-key", key);
    }
    response
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
