//! `POST /agent/v1/ingest`: the only way data gets in.
//!
//! Order of checks, cheapest and least trusting first: a verified client certificate; a
//! well-formed header; the header's agent id equal to the certificate's; the agent issued
//! and not revoked; the tag (AES-256-GCM under that agent's key); the clock-skew window;
//! the replay window; the payload. Only then is anything stored, in one transaction that
//! also persists the new replay window. A refused message stores nothing of its own; an
//! integrity or replay failure stores a security alert naming the peer instead.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use bytes::Bytes;
use chrono::Utc;
use vigil_model::{AgentId, Alert, Category};
use vigil_store::IngestBatch;
use vigil_wire::{ReplayVerdict, ReplayWindow, WireError};

use crate::error::ApiError;
use crate::state::{AppState, PeerInfo};

/// Handles one sealed batch.
pub async fn ingest(
    State(state): State<AppState>,
    Extension(peer): Extension<PeerInfo>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(cert_agent) = peer.agent.clone() else {
        state.counters.identity_refusals.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::unauthorized(
            "agent routes need a client certificate issued by this server's CA (vigil certs agent)",
        ));
    };

    let (header, _) = match vigil_wire::peek(&body) {
        Ok(h) => h,
        Err(e) => {
            refuse_integrity(&state, &peer, &cert_agent, None, &e.to_string()).await;
            return Err(integrity_error(&e));
        }
    };
    if header.agent_id != cert_agent {
        state.counters.identity_refusals.fetch_add(1, Ordering::Relaxed);
        let reason =
            format!("message claims agent {} but the client certificate is for {}", header.agent_id, cert_agent);
        refuse_integrity(&state, &peer, &cert_agent, Some(&header.agent_id), &reason).await;
        return Err(ApiError::forbidden("the agent id in the message does not match the client certificate"));
    }

    let record = match state.agents.lookup(&cert_agent) {
        Ok(Some(r)) => r,
        Ok(None) => {
            state.counters.identity_refusals.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::forbidden(format!("agent {cert_agent} is not known to this server")));
        }
        Err(e) => {
            tracing::error!(error = %e, agent = %cert_agent, "cannot read agent record");
            return Err(ApiError::internal());
        }
    };
    if record.revoked {
        state.counters.identity_refusals.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(agent = %cert_agent, peer = %peer.addr, "refused message from revoked agent");
        return Err(ApiError::forbidden(format!("agent {cert_agent} has been revoked")));
    }

    let opened = match vigil_wire::open(&record.sealing_key, &body) {
        Ok(o) => o,
        Err(e) => {
            refuse_integrity(&state, &peer, &cert_agent, Some(&header.agent_id), &e.to_string()).await;
            return Err(integrity_error(&e));
        }
    };
    let h = &opened.header;

    let now = Utc::now();
    let skew_ms = i64::try_from(state.settings.clock_skew.as_millis()).unwrap_or(i64::MAX);
    if !vigil_wire::within_clock_skew(h.timestamp_ms, now.timestamp_millis(), skew_ms) {
        let reason = format!(
            "message stamped {} ms away from the server clock (allowed: {} ms)",
            h.timestamp_ms.saturating_sub(now.timestamp_millis()),
            skew_ms
        );
        refuse_replay(&state, &peer, &cert_agent, h.boot_epoch, h.seq, &reason).await;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "stale",
            "message is outside the clock-skew window; check the agent's and server's clocks (NTP)",
        ));
    }

    let batch = vigil_wire::decode_batch(&opened).map_err(|e| {
        tracing::warn!(agent = %cert_agent, error = %e, "authenticated message with a bad payload");
        ApiError::bad_request(format!("payload refused: {e}"))
    })?;

    // Serialise messages of one agent: check, store, then commit the window.
    let slot = state.replay_slot(&cert_agent);
    let mut guard = slot.lock().await;
    if guard.is_none() {
        let stored = state.store.load_replay_state(&cert_agent).await?;
        *guard = Some(stored.as_deref().and_then(ReplayWindow::from_bytes).unwrap_or_default());
    }
    let window = guard.get_or_insert_with(ReplayWindow::default);
    match window.check(h.boot_epoch, h.seq) {
        ReplayVerdict::Accept => {}
        verdict => {
            let reason = match verdict {
                ReplayVerdict::Duplicate => "message already received (replay)",
                ReplayVerdict::Stale => "message older than the replay window or from an old boot epoch",
                _ => "message numbered 0, which no agent sends",
            };
            drop(guard);
            refuse_replay(&state, &peer, &cert_agent, h.boot_epoch, h.seq, reason).await;
            return Err(ApiError::new(StatusCode::CONFLICT, "replay", reason));
        }
    }
    let mut next = window.clone();
    next.commit(h.boot_epoch, h.seq);
    let peer_text = peer.addr.to_string();
    let outcome = state
        .store
        .ingest(&IngestBatch {
            agent: &cert_agent,
            peer: &peer_text,
            received_at: now,
            replay_state: &next.to_bytes(),
            items: &batch.items,
        })
        .await?;
    *window = next;
    drop(guard);
    state.counters.accepted.fetch_add(1, Ordering::Relaxed);
    state.counters.samples.fetch_add(u64::from(outcome.samples), Ordering::Relaxed);
    state.counters.alerts.fetch_add(u64::from(outcome.alerts), Ordering::Relaxed);
    state.counters.duplicates.fetch_add(u64::from(outcome.duplicates), Ordering::Relaxed);
    crate::events::publish_batch(&state, &cert_agent, &peer_text, now, &batch.items);
    // Stored first, analysed after: a full pipeline queue never loses data.
    state.pipeline.offer_batch(&cert_agent, &batch.items);
    tracing::debug!(agent = %cert_agent, epoch = h.boot_epoch, seq = h.seq, items = batch.items.len(), "batch stored");
    Ok(Json(serde_json::json!({
        "accepted": {"samples": outcome.samples, "alerts": outcome.alerts, "resolved": outcome.resolved},
        "duplicates": outcome.duplicates,
    })))
}

