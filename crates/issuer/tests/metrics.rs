//! Metrics and health (issue 14, I-114): `GET /metrics` scraped after real
//! requests and read with an independent Prometheus text parser (the
//! `prometheus-parse` crate); label cardinality bounded under random paths;
//! store gauges cached between scrapes; `/readyz` 503 when the store is
//! down while `/healthz` stays a liveness check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::{HashMap, HashSet};

use ajwt_issuer::IssuerConfig;
use common::*;
use prometheus_parse::{Scrape, Value as PValue};
use serde_json::Value;

async fn scrape(h: &Harness) -> Scrape {
    let r = h.get("/metrics").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(std::str::from_utf8(&r.bytes).unwrap())
}

/// Parses an exposition with `prometheus-parse`, after a strict line check.
fn parse(text: &str) -> Scrape {
    // Strict line check on top of the parser: every line is a comment or
    // `name{labels} value`, names in the `ajwt_` namespace.
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(
                rest.starts_with("HELP ajwt_") || rest.starts_with("TYPE ajwt_"),
                "{line}"
            );
            continue;
        }
        assert!(line.starts_with("ajwt_"), "{line}");
        let value = line.rsplit(' ').next().unwrap();
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN",
            "{line}"
        );
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the counter or gauge `name` with exactly `labels`.
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    s.samples
        .iter()
        .find(|x| x.metric == name && *x.labels == want)
        .map(|x| match &x.value {
            PValue::Counter(v) | PValue::Gauge(v) | PValue::Untyped(v) => *v,
            other => panic!("{name}: not a single value: {other:?}"),
        })
}

/// The sample count of the histogram `name` with `labels`.
fn histogram_count(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    s.samples
        .iter()
        .find(|x| x.metric == name && *x.labels == want)
        .map(|x| match &x.value {
            PValue::Histogram(buckets) => {
                // Cumulative buckets, ending at +Inf with the count.
                let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
                assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
                let inf = buckets.last().unwrap();
                assert!(inf.less_than.is_infinite(), "{buckets:?}");
                inf.count
            }
            other => panic!("{name}: not a histogram: {other:?}"),
        })
}

fn wrong_checksum(agent: &TestAgent) -> Value {
    let mut body = agent.request(&["x"]);
    body["computed_checksum"] = Value::from(format!("sha256:{}", "0".repeat(64)));
    body
}

