//! Prometheus metrics of the running service: requests and latency per route, evaluations,
//! rule errors per rule, and rule reloads. Labels never carry personal data, and no
//! counter tells what one check found: `/metrics` is open to anyone who can reach the
//! port, and a counter of flags per rule, read before and after a check whose time is
//! known, would tell that person's flags. Flags are counted by the audit, with its
//! small-cell protection.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::engine::{Evaluation, RuleOutcome};
use crate::ruleset::RuleSet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    evaluations: Counter,
    rule_errors: Family<RuleLabels, Counter>,
    reloads: Family<ResultLabels, Counter>,
    long_work_running: Gauge,
    long_work_queued: Gauge,
    long_work_threads: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gk_regler");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 50 µs … ~1.6 s
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.00005, 2.0, 16,
            ))
        });
        let evaluations = Counter::default();
        let rule_errors = Family::<RuleLabels, Counter>::default();
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register(
            "evaluations",
            "Profiles evaluated (stored or dry run)",
            evaluations.clone(),
        );
        registry.register(
            "rule_errors",
            "Rules that failed at run time, by rule",
            rule_errors.clone(),
        );
        registry.register("rule_reloads", "Rule reloads by result", reloads.clone());
        let long_work_running = Gauge::default();
        let long_work_queued = Gauge::default();
        let long_work_threads = Gauge::default();
        registry.register(
            "long_work_running",
            "Long jobs (audits, replays, imports, backups) running now",
            long_work_running.clone(),
        );
        registry.register(
            "long_work_queued",
            "Long jobs waiting for a thread of their pool",
            long_work_queued.clone(),
        );
        registry.register(
            "long_work_threads",
            "Threads of the pool of long work",
            long_work_threads.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            evaluations,
            rule_errors,
            reloads,
            long_work_running,
            long_work_queued,
            long_work_threads,
        }
    }

    pub fn record_evaluation(&self, rules: &RuleSet, evaluation: &Evaluation) {
        self.evaluations.inc();
        for (rule, outcome) in rules.rules.iter().zip(&evaluation.outcomes) {
            if let RuleOutcome::Failed(_) = outcome {
                self.rule_errors
                    .get_or_create(&RuleLabels {
                        rule_id: rule.meta.id.to_string(),
                    })
                    .inc();
            }
        }
    }

    pub fn record_reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "refused" },
            })
            .inc();
    }

    /// Counts one answered HTTP request and observes its latency, labelled by the route
    /// template (never the concrete path, which could carry ids) and by a method from a
    /// fixed set (every label comes from a bounded set: a counter is kept for good).
    pub fn record_request(&self, method: &'static str, route: String, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let load = crate::long_work::pool().load();
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.long_work_running.set(gauge(load.running));
        self.long_work_queued.set(gauge(load.queued));
        self.long_work_threads.set(gauge(load.threads));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
