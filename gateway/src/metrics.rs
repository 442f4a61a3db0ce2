//! The gateway's Prometheus metrics.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;

/// Counters and latency histograms, rendered by `GET /metrics`.
pub(crate) struct Metrics {
    registry: Registry,
    /// Chat requests by outcome: `exact`, `alias`, `semantic`, `shared`, `miss`, `refresh` or
    /// `bypass`.
    requests: Family<Labels, Counter>,
    upstream_errors: Counter,
    proxied: Counter,
    lookup_seconds: Histogram,
    embed_seconds: Histogram,
    upstream_seconds: Histogram,
    saved_seconds: Counter<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("paracache_gateway");
        let requests = Family::<Labels, Counter>::default();
        let upstream_errors = Counter::default();
        let proxied = Counter::default();
        // 1 µs to ~16 s: exact hits, semantic hits and model calls all land inside.
        let lookup_seconds = Histogram::new(exponential_buckets(1e-6, 4.0, 12));
        let embed_seconds = Histogram::new(exponential_buckets(1e-6, 4.0, 12));
        let upstream_seconds = Histogram::new(exponential_buckets(1e-3, 2.0, 16));
        let saved_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "requests",
            "Chat requests by cache outcome",
            requests.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream answers passed on uncached (non-2xx, unreachable, timed out)",
            upstream_errors.clone(),
        );
        registry.register(
            "proxied_requests",
            "Requests to other paths, passed to the upstream uncached",
            proxied.clone(),
        );
        registry.register(
            "lookup_seconds",
            "Cache lookup time, embedding included",
            lookup_seconds.clone(),
        );
        registry.register(
            "embed_seconds",
            "Embedding time on exact misses",
            embed_seconds.clone(),
        );
        registry.register(
            "upstream_seconds",
            "Upstream call time",
            upstream_seconds.clone(),
        );
        registry.register(
            "upstream_saved_seconds",
            "Upstream time that cache hits did not spend (the original call's duration per hit)",
            saved_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            upstream_errors,
            proxied,
            lookup_seconds,
            embed_seconds,
            upstream_seconds,
            saved_seconds,
        }
    }
}

impl Metrics {
    pub(crate) fn request(&self, outcome: &str) {
        self.requests
            .get_or_create(&vec![("outcome".to_string(), outcome.to_string())])
            .inc();
    }

    pub(crate) fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    pub(crate) fn proxied(&self) {
        self.proxied.inc();
    }

    pub(crate) fn lookup(&self, seconds: f64) {
        self.lookup_seconds.observe(seconds);
    }

    pub(crate) fn embed(&self, seconds: f64) {
        self.embed_seconds.observe(seconds);
    }

    pub(crate) fn upstream(&self, seconds: f64) {
        self.upstream_seconds.observe(seconds);
    }

    pub(crate) fn saved(&self, seconds: f64) {
        self.saved_seconds.inc_by(seconds);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
