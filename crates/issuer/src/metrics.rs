//! Prometheus metrics of one issuer (issue 14, I-114), rendered at
//! `GET /metrics` in the Prometheus text format (version 0.0.4).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ajwt_tokens_issued_total` | counter | `grant` (`client_credentials`, `agent_checksum`) |
//! | `ajwt_refusals_total` | counter | `endpoint`, `error` (the OAuth error code) |
//! | `ajwt_checksum_mismatches_total` | counter | |
//! | `ajwt_rate_limited_requests_total` | counter | `limit` |
//! | `ajwt_http_request_duration_seconds` | histogram | `endpoint`, `method`, `status` (class: `2xx`, `4xx`, ...) |
//! | `ajwt_registry_agents`, `_registrations`, `_workflows`, `_clients` | gauge | |
//! | `ajwt_status_lists`, `ajwt_status_list_statuses_used`, `ajwt_token_records` | gauge | |
//! | `ajwt_signing_keys` | gauge | `state` (`next`, `current`, `retiring`, `retired`) |
//! | `ajwt_db_pool_connections`, `_idle`, `_max` | gauge | |
//!
//! Every label value comes from a bounded set: `endpoint` is the route
//! TEMPLATE written with `:` for parameters (`/intent/agents/:agent_id`), or `unmatched` for any path no
//! route serves, never the raw path; `method` is one of the methods the API
//! serves or `other`; `error` is one of the issuer's own error codes (never
//! request text). So an attacker sending random paths, methods or bodies
//! cannot grow the label sets.
//!
//! Each [`Metrics`] has its own recorder (`PrometheusRecorder` used
//! directly, no global recorder is installed), so several issuers in one
//! process (the tests) do not mix their numbers. The gauges of the store
//! ([`crate::store::Store::stats`]: COUNT queries) and of the key ring
//! (reads the retired-key records) are refreshed by a scrape at most every
//! [`STATS_MIN_AGE`]; scrapes in between render the cached values, so
//! scraping in a loop costs no database work.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use metrics::{Key, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::keys::KeyInfo;
use crate::store::StoreStats;

/// Least age of the store and key gauges before a scrape refreshes them.
pub const STATS_MIN_AGE: Duration = Duration::from_secs(15);
/// Longest a scrape waits for the store's statistics (then it renders
/// the previous values).
pub const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// Buckets of the latency histogram, seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Name of the request latency histogram.
pub const REQUEST_DURATION: &str = "ajwt_http_request_duration_seconds";

/// What an error response tells the metrics layer (a response extension
/// set by [`crate::http::error_response`]).
#[derive(Debug, Clone, Copy)]
pub struct Refusal {
    /// The error code of the body (RFC 6749 §5.2 and the draft's codes).
    pub error: &'static str,
    /// The rate limit that refused the request, if one did (I-73).
    pub limit: Option<&'static str>,
}

/// The error codes counted by name; anything else is counted as `other`
/// (bounded label values).
const ERROR_CODES: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_token",
    "insufficient_scope",
    "invalid_dpop_proof",
    "duplicate_agent",
    "unknown_agent",
    "agent_checksum_mismatch",
    "workflow_step_unauthorized",
    "unsupported_token_type",
    "temporarily_unavailable",
    "server_error",
];

impl Refusal {
    /// The refusal of an error code (mapped into the bounded set).
    pub fn of(error: &str, limit: Option<&'static str>) -> Refusal {
        let error = ERROR_CODES
            .iter()
            .find(|c| **c == error)
            .copied()
            .unwrap_or("other");
        Refusal { error, limit }
    }
}

