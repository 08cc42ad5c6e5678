//! `GET /metrics`: the server's own figures and each agent's latest host metrics, in the
//! OpenMetrics text format, for Prometheus (and the Grafana dashboard in
//! `deploy/grafana/`). Built afresh at each scrape from the counters and the database, so
//! nothing here can drift from what the API shows.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vigil_store::MetricPoint;

use crate::api::{ApiQuery, ErrorBody, Params};
use crate::apikey::Role;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

type Labels = Vec<(String, String)>;
type FGauge = Family<Labels, Gauge<f64, AtomicU64>>;

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g: Gauge<f64, AtomicU64> = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn family(reg: &mut Registry, name: &str, help: &str) -> FGauge {
    let f = FGauge::default();
    reg.register(name, help, f.clone());
    f
}

fn set(f: &FGauge, labels: &[(&str, &str)], v: f64) {
    let l: Labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    f.get_or_create(&l).set(v);
}

/// Renders every metric as OpenMetrics text.
pub async fn render(state: &AppState) -> Result<String, ApiError> {
    let mut reg = Registry::default();
    let c = &state.counters;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    counter(&mut reg, "vigil_ingest_batches", "Sealed batches stored", load(&c.accepted));
    counter(&mut reg, "vigil_ingest_samples", "Metric samples stored", load(&c.samples));
    counter(&mut reg, "vigil_ingest_alerts", "Alerts stored (agents' and the server's own)", load(&c.alerts));
    counter(&mut reg, "vigil_ingest_duplicates", "Items already stored (resent batches)", load(&c.duplicates));
    let refused = Family::<Labels, Counter>::default();
    reg.register("vigil_ingest_refused", "Messages refused, by reason", refused.clone());
    for (reason, v) in [
        ("integrity", load(&c.integrity_failures)),
        ("replay", load(&c.replays)),
        ("identity", load(&c.identity_refusals)),
    ] {
        refused.get_or_create(&vec![("reason".to_owned(), reason.to_owned())]).inc_by(v);
    }
    counter(
        &mut reg,
        "vigil_security_alerts_suppressed",
        "Server security alerts folded into an earlier one",
        load(&c.security_alerts_suppressed),
    );
    counter(&mut reg, "vigil_api_rate_limited", "API requests refused with 429", load(&state.limiter.refused));
    counter(
        &mut reg,
        "vigil_events_published",
        "Live events published",
        state.events.published.load(Ordering::Relaxed),
    );
    gauge(&mut reg, "vigil_events_buffered", "Live events held for resuming clients", state.events.len() as f64);
    gauge(&mut reg, "vigil_event_streams", "Event streams open", state.events.streams.load(Ordering::Relaxed) as f64);
    let p = &state.pipeline.counters;
    counter(&mut reg, "vigil_pipeline_inputs", "Inputs queued for the alert pipeline", load(&p.queued));
    counter(
        &mut reg,
        "vigil_pipeline_inputs_dropped",
        "Inputs stored but not analysed because the pipeline queue was full",
        load(&p.dropped),
    );
    counter(&mut reg, "vigil_pipeline_repeats", "Alerts the pipeline skipped as resent", load(&p.repeats));
    counter(&mut reg, "vigil_pipeline_events", "Events the pipeline emitted", load(&p.events));
    counter(&mut reg, "vigil_pipeline_event_failures", "Pipeline events whose storage failed", load(&p.event_failures));
    counter(&mut reg, "vigil_pipeline_state_saves", "Pipeline state saves", load(&p.saves));
    counter(&mut reg, "vigil_pipeline_state_save_failures", "Pipeline state saves that failed", load(&p.save_failures));
    gauge(
        &mut reg,
        "vigil_pipeline_queue_depth",
        "Inputs waiting for the pipeline",
        state.pipeline.queue_depth() as f64,
    );
    gauge(
        &mut reg,
        "vigil_pipeline_queue_capacity",
        "Size of the pipeline queue",
        state.pipeline.queue_capacity() as f64,
    );
    let pools = state.store.pool_stats();
    let pool = family(&mut reg, "vigil_store_connections", "Database connections by pool and state");
    set(
        &pool,
        &[("pool", "writer"), ("state", "busy")],
        f64::from(pools.writer_size.saturating_sub(pools.writer_idle)),
    );
    set(&pool, &[("pool", "writer"), ("state", "idle")], f64::from(pools.writer_idle));
    set(
        &pool,
        &[("pool", "reader"), ("state", "busy")],
        f64::from(pools.reader_size.saturating_sub(pools.reader_idle)),
    );
    set(&pool, &[("pool", "reader"), ("state", "idle")], f64::from(pools.reader_idle));
    gauge(&mut reg, "vigil_store_size_bytes", "Size of the database file", state.store.size_bytes().await? as f64);

    let now = Utc::now();
    let agents = state.agents_with_latest().await?;
    let online = agents.iter().filter(|(a, _)| crate::api::is_online(a, now)).count();
    let by_status = family(&mut reg, "vigil_agents", "Agents known, by status");
    set(&by_status, &[("status", "online")], online as f64);
    set(&by_status, &[("status", "offline")], (agents.len() - online) as f64);

    let up = family(&mut reg, "vigil_agent_up", "1 when the agent reported within three intervals");
    let seen = family(&mut reg, "vigil_agent_last_seen_timestamp_seconds", "When the agent last reported");
    let spool_bytes = family(&mut reg, "vigil_agent_spool_bytes", "Bytes queued in the agent's spool");
    let spool_batches = family(&mut reg, "vigil_agent_spool_batches", "Batches queued in the agent's spool");
    let dropped = family(&mut reg, "vigil_agent_dropped", "Items the agent dropped, by kind");
    let cpu = family(&mut reg, "vigil_agent_cpu_percent", "Latest CPU use");
    let mem = family(&mut reg, "vigil_agent_memory_percent", "Latest memory use");
    let disk = family(&mut reg, "vigil_agent_disk_used_percent", "Latest use of the fullest disk");
    let load1 = family(&mut reg, "vigil_agent_load1", "Latest one-minute load average");
    let net =
        family(&mut reg, "vigil_agent_network_bytes_per_second", "Latest network rate, all interfaces but loopback");
    let pkts =
        family(&mut reg, "vigil_agent_network_packets_per_second", "Latest packet rate, all interfaces but loopback");
    let ts = family(&mut reg, "vigil_agent_sample_timestamp_seconds", "When the latest sample was taken");
    for (row, sample) in &agents {
        let id = row.id.as_str();
        let a = [("agent", id)];
        set(&up, &a, if crate::api::is_online(row, now) { 1.0 } else { 0.0 });
        set(&seen, &a, row.last_seen.timestamp_millis() as f64 / 1000.0);
        set(&spool_bytes, &a, row.stats.spool_bytes as f64);
        set(&spool_batches, &a, row.stats.spool_batches as f64);
        set(&dropped, &[("agent", id), ("kind", "samples")], row.stats.dropped_samples as f64);
        set(&dropped, &[("agent", id), ("kind", "alerts")], row.stats.dropped_alerts as f64);
        let Some(s) = sample else { continue };
        let p = MetricPoint::from_sample(s);
        set(&cpu, &a, p.cpu);
        set(&mem, &a, p.mem);
        set(&disk, &a, p.disk);
        set(&load1, &a, s.load_average[0]);
        set(&net, &[("agent", id), ("direction", "rx")], p.rx_bps);
        set(&net, &[("agent", id), ("direction", "tx")], p.tx_bps);
        set(&pkts, &[("agent", id), ("direction", "rx")], p.rx_pps);
        set(&pkts, &[("agent", id), ("direction", "tx")], p.tx_pps);
        set(&ts, &a, s.timestamp.timestamp_millis() as f64 / 1000.0);
    }
    let mut out = String::new();
    encode(&mut out, &reg).map_err(|e| {
        tracing::error!(error = %e, "cannot encode metrics");
        ApiError::internal()
    })?;
    Ok(out)
}

/// Prometheus metrics in OpenMetrics text (viewer; Prometheus can send the key as a
/// bearer token).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "server",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []), ("session" = []))
)]
pub async fn metrics(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(raw): ApiQuery,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    Params::new(raw, &[])?;
    let body = render(&state).await?;
    Ok(([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response())
}