fn integrity_error(e: &WireError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "integrity_failure", format!("message refused: {e}"))
}

async fn refuse_integrity(
    state: &AppState,
    peer: &PeerInfo,
    cert_agent: &AgentId,
    claimed: Option<&AgentId>,
    reason: &str,
) {
    state.counters.integrity_failures.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(peer = %peer.addr, certificate = %cert_agent, reason, "integrity failure");
    let mut alert = Alert::new(
        Category::IntegrityFailure,
        Utc::now(),
        format!("message from {} (certificate {cert_agent}) refused: {reason}", peer.addr),
    );
    alert.evidence = serde_json::json!({
        "peer": peer.addr.to_string(),
        "certificate_agent": cert_agent.as_str(),
        "claimed_agent": claimed.map(AgentId::as_str),
        "reason": reason,
    });
    store_security_alert(state, peer, cert_agent, alert).await;
}

async fn refuse_replay(state: &AppState, peer: &PeerInfo, cert_agent: &AgentId, epoch: u64, seq: u64, reason: &str) {
    state.counters.replays.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(peer = %peer.addr, certificate = %cert_agent, epoch, seq, reason, "replay refused");
    let mut alert = Alert::new(
        Category::ReplayAttempt,
        Utc::now(),
        format!("message from {} (certificate {cert_agent}) refused: {reason}", peer.addr),
    );
    alert.evidence = serde_json::json!({
        "peer": peer.addr.to_string(),
        "certificate_agent": cert_agent.as_str(),
        "boot_epoch": epoch,
        "seq": seq,
        "reason": reason,
    });
    store_security_alert(state, peer, cert_agent, alert).await;
}

async fn store_security_alert(state: &AppState, peer: &PeerInfo, cert_agent: &AgentId, mut alert: Alert) {
    let admitted = {
        let mut limiter = state.security_limiter.lock().unwrap_or_else(|p| p.into_inner());
        limiter.admit(alert.category, peer.addr.ip(), Instant::now())
    };
    let Some(folded) = admitted else {
        state.counters.security_alerts_suppressed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    alert.agent = Some(cert_agent.clone());
    alert.src_ip = Some(peer.addr.ip());
    alert.src_port = Some(peer.addr.port());
    if let Some(obj) = alert.evidence.as_object_mut() {
        obj.insert("similar_since_last_alert".into(), folded.into());
    }
    let peer_text = peer.addr.to_string();
    let now = Utc::now();
    match state.store.insert_alert(&alert, Some(&peer_text), now).await {
        Ok(true) => {
            state.counters.alerts.fetch_add(1, Ordering::Relaxed);
            let view = crate::events::new_alert_view(&alert, now, Some(&peer_text));
            state.events.publish(crate::events::EventKind::Alert, &view);
            // Repeated failures from one peer become a monitor-attack incident.
            state.pipeline.offer(crate::pipeline::Input::Alert(Box::new(alert)));
        }
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "cannot store security alert"),
    }
}