/// The metrics of one issuer (see the module documentation).
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Unix ms of the last refresh of the store and key gauges (0: never).
    refreshed_ms: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A new, empty set of metrics with its own recorder.
    pub fn new() -> Metrics {
        // Only an empty bucket list is refused: keep the default
        // (summaries) then, which cannot happen with LATENCY_BUCKETS.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Metrics {
            recorder,
            handle,
            refreshed_ms: AtomicI64::new(0),
        };
        m.describe();
        m
    }

    fn describe(&self) {
        let counters: &[(&'static str, &'static str)] = &[
            ("ajwt_tokens_issued_total", "Tokens issued, by grant type"),
            (
                "ajwt_refusals_total",
                "Error responses, by endpoint (route template) and error code",
            ),
            (
                "ajwt_checksum_mismatches_total",
                "agent_checksum requests refused for a checksum that is not the registered one (§9.1.1)",
            ),
            (
                "ajwt_rate_limited_requests_total",
                "Requests refused by a rate limit (I-73), by limit",
            ),
        ];
        for (name, help) in counters {
            self.recorder.describe_counter(
                (*name).into(),
                Some(Unit::Count),
                SharedString::from(*help),
            );
        }
        self.recorder.describe_histogram(
            REQUEST_DURATION.into(),
            Some(Unit::Seconds),
            "Request latency by endpoint (route template), method and status class".into(),
        );
        let gauges: &[(&'static str, &'static str)] = &[
            ("ajwt_registry_agents", "Registered agents (§4.7.1)"),
            (
                "ajwt_registry_registrations",
                "Agent registrations, all versions",
            ),
            ("ajwt_registry_workflows", "Registered workflows (§4.7.2)"),
            ("ajwt_registry_clients", "OAuth clients"),
            ("ajwt_token_records", "Kept intent token records"),
            ("ajwt_status_lists", "Status lists"),
            (
                "ajwt_status_list_statuses_used",
                "Statuses allocated over all status lists",
            ),
            ("ajwt_signing_keys", "Signing keys by state (I-90)"),
            ("ajwt_db_pool_connections", "Open database connections"),
            ("ajwt_db_pool_idle", "Idle database connections"),
            ("ajwt_db_pool_max", "Largest size of the database pool"),
            (
                "ajwt_metrics_refreshed_timestamp_seconds",
                "When the store and key gauges were last refreshed (Unix seconds)",
            ),
        ];
        for (name, help) in gauges {
            self.recorder
                .describe_gauge((*name).into(), None, SharedString::from(*help));
        }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> metrics::Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &metadata())
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> metrics::Gauge {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &metadata())
    }

    /// A token was issued under `grant` (`client_credentials` or
    /// `agent_checksum`).
    pub fn token_issued(&self, grant: &'static str) {
        self.counter(
            "ajwt_tokens_issued_total",
            vec![Label::from_static_parts("grant", grant)],
        )
        .increment(1);
    }

    /// An `agent_checksum_mismatch` refusal (§9.1.1).
    pub fn checksum_mismatch(&self) {
        self.counter("ajwt_checksum_mismatches_total", Vec::new())
            .increment(1);
    }

    /// One request done: its latency and, for an error, its refusal.
    pub fn request(
        &self,
        endpoint: &str,
        method: &axum::http::Method,
        status: u16,
        seconds: f64,
        refusal: Option<Refusal>,
    ) {
        let method: &'static str = match method.as_str() {
            "GET" => "GET",
            "POST" => "POST",
            "HEAD" => "HEAD",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            "PATCH" => "PATCH",
            _ => "other",
        };
        let class = match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        let endpoint = SharedString::from(endpoint.to_owned());
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    REQUEST_DURATION,
                    vec![
                        Label::new("endpoint", endpoint.clone()),
                        Label::from_static_parts("method", method),
                        Label::from_static_parts("status", class),
                    ],
                ),
                &metadata(),
            )
            .record(seconds);
        if let Some(r) = refusal {
            self.counter(
                "ajwt_refusals_total",
                vec![
                    Label::new("endpoint", endpoint),
                    Label::from_static_parts("error", r.error),
                ],
            )
            .increment(1);
            if let Some(limit) = r.limit {
                self.counter(
                    "ajwt_rate_limited_requests_total",
                    vec![Label::from_static_parts("limit", limit)],
                )
                .increment(1);
            }
        }
    }

    /// Whether the store and key gauges are due for a refresh at `now_ms`;
    /// true for exactly one caller per [`STATS_MIN_AGE`].
    pub fn claim_refresh(&self, now_ms: i64) -> bool {
        let last = self.refreshed_ms.load(Ordering::Relaxed);
        let age = i64::try_from(STATS_MIN_AGE.as_millis()).unwrap_or(i64::MAX);
        if last != 0 && now_ms.saturating_sub(last) < age {
            return false;
        }
        self.refreshed_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Sets the store gauges.
    pub fn set_store_stats(&self, s: &StoreStats, now_ms: i64) {
        let set = |name: &'static str, v: f64| self.gauge(name, Vec::new()).set(v);
        set("ajwt_registry_agents", s.agents as f64);
        set("ajwt_registry_registrations", s.registrations as f64);
        set("ajwt_registry_workflows", s.workflows as f64);
        set("ajwt_registry_clients", s.clients as f64);
        set("ajwt_token_records", s.token_records as f64);
        set("ajwt_status_lists", s.status_lists as f64);
        set("ajwt_status_list_statuses_used", s.statuses_used as f64);
        set("ajwt_db_pool_connections", f64::from(s.pool_connections));
        set("ajwt_db_pool_idle", f64::from(s.pool_idle));
        set("ajwt_db_pool_max", f64::from(s.pool_max));
        set(
            "ajwt_metrics_refreshed_timestamp_seconds",
            (now_ms / 1000) as f64,
        );
    }

    /// Sets the key-state gauges from the ring's description.
    pub fn set_key_states(&self, keys: &[KeyInfo]) {
        for state in ["next", "current", "retiring", "retired"] {
            let n = keys.iter().filter(|k| k.state.to_string() == state).count();
            self.gauge(
                "ajwt_signing_keys",
                vec![Label::from_static_parts("state", state)],
            )
            .set(n as f64);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