/// I-114: tokens by grant, refusals by endpoint and error code, checksum
/// mismatches, rate-limited requests, latency per route template, registry
/// and status-list sizes and key states, as an independent parser reads
/// them.
#[tokio::test]
async fn i114_metrics_count_tokens_refusals_and_latency() {
    let h = Harness::with_config(IssuerConfig {
        rate_limits: ajwt_issuer::config::RateLimitConfig {
            grant_failures: 1,
            ..Default::default()
        },
        ..test_config()
    })
    .await;
    let token = h.admin_token().await; // client_credentials #1
    let agent = TestAgent::new("metered");
    h.register(&token, &agent).await;
    let r = h.intent(&token, &agent.request(&["x"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = h.intent(&token, &agent.request(&["x"])).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Two mismatches: the second goes over the limit of 1 and boxes the
    // agent; the next request is rate limited.
    for _ in 0..2 {
        let r = h.intent(&token, &wrong_checksum(&agent)).await;
        assert_eq!(r.json["error"], "agent_checksum_mismatch", "{r:?}");
    }
    let r = h.intent(&token, &agent.request(&["x"])).await;
    assert_eq!(r.status, 429, "{r:?}");
    // A bad client secret (another client: the admin client is boxed).
    let mut wrong = h
        .issuer
        .create_client(vec![GENERATE.to_owned()], None)
        .await
        .unwrap();
    wrong.client_secret = "wrong".into();
    assert_eq!(h.client_credentials(&wrong, None).await.status, 401);
    // An agent lifecycle lookup (a route with a path parameter) that 404s.
    let r = h
        .send(
            axum::http::Request::get("/intent/agents/nobody-here")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");

    let s = scrape(&h).await;
    let grant = |g| value(&s, "ajwt_tokens_issued_total", &[("grant", g)]);
    assert_eq!(grant("client_credentials"), Some(1.0));
    assert_eq!(grant("agent_checksum"), Some(2.0));
    assert_eq!(value(&s, "ajwt_checksum_mismatches_total", &[]), Some(2.0));
    let refusals = |endpoint, error| {
        value(
            &s,
            "ajwt_refusals_total",
            &[("endpoint", endpoint), ("error", error)],
        )
    };
    assert_eq!(
        refusals("/intent/token", "agent_checksum_mismatch"),
        Some(2.0)
    );
    // The 429 and the unknown lifecycle agent.
    assert_eq!(
        refusals("/intent/token", "temporarily_unavailable"),
        Some(1.0)
    );
    assert_eq!(refusals("/intent/token", "invalid_client"), Some(1.0));
    assert_eq!(
        refusals("/intent/agents/:agent_id", "invalid_request"),
        Some(1.0),
        "the route template, not the raw path"
    );
    assert_eq!(
        value(
            &s,
            "ajwt_rate_limited_requests_total",
            &[("limit", "rate_limit_grant_failures")]
        ),
        Some(1.0)
    );
    let latency = |status| {
        histogram_count(
            &s,
            "ajwt_http_request_duration_seconds",
            &[
                ("endpoint", "/intent/token"),
                ("method", "POST"),
                ("status", status),
            ],
        )
    };
    assert_eq!(latency("2xx"), Some(3.0), "1 client_credentials + 2 intent");
    assert_eq!(latency("4xx"), Some(4.0), "2 mismatches, the 429, the 401");
    assert_eq!(
        histogram_count(
            &s,
            "ajwt_http_request_duration_seconds",
            &[
                ("endpoint", "/intent/register/agent"),
                ("method", "POST"),
                ("status", "2xx"),
            ],
        ),
        Some(1.0)
    );
    // Store and key gauges.
    assert_eq!(value(&s, "ajwt_registry_agents", &[]), Some(1.0));
    assert_eq!(value(&s, "ajwt_registry_registrations", &[]), Some(1.0));
    assert_eq!(value(&s, "ajwt_registry_workflows", &[]), Some(0.0));
    assert_eq!(value(&s, "ajwt_registry_clients", &[]), Some(2.0));
    assert_eq!(value(&s, "ajwt_token_records", &[]), Some(2.0));
    assert_eq!(value(&s, "ajwt_status_lists", &[]), Some(1.0));
    assert_eq!(value(&s, "ajwt_status_list_statuses_used", &[]), Some(2.0));
    assert_eq!(
        value(&s, "ajwt_signing_keys", &[("state", "current")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "ajwt_signing_keys", &[("state", "next")]),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "ajwt_db_pool_max", &[]),
        Some(1.0),
        "in-memory store: one connection"
    );
    assert!(value(&s, "ajwt_db_pool_connections", &[]).unwrap() >= 1.0);
    // Names carry their unit; HELP and TYPE are present.
    assert!(s.docs.contains_key("ajwt_http_request_duration_seconds"));
    assert!(s.docs.contains_key("ajwt_tokens_issued_total"));
}

/// I-114: random paths and methods do not grow the label sets: every
/// unrouted request is `endpoint="unmatched"`, odd methods are `other`.
#[tokio::test]
async fn i114_label_cardinality_is_bounded_under_random_paths() {
    let h = Harness::new().await;
    for i in 0..200u32 {
        let path = format!("/random/{i}/{}", i.wrapping_mul(2_654_435_761));
        assert_eq!(h.get(&path).await.status, 404);
        let method = axum::http::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
        let r = h
            .send(
                axum::http::Request::builder()
                    .method(method)
                    .uri(format!("/intent/agents/{i}"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(r.status >= 400);
    }
    let s = scrape(&h).await;
    let series: HashSet<Vec<(String, String)>> = s
        .samples
        .iter()
        .filter(|x| x.metric == "ajwt_http_request_duration_seconds")
        .map(|x| {
            let mut l: Vec<_> = x
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            l.sort();
            l
        })
        .collect();
    assert!(series.len() <= 3, "{series:?}");
    for labels in &series {
        let endpoint = &labels.iter().find(|(k, _)| k == "endpoint").unwrap().1;
        assert!(
            endpoint == "unmatched" || endpoint == "/intent/agents/:agent_id",
            "{labels:?}"
        );
        let method = &labels.iter().find(|(k, _)| k == "method").unwrap().1;
        assert!(method == "GET" || method == "other", "{labels:?}");
    }
    assert_eq!(
        histogram_count(
            &s,
            "ajwt_http_request_duration_seconds",
            &[
                ("endpoint", "unmatched"),
                ("method", "GET"),
                ("status", "4xx")
            ],
        ),
        Some(200.0)
    );
}

/// I-114: the store gauges are refreshed by a scrape at most every
/// `STATS_MIN_AGE`; a scrape loop reads the cache (no COUNT per scrape).
#[tokio::test]
async fn i114_store_gauges_are_cached_between_scrapes() {
    let h = Harness::new().await;
    let token = h.admin_token().await;
    h.register(&token, &TestAgent::new("first")).await;
    let s = scrape(&h).await;
    assert_eq!(value(&s, "ajwt_registry_agents", &[]), Some(1.0));
    let refreshed = value(&s, "ajwt_metrics_refreshed_timestamp_seconds", &[]);
    h.register(&token, &TestAgent::new("second")).await;
    for _ in 0..20 {
        let s = scrape(&h).await;
        assert_eq!(value(&s, "ajwt_registry_agents", &[]), Some(1.0), "cached");
        assert_eq!(
            value(&s, "ajwt_metrics_refreshed_timestamp_seconds", &[]),
            refreshed
        );
    }
}

/// I-114: `metrics = false` serves no `/metrics`.
#[tokio::test]
async fn i114_metrics_can_be_turned_off() {
    let h = Harness::with_config(IssuerConfig {
        metrics: false,
        ..test_config()
    })
    .await;
    let r = h.get("/metrics").await;
    assert_eq!(r.status, 404, "{r:?}");
}

/// `/readyz` reflects the database: 503 with an RFC 6749-shaped JSON reason
/// when the store cannot be reached; `/healthz` (liveness) stays 200.
#[tokio::test]
async fn i114_readyz_is_503_when_the_store_is_down_and_healthz_stays_up() {
    let h = Harness::new().await;
    let r = h.get("/readyz").await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("ready")));
    h.store.close().await;
    let r = h.get("/readyz").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json["error"], "temporarily_unavailable", "{r:?}");
    assert!(r.description().contains("store"), "{r:?}");
    let r = h.get("/healthz").await;
    assert_eq!((r.status, r.json["status"].as_str()), (200, Some("ok")));
    // Metrics still render (from the cache) without the store.
    let s = scrape(&h).await;
    assert!(s
        .samples
        .iter()
        .any(|x| x.metric == "ajwt_http_request_duration_seconds"));
}

/// I-114 over TCP (the real connection layer, peer addresses): failed
/// client authentications from one loopback address, the 429 that follows,
/// and the scrape by a plain HTTP client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i114_metrics_over_tcp_count_auth_failures_and_rate_limited_requests() {
    let issuer = ajwt_test_kit::RunningIssuer::start(|c| c.rate_limits.auth_failures = 2)
        .await
        .unwrap();
    let attacker = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = attacker
            .post(issuer.token_endpoint())
            .basic_auth(&issuer.admin.client_id, Some("wrong-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    let r = reqwest::get(format!("{}/metrics", issuer.base_url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s = parse(&r.text().await.unwrap());
    assert_eq!(
        value(
            &s,
            "ajwt_refusals_total",
            &[("endpoint", "/intent/token"), ("error", "invalid_client")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &s,
            "ajwt_rate_limited_requests_total",
            &[("limit", "rate_limit_auth_failures")]
        ),
        Some(1.0)
    );
    assert_eq!(
        histogram_count(
            &s,
            "ajwt_http_request_duration_seconds",
            &[
                ("endpoint", "/intent/token"),
                ("method", "POST"),
                ("status", "4xx")
            ],
        ),
        Some(4.0)
    );
    // The bootstrap admin client is in the registry gauges.
    assert_eq!(value(&s, "ajwt_registry_clients", &[]), Some(1.0));
    let ready = reqwest::get(format!("{}/readyz", issuer.base_url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
