//! Timeline tests of every rule through the public [`Pipeline`] API, with the clock
//! injected: over and under thresholds, windows at their edges.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use vigil_model::{AgentId, AgentInfo, Alert, AlertResolved, Category, Severity};

use crate::eval::{EvalSpec, run_agent, score};
use crate::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(ms)
}

fn secs(s: i64) -> DateTime<Utc> {
    at(s * 1000)
}

fn agent(n: &str) -> AgentId {
    AgentId::new(n).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn alert(cat: Category, who: &str, src: Option<&str>, dst: Option<&str>, ts: DateTime<Utc>) -> Alert {
    let mut a = Alert::new(cat, ts, format!("{cat} test"));
    a.agent = Some(agent(who));
    a.src_ip = src.map(ip);
    a.dst_ip = dst.map(ip);
    a
}

struct Harness {
    p: Pipeline,
    events: Vec<PipelineEvent>,
}

impl Harness {
    fn new() -> Self {
        Self::with(PipelineConfig::default())
    }
    fn with(cfg: PipelineConfig) -> Self {
        Self { p: Pipeline::new(cfg).unwrap(), events: Vec::new() }
    }
    fn send(&mut self, a: &Alert, now: DateTime<Utc>) -> Ingested {
        self.p.ingest_alert(a, now, &mut self.events)
    }
    /// Sends `a` with `now` equal to its timestamp.
    fn live(&mut self, a: &Alert) -> Ingested {
        let now = a.timestamp;
        self.send(a, now)
    }
    fn tick(&mut self, now: DateTime<Utc>) {
        self.p.tick(now, &mut self.events);
    }
    fn take(&mut self) -> Vec<PipelineEvent> {
        std::mem::take(&mut self.events)
    }
    fn incidents_opened(&self, kind: IncidentKind) -> Vec<&Incident> {
        self.events
            .iter()
            .filter_map(|e| match e {
                PipelineEvent::IncidentOpened(i) if i.kind == kind => Some(&**i),
                _ => None,
            })
            .collect()
    }
    fn dos_incidents(&self) -> usize {
        self.p.open_incidents().filter(|i| i.kind == IncidentKind::DosSuspected).count()
    }
    fn notifications(&self) -> Vec<&Notification> {
        self.events
            .iter()
            .filter_map(|e| match e {
                PipelineEvent::Notify(n) => Some(n),
                _ => None,
            })
            .collect()
    }
    fn raised(&self, cat: Category) -> Vec<&Alert> {
        self.events
            .iter()
            .filter_map(|e| match e {
                PipelineEvent::AlertRaised(a) if a.category == cat => Some(a),
                _ => None,
            })
            .collect()
    }
    fn resolved(&self) -> Vec<(Subject, ResolveReason)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                PipelineEvent::Resolved { subject, reason, .. } => Some((*subject, *reason)),
                _ => None,
            })
            .collect()
    }
}

fn flood(who: &str, ts: DateTime<Utc>) -> Alert {
    alert(Category::SynFlood, who, None, Some("10.0.0.1"), ts)
}

// ---------------------------------------------------------------- dos_suspected

#[test]
fn three_agents_flooding_one_target_within_10s_raise_exactly_one_dos_incident() {
    let mut h = Harness::new();
    let mut ids = Vec::new();
    // One alert from each of three agents: the consensus rule (N is not reached).
    for (i, who) in ["a1", "a2", "a3"].iter().enumerate() {
        let a = flood(who, secs(4 * i as i64));
        ids.push(a.id);
        h.live(&a);
    }
    let opened = h.incidents_opened(IncidentKind::DosSuspected);
    assert_eq!(opened.len(), 1);
    let inc = opened[0];
    assert_eq!(inc.severity, Severity::Critical);
    assert_eq!(inc.target, Some(ip("10.0.0.1")));
    assert_eq!(inc.alert_ids, ids);
    assert_eq!(inc.agents.len(), 3);
    assert_eq!(h.raised(Category::DosSuspected).len(), 1);
    assert!(
        h.notifications().iter().any(|n| n.subject == Subject::Incident(inc.id) && n.severity == Severity::Critical)
    );
    // The flood goes on: it joins the open incident, no second one.
    for i in 0..20 {
        h.live(&flood(["a1", "a2", "a3"][i % 3], secs(10 + i as i64)));
    }
    assert_eq!(h.incidents_opened(IncidentKind::DosSuspected).len(), 1);
    assert_eq!(h.dos_incidents(), 1);
    assert_eq!(h.raised(Category::DosSuspected).len(), 1);
}

#[test]
fn dos_needs_n_alerts_and_m_agents() {
    // Four alerts from two agents: under N = 5 and under the consensus of 3 agents.
    let mut h = Harness::new();
    for (i, who) in ["a1", "a2", "a1", "a2"].iter().enumerate() {
        h.live(&flood(who, secs(i as i64)));
    }
    assert_eq!(h.dos_incidents(), 0);
    // The fifth, from one of the same two agents: N = 5 from M = 2.
    h.live(&flood("a1", secs(4)));
    assert_eq!(h.dos_incidents(), 1);
    // Twenty alerts from one agent: under M = 2.
    let mut h = Harness::new();
    for i in 0..20 {
        h.live(&flood("a1", at(i * 400)));
    }
    assert_eq!(h.dos_incidents(), 0);
    assert!(h.raised(Category::DosSuspected).is_empty());
}

#[test]
fn dos_consensus_needs_three_agents_inside_the_window_and_can_be_turned_off() {
    // Three agents, one alert each, first and last exactly 10 s apart: one incident.
    let mut h = Harness::new();
    for (ms, who) in [(0, "a1"), (5000, "a2"), (10_000, "a3")] {
        h.live(&flood(who, at(ms)));
    }
    assert_eq!(h.dos_incidents(), 1);
    // One millisecond more: only two agents are ever in the window together.
    let mut h = Harness::new();
    for (ms, who) in [(0, "a1"), (5000, "a2"), (10_001, "a3")] {
        h.live(&flood(who, at(ms)));
    }
    assert_eq!(h.dos_incidents(), 0);
    // Three agents, but alerts of a kind that is not a flood or scan: no consensus.
    let mut h = Harness::new();
    for (i, who) in ["a1", "a2", "a3"].iter().enumerate() {
        h.live(&alert(Category::SuspiciousPort, who, None, Some("10.0.0.1"), secs(i as i64)));
    }
    assert_eq!(h.dos_incidents(), 0);
    // Turned off: three agents' alerts are under N = 5.
    let mut cfg = PipelineConfig::default();
    cfg.dos.consensus_agents = 0;
    let mut h = Harness::with(cfg);
    for (i, who) in ["a1", "a2", "a3"].iter().enumerate() {
        h.live(&flood(who, secs(i as i64)));
    }
    assert_eq!(h.dos_incidents(), 0);
}

#[test]
fn dos_window_is_inclusive_at_exactly_t() {
    // Five alerts, first and last exactly 10 s apart: one incident.
    let mut h = Harness::new();
    for (ms, who) in [(0, "a1"), (2500, "a2"), (5000, "a1"), (7500, "a2"), (10_000, "a1")] {
        h.live(&flood(who, at(ms)));
    }
    assert_eq!(h.dos_incidents(), 1);
    // One millisecond more: the first has left the window when the fifth arrives.
    let mut h = Harness::new();
    for (ms, who) in [(0, "a1"), (2500, "a2"), (5000, "a1"), (7500, "a2"), (10_001, "a1")] {
        h.live(&flood(who, at(ms)));
    }
    assert_eq!(h.dos_incidents(), 0);
}

#[test]
fn alerts_spread_over_minutes_raise_no_dos() {
    let mut h = Harness::new();
    for i in 0..15 {
        h.live(&flood(["a1", "a2", "a3"][i % 3], secs(30 * i as i64)));
        h.tick(secs(30 * i as i64));
    }
    assert_eq!(h.dos_incidents(), 0);
    assert!(h.raised(Category::DosSuspected).is_empty());
}

#[test]
fn dos_counts_late_alerts_in_time_order_and_after_a_restore() {
    // The fifth alert arrives last but is stamped inside the window: it still counts, and
    // an alert stamped before the window's edge does not.
    let mut h = Harness::new();
    for (ms, who) in [(0, "a1"), (2000, "a2"), (9000, "a1"), (9500, "a2")] {
        h.live(&flood(who, at(ms)));
    }
    let late = flood("a1", at(1000));
    h.send(&late, at(9600));
    assert_eq!(h.dos_incidents(), 1);
    let inc = h.p.open_incidents().find(|i| i.kind == IncidentKind::DosSuspected).unwrap();
    assert_eq!(inc.alert_ids.len(), 5);
    assert_eq!(inc.alert_ids[1], late.id, "ids in alert-time order");

    // Four alerts, then a save and restore: the counts are rebuilt and the fifth triggers.
    let mut h = Harness::new();
    for (ms, who) in [(0, "a1"), (1000, "a2"), (2000, "a1"), (3000, "a2")] {
        h.live(&flood(who, at(ms)));
    }
    let json = serde_json::to_string(h.p.state()).unwrap();
    let mut back = Harness {
        p: Pipeline::restore(PipelineConfig::default(), serde_json::from_str(&json).unwrap()).unwrap(),
        events: Vec::new(),
    };
    assert_eq!(back.dos_incidents(), 0);
    // Too old for the window's edge (newest 3 s - 10 s): not counted.
    back.send(&flood("a1", at(-7001)), at(3100));
    assert_eq!(back.dos_incidents(), 0);
    back.live(&flood("a1", at(4000)));
    assert_eq!(back.dos_incidents(), 1);
}

#[test]
fn broad_rule_counts_any_kind_above_min_severity() {
    let mut h = Harness::new();
    for (i, who) in ["a1", "a2", "a1", "a2", "a1"].iter().enumerate() {
        let src = format!("192.0.2.{i}");
        h.live(&alert(Category::BruteForce, who, Some(&src), Some("10.0.0.9"), secs(i as i64)));
    }
    assert_eq!(h.dos_incidents(), 1);
    let inc = h.p.open_incidents().find(|i| i.kind == IncidentKind::DosSuspected).unwrap();
    assert_eq!(inc.evidence["rule"], "broad");
    // Low-severity alerts do not count.
    let mut h = Harness::new();
    for (i, who) in ["a1", "a2", "a1", "a2", "a1", "a2"].iter().enumerate() {
        h.live(&alert(Category::InsecureProtocol, who, None, Some("10.0.0.9"), secs(i as i64)));
    }
    assert_eq!(h.dos_incidents(), 0);
    // With the broad rule off, brute force alone does not count either.
    let mut cfg = PipelineConfig::default();
    cfg.dos.broad_rule = false;
    let mut h = Harness::with(cfg);
    for (i, who) in ["a1", "a2", "a1", "a2", "a1"].iter().enumerate() {
        h.live(&alert(Category::BruteForce, who, None, Some("10.0.0.9"), secs(i as i64)));
    }
    assert_eq!(h.dos_incidents(), 0);
}

#[test]
fn dos_combined_rate_sums_agents_and_sources_without_double_counting_repeats() {
    let mut h = Harness::new();
    let mk = |who: &str, src: &str, rate: f64, s: i64| {
        let mut a = alert(Category::SynFlood, who, Some(src), Some("10.0.0.1"), secs(s));
        a.evidence = serde_json::json!({ "rate_pps": rate });
        a
    };
    h.live(&mk("a1", "192.0.2.1", 1000.0, 0));
    h.live(&mk("a1", "192.0.2.1", 1500.0, 1)); // a repeat of one observation: max, not sum
    h.live(&mk("a2", "192.0.2.1", 2000.0, 2));
    h.live(&mk("a3", "192.0.2.2", 3000.0, 3));
    let mut packets = alert(Category::IcmpFlood, "a3", Some("192.0.2.3"), Some("10.0.0.1"), secs(4));
    packets.evidence = serde_json::json!({ "packets": 5000, "window_secs": 5 });
    h.live(&packets);
    let inc = h.p.open_incidents().find(|i| i.kind == IncidentKind::DosSuspected).unwrap();
    assert_eq!(inc.evidence["combined_rate_pps"], 1500.0 + 2000.0 + 3000.0 + 1000.0);
    assert_eq!(inc.evidence["combined_packets"], 5000.0);
    assert_eq!(inc.evidence["rule"], "flood");
}

#[test]
fn a_new_dos_incident_only_after_the_first_is_resolved() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.live(&flood(["a1", "a2"][i % 2], secs(i as i64)));
    }
    let first = h.p.open_incidents().find(|i| i.kind == IncidentKind::DosSuspected).unwrap().id;
    h.p.resolve(Subject::Incident(first), secs(6), &mut h.events).unwrap();
    for i in 0..5 {
        h.live(&flood(["a1", "a2"][i % 2], secs(20 + i as i64)));
    }
    assert_eq!(h.incidents_opened(IncidentKind::DosSuspected).len(), 2);
    assert_eq!(h.dos_incidents(), 1);
}

#[test]
fn dos_promotes_an_open_target_incident_instead_of_opening_a_second() {
    let mut h = Harness::new();
    // Two scans from different sources against one host: a target incident.
    h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), Some("10.0.0.1"), secs(0)));
    h.live(&alert(Category::PortScan, "a2", Some("192.0.2.2"), Some("10.0.0.1"), secs(1)));
    assert_eq!(h.incidents_opened(IncidentKind::Target).len(), 1);
    for i in 0..3 {
        h.live(&alert(
            Category::PortScan,
            ["a1", "a2", "a3"][i],
            Some("192.0.2.3"),
            Some("10.0.0.1"),
            secs(2 + i as i64),
        ));
    }
    assert_eq!(h.incidents_opened(IncidentKind::DosSuspected).len(), 0);
    assert_eq!(h.p.open_incidents().count(), 1);
    let inc = h.p.open_incidents().next().unwrap();
    assert_eq!(inc.kind, IncidentKind::DosSuspected);
    assert_eq!(inc.severity, Severity::Critical);
}

// ---------------------------------------------------------------- lifecycle

#[test]
fn identical_alerts_merge_into_one_record() {
    let mut h = Harness::new();
    let a1 = alert(Category::PortScan, "a1", Some("192.0.2.1"), Some("10.0.0.1"), secs(0));
    let first = h.live(&a1);
    assert!(first.opened);
    let second = h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), Some("10.0.0.1"), secs(5)));
    assert_eq!(second.record, first.record);
    assert!(!second.opened);
    h.live(&alert(Category::PortScan, "a2", Some("192.0.2.1"), Some("10.0.0.1"), secs(7)));
    let rec = h.p.alert_record(first.record.unwrap()).unwrap();
    assert_eq!(rec.count, 3);
    assert_eq!(rec.first_seen, secs(0));
    assert_eq!(rec.last_seen, secs(7));
    assert_eq!(rec.first_alert_id, a1.id);
    assert_eq!(rec.agents.len(), 2);
    // Another destination is another record.
    let other = h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), Some("10.0.0.2"), secs(8)));
    assert_ne!(other.record, first.record);
    // Host alerts (no addresses) are told apart by agent.
    let c1 = h.live(&alert(Category::HostCpuHigh, "a1", None, None, secs(9)));
    let c2 = h.live(&alert(Category::HostCpuHigh, "a2", None, None, secs(9)));
    assert_ne!(c1.record, c2.record);
}

#[test]
fn related_alerts_from_one_attacker_form_an_incident_within_the_window() {
    let mut h = Harness::new();
    let r1 = h.live(&alert(Category::PortScan, "a1", Some("192.0.2.7"), Some("10.0.0.1"), secs(0)));
    assert!(h.incidents_opened(IncidentKind::Attacker).is_empty());
    let r2 = h.live(&alert(Category::BruteForce, "a1", Some("192.0.2.7"), Some("10.0.0.2"), secs(600)));
    let opened = h.incidents_opened(IncidentKind::Attacker);
    assert_eq!(opened.len(), 1, "600 s is inside the 10-minute window");
    let inc = opened[0].clone();
    assert_eq!(inc.source, Some(ip("192.0.2.7")));
    assert_eq!(inc.records, vec![r1.record.unwrap(), r2.record.unwrap()]);
    assert_eq!(inc.severity, Severity::High);
    assert_eq!(h.p.alert_record(r1.record.unwrap()).unwrap().incident, Some(inc.id));
    // A third alert of the same attacker joins it.
    let r3 = h.live(&alert(Category::SuspiciousPort, "a2", Some("192.0.2.7"), Some("10.0.0.3"), secs(650)));
    assert_eq!(h.p.incident(inc.id).unwrap().records.len(), 3);
    assert_eq!(h.p.alert_record(r3.record.unwrap()).unwrap().incident, Some(inc.id));

    // Just outside the window: no incident.
    let mut h = Harness::new();
    h.live(&alert(Category::PortScan, "a1", Some("192.0.2.7"), Some("10.0.0.1"), secs(0)));
    h.live(&alert(Category::BruteForce, "a1", Some("192.0.2.7"), Some("10.0.0.2"), at(600_001)));
    assert!(h.incidents_opened(IncidentKind::Attacker).is_empty());
    // Low-severity alerts do not group.
    let mut h = Harness::new();
    h.live(&alert(Category::InsecureProtocol, "a1", Some("192.0.2.7"), Some("10.0.0.1"), secs(0)));
    h.live(&alert(Category::UnencryptedHttp, "a1", Some("192.0.2.7"), Some("10.0.0.2"), secs(1)));
    assert!(h.p.open_incidents().next().is_none());
}

#[test]
fn severity_escalates_with_count_and_agents() {
    let mut h = Harness::new();
    let mk = |who: &str, s: i64| alert(Category::PortScan, who, Some("192.0.2.1"), Some("10.0.0.1"), secs(s));
    let rec = h.live(&mk("a1", 0)).record.unwrap();
    for s in 1..9 {
        h.live(&mk("a1", s));
    }
    assert_eq!(h.p.alert_record(rec).unwrap().severity, Severity::Medium);
    h.take();
    h.live(&mk("a1", 9)); // the 10th
    assert_eq!(h.p.alert_record(rec).unwrap().severity, Severity::High);
    assert!(h.notifications().iter().any(|n| n.reason == NotifyReason::Escalated && n.severity == Severity::High));
    h.live(&mk("a2", 10));
    assert_eq!(h.p.alert_record(rec).unwrap().severity, Severity::High);
    h.live(&mk("a3", 11)); // third agent
    assert_eq!(h.p.alert_record(rec).unwrap().severity, Severity::Critical);
    // Info never escalates.
    let mut h = Harness::new();
    for s in 0..200 {
        h.live(&alert(Category::UnencryptedHttp, "a1", Some("192.0.2.1"), Some("10.0.0.1"), secs(s)));
    }
    assert!(h.p.open_alerts().all(|r| r.severity == Severity::Info));
    assert!(h.notifications().is_empty());
}

#[test]
fn quiet_records_auto_resolve_at_the_quiet_period() {
    let mut h = Harness::new();
    let rec = h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(0))).record.unwrap();
    h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(60)));
    h.tick(at(60_000 + 15 * 60_000 - 1));
    assert!(h.p.alert_record(rec).is_some());
    h.tick(at(60_000 + 15 * 60_000));
    assert!(h.p.alert_record(rec).is_none());
    assert!(h.resolved().contains(&(Subject::Alert(rec), ResolveReason::Quiet)));
    // The next occurrence opens a new record.
    let again = h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(2000)));
    assert!(again.opened);
    assert_ne!(again.record, Some(rec));
}

#[test]
fn acknowledge_then_resolve_and_unknown_ids_are_errors() {
    let mut h = Harness::new();
    let rec = h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(0))).record.unwrap();
    h.p.acknowledge(Subject::Alert(rec), secs(1), &mut h.events).unwrap();
    assert_eq!(h.p.alert_record(rec).unwrap().state, State::Acknowledged);
    h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(2)));
    let r = h.p.alert_record(rec).unwrap();
    assert_eq!((r.state, r.count), (State::Acknowledged, 2));
    h.p.resolve(Subject::Alert(rec), secs(3), &mut h.events).unwrap();
    assert!(h.resolved().contains(&(Subject::Alert(rec), ResolveReason::Operator)));
    let err = h.p.resolve(Subject::Alert(rec), secs(4), &mut h.events).unwrap_err();
    assert_eq!(err, PipelineError::NotFound(Subject::Alert(rec)));
    assert!(h.p.acknowledge(Subject::Incident(rec), secs(4), &mut h.events).is_err());
}

#[test]
fn silences_mute_notifications_but_keep_records_until_they_expire() {
    let mut h = Harness::new();
    let spec = SilenceSpec {
        matcher: SilenceMatcher { source: Some("192.0.2.0/24".parse().unwrap()), ..Default::default() },
        expires_at: secs(100),
        comment: "pentest".into(),
    };
    let s = h.p.add_silence(spec, secs(0)).unwrap();
    let rec = h.live(&alert(Category::BruteForce, "a1", Some("192.0.2.9"), None, secs(1))).record.unwrap();
    assert_eq!(h.p.alert_record(rec).unwrap().silenced_by, Some(s.id));
    assert!(h.notifications().is_empty());
    // Outside the network: notified.
    h.live(&alert(Category::BruteForce, "a1", Some("198.51.100.1"), None, secs(2)));
    assert_eq!(h.notifications().len(), 1);
    h.tick(secs(100));
    assert!(h.events.iter().any(|e| matches!(e, PipelineEvent::SilenceExpired { id } if *id == s.id)));
    assert!(h.p.silences().is_empty());
    h.take();
    h.live(&alert(Category::BruteForce, "a1", Some("192.0.2.10"), None, secs(101)));
    assert_eq!(h.notifications().len(), 1);

    // Matchers combine with AND; empty ones and past expiries are refused.
    let m = SilenceMatcher { category: Some(Category::PortScan), agent: Some(agent("a1")), source: None };
    let mut h = Harness::new();
    h.p.add_silence(SilenceSpec { matcher: m, expires_at: secs(100), comment: String::new() }, secs(0)).unwrap();
    h.live(&alert(Category::PortScan, "a2", Some("192.0.2.1"), None, secs(1)));
    assert_eq!(h.notifications().len(), 1, "other agent");
    h.live(&alert(Category::PortScan, "a1", Some("192.0.2.2"), None, secs(1)));
    assert_eq!(h.notifications().len(), 1, "silenced");
    let empty = SilenceSpec { matcher: SilenceMatcher::default(), expires_at: secs(100), comment: String::new() };
    assert_eq!(h.p.add_silence(empty, secs(0)).unwrap_err(), PipelineError::SilenceMatchesEverything);
    let past = SilenceSpec {
        matcher: SilenceMatcher { category: Some(Category::PortScan), ..Default::default() },
        expires_at: secs(5),
        comment: String::new(),
    };
    assert!(matches!(h.p.add_silence(past, secs(5)), Err(PipelineError::SilenceExpiry { .. })));
}

/// What the server does for operator actions on stored alerts and stored silences: the
/// stored alert's id finds the record (first or latest occurrence), and a silence keeps
/// the stored silence's id so removing that one removes this one.
#[test]
fn stored_alert_ids_find_records_and_silences_keep_the_callers_id() {
    use uuid::Uuid;
    let mut h = Harness::new();
    let first = alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(0));
    let (mut middle, mut last) = (first.clone(), first.clone());
    middle.id = Uuid::now_v7();
    middle.timestamp = secs(1);
    last.id = Uuid::now_v7();
    last.timestamp = secs(2);
    let rec = h.live(&first).record.unwrap();
    h.live(&middle);
    h.live(&last);
    assert_eq!(h.p.record_of_alert(first.id), Some(rec));
    assert_eq!(h.p.record_of_alert(last.id), Some(rec));
    assert_eq!(h.p.record_of_alert(middle.id), None, "only the first and latest occurrence are indexed");
    assert_eq!(h.p.record_of_alert(Uuid::now_v7()), None);

    let id = Uuid::now_v7();
    let spec = |c| SilenceSpec {
        matcher: SilenceMatcher { category: Some(c), ..Default::default() },
        expires_at: secs(100),
        comment: String::new(),
    };
    assert_eq!(h.p.add_silence_with_id(id, spec(Category::PortScan), secs(3)).unwrap().id, id);
    // The same id again replaces it (a resent command), never a second silence.
    h.p.add_silence_with_id(id, spec(Category::BruteForce), secs(3)).unwrap();
    assert_eq!(h.p.silences().len(), 1);
    assert_eq!(h.p.silences()[0].matcher.category, Some(Category::BruteForce));
    assert_eq!(h.p.remove_silence(id).unwrap().id, id);
    assert!(h.p.silences().is_empty());
}

#[test]
fn old_alerts_are_backfill_stored_but_not_opened_or_notified() {
    let mut h = Harness::new();
    let old = alert(Category::BruteForce, "a1", Some("192.0.2.1"), None, secs(0));
    let r = h.send(&old, secs(15 * 60 + 1));
    assert!(r.backfilled && r.record.is_none());
    assert!(h.p.open_alerts().next().is_none());
    assert!(h.notifications().is_empty());
    assert!(matches!(h.events[0], PipelineEvent::AlertBackfilled { alert_id, .. } if alert_id == old.id));
    // Exactly at the age limit it is still live.
    let edge = alert(Category::BruteForce, "a1", Some("192.0.2.2"), None, secs(100));
    assert!(!h.send(&edge, secs(100 + 15 * 60)).backfilled);
}

#[test]
fn agent_resolution_resolves_its_record() {
    let mut h = Harness::new();
    let a = alert(Category::HostCpuHigh, "a1", None, None, secs(0));
    let rec = h.live(&a).record.unwrap();
    let r = AlertResolved { alert_id: a.id, category: Category::HostCpuHigh, at: secs(30) };
    assert!(h.p.ingest_resolved(&agent("a1"), &r, secs(30), &mut h.events));
    assert!(h.resolved().contains(&(Subject::Alert(rec), ResolveReason::Cleared)));
}

#[test]
fn maps_are_capped_with_counted_evictions() {
    let mut cfg = PipelineConfig::default();
    cfg.limits.open_alerts = 3;
    cfg.limits.dos_targets = 2;
    cfg.limits.group_keys = 2;
    let mut h = Harness::with(cfg);
    for i in 0..10 {
        let src = format!("192.0.2.{i}");
        let dst = format!("10.0.0.{i}");
        h.live(&alert(Category::SynFlood, "a1", Some(&src), Some(&dst), secs(i)));
    }
    let c = h.p.counters();
    assert_eq!(c.open_alerts, 3);
    assert_eq!(c.evicted_alerts, 7);
    assert_eq!(c.evicted_dos_targets, 8);
    assert!(c.evicted_group_keys >= 8);
    assert_eq!(h.resolved().iter().filter(|(_, r)| *r == ResolveReason::Evicted).count(), 7);
}

#[test]
fn updates_are_rate_limited_and_flushed_by_tick() {
    let mut h = Harness::new();
    let mk = |ms: i64| alert(Category::PortScan, "a1", Some("192.0.2.1"), None, at(ms));
    h.live(&mk(0));
    h.take();
    for ms in [100, 200, 300] {
        h.live(&mk(ms));
    }
    let updates = |h: &Harness| h.events.iter().filter(|e| matches!(e, PipelineEvent::AlertUpdated(_))).count();
    assert_eq!(updates(&h), 0);
    h.tick(at(400));
    assert_eq!(updates(&h), 1);
    match h.events.iter().find(|e| matches!(e, PipelineEvent::AlertUpdated(_))) {
        Some(PipelineEvent::AlertUpdated(r)) => assert_eq!(r.count, 4),
        _ => unreachable!(),
    }
    h.take();
    h.live(&mk(1500));
    assert_eq!(updates(&h), 1, "a second after the last update, the next one goes out at once");
}

// ---------------------------------------------------------------- churn

#[test]
fn agent_offline_after_three_missed_intervals_resolved_on_return() {
    let mut h = Harness::new();
    let info = AgentInfo { interval_ms: 10_000, ..AgentInfo::default() };
    h.p.heartbeat(&agent("a1"), Some(&info), secs(0), &mut h.events);
    h.tick(at(29_999));
    assert!(h.raised(Category::AgentOffline).is_empty());
    h.tick(secs(30));
    let off = h.raised(Category::AgentOffline);
    assert_eq!(off.len(), 1);
    assert_eq!(off[0].agent, Some(agent("a1")));
    assert!(h.events.iter().any(|e| matches!(e, PipelineEvent::AgentStatus { online: false, .. })));
    assert_eq!(h.notifications().len(), 1);
    // Still offline long after: held open, not auto-resolved, not raised twice.
    h.tick(secs(3600));
    assert_eq!(h.raised(Category::AgentOffline).len(), 1);
    assert_eq!(h.p.open_alerts().filter(|r| r.key.category == Category::AgentOffline).count(), 1);
    h.take();
    // It returns with a spool: alerts from while it was away are backfill.
    h.p.heartbeat(&agent("a1"), Some(&info), secs(3700), &mut h.events);
    assert!(h.resolved().iter().any(|(_, r)| *r == ResolveReason::AgentReturned));
    assert!(h.events.iter().any(|e| matches!(e, PipelineEvent::AgentStatus { online: true, .. })));
    h.take();
    let spooled = alert(Category::BruteForce, "a1", Some("192.0.2.1"), None, secs(3650));
    assert!(h.send(&spooled, secs(3700)).backfilled);
    assert!(h.notifications().is_empty());
    let live = alert(Category::BruteForce, "a1", Some("192.0.2.1"), None, secs(3700));
    assert!(h.send(&live, secs(3700)).opened);
}

#[test]
fn heartbeat_interval_defaults_and_any_item_counts_as_presence() {
    let mut h = Harness::new();
    h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(0)));
    h.live(&alert(Category::PortScan, "a1", Some("192.0.2.1"), None, secs(25)));
    h.tick(secs(54));
    assert!(h.raised(Category::AgentOffline).is_empty());
    h.tick(secs(55));
    assert_eq!(h.raised(Category::AgentOffline).len(), 1);
}

// ---------------------------------------------------------------- attacks on the monitor

fn integrity(peer: &str, ts: DateTime<Utc>) -> Alert {
    let mut a = Alert::new(Category::IntegrityFailure, ts, "message failed to open");
    a.src_ip = Some(ip(peer));
    a
}

#[test]
fn repeated_integrity_failures_from_one_peer_escalate_to_an_incident() {
    let mut h = Harness::new();
    h.live(&integrity("198.51.100.7", secs(0)));
    h.live(&integrity("198.51.100.7", secs(300)));
    assert!(h.incidents_opened(IncidentKind::MonitorAttack).is_empty());
    h.live(&integrity("198.51.100.7", secs(600))); // exactly at the window edge
    let opened = h.incidents_opened(IncidentKind::MonitorAttack);
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].peer.as_deref(), Some("198.51.100.7"));
    assert_eq!(opened[0].alert_ids.len(), 3);
    let id = opened[0].id;
    for s in 0..17 {
        let mut r = Alert::new(Category::ReplayAttempt, secs(601 + s), "replayed");
        r.src_ip = Some(ip("198.51.100.7"));
        h.live(&r);
    }
    assert_eq!(h.incidents_opened(IncidentKind::MonitorAttack).len(), 1);
    let inc = h.p.incident(id).unwrap();
    assert_eq!(inc.count, 20);
    assert_eq!(inc.severity, Severity::Critical);

    // Past the window edge, and spread over peers: nothing.
    let mut h = Harness::new();
    h.live(&integrity("198.51.100.7", secs(0)));
    h.live(&integrity("198.51.100.7", secs(300)));
    h.live(&integrity("198.51.100.7", at(600_001)));
    h.live(&integrity("198.51.100.8", secs(601)));
    h.live(&integrity("198.51.100.9", secs(602)));
    assert!(h.incidents_opened(IncidentKind::MonitorAttack).is_empty());
}

// ---------------------------------------------------------------- baselines through the pipeline

fn batch(who: &str, ts: DateTime<Utc>, cpu: f64) -> MetricBatch {
    MetricBatch { agent: agent(who), timestamp: ts, values: vec![(metrics::CPU.to_string(), cpu)] }
}

#[test]
fn traffic_spike_raised_held_and_resolved_when_it_clears() {
    let mut h = Harness::new();
    let mut r = SplitMix64::new(3);
    let mut t = 0;
    let mut feed = |h: &mut Harness, n: usize, level: f64| {
        for _ in 0..n {
            let b = batch("a1", secs(t), level + r.normal());
            h.p.ingest_metrics(&b, secs(t), &mut h.events);
            t += 10;
        }
    };
    feed(&mut h, 720, 30.0);
    assert!(h.raised(Category::TrafficSpike).is_empty());
    feed(&mut h, 30, 50.0);
    let spikes = h.raised(Category::TrafficSpike);
    assert_eq!(spikes.len(), 1);
    assert_eq!(spikes[0].evidence["metric"], "cpu");
    assert_eq!(spikes[0].severity, Severity::High, "20σ is past 2k");
    let rec = h.p.open_alerts().find(|r| r.key.category == Category::TrafficSpike).unwrap();
    assert!(rec.held);
    let rec = rec.id;
    feed(&mut h, 30, 30.0);
    assert!(h.resolved().contains(&(Subject::Alert(rec), ResolveReason::Cleared)));
    // A lasting shift alerts once and resolves as adapted.
    h.take();
    feed(&mut h, 360, 45.0);
    assert_eq!(h.raised(Category::TrafficSpike).len(), 1);
    assert!(h.resolved().iter().any(|(_, r)| *r == ResolveReason::Adapted));
}

#[test]
fn bad_metric_names_and_values_are_counted_not_stored() {
    let mut h = Harness::new();
    let b = MetricBatch {
        agent: agent("a1"),
        timestamp: secs(0),
        values: vec![("x".repeat(65), 1.0), (String::new(), 1.0), ("cpu".into(), f64::NAN), ("cpu".into(), 1.0)],
    };
    h.p.ingest_metrics(&b, secs(0), &mut h.events);
    let c = h.p.counters();
    assert_eq!((c.inputs.metric_rejected, c.inputs.metric_points), (3, 1));
    assert_eq!(h.p.state().baselines.len(), 1);
}

// ---------------------------------------------------------------- persistence and determinism

/// Alerts (built once: their ids are random) and metric batches of a busy minute.
fn scenario(offset: i64) -> (Vec<Alert>, Vec<MetricBatch>) {
    let mut alerts: Vec<Alert> = (0..5).map(|i| flood(["a1", "a2"][i % 2], secs(offset + i as i64))).collect();
    alerts.push(alert(Category::PortScan, "a3", Some("192.0.2.7"), Some("10.0.0.5"), secs(offset + 6)));
    alerts.push(alert(Category::BruteForce, "a3", Some("192.0.2.7"), Some("10.0.0.6"), secs(offset + 7)));
    let batches = (0..100).map(|s| batch("a3", secs(offset + 10 * s), 20.0 + (s % 7) as f64)).collect();
    (alerts, batches)
}

fn play(h: &mut Harness, (alerts, batches): &(Vec<Alert>, Vec<MetricBatch>)) {
    for a in alerts {
        h.live(a);
    }
    for b in batches {
        h.p.ingest_metrics(b, b.timestamp, &mut h.events);
    }
    let end = batches.last().map_or(t0(), |b| b.timestamp);
    h.tick(end);
}

#[test]
fn state_round_trips_and_the_restored_pipeline_continues_identically() {
    let mut a = Harness::new();
    play(&mut a, &scenario(0));
    let silence = SilenceSpec {
        matcher: SilenceMatcher { category: Some(Category::HostDiskHigh), ..Default::default() },
        expires_at: secs(1_000_000),
        comment: String::new(),
    };
    a.p.add_silence(silence, secs(1000)).unwrap();
    let json = serde_json::to_string(a.p.state()).unwrap();
    let state: PipelineState = serde_json::from_str(&json).unwrap();
    let mut b = Harness { p: Pipeline::restore(PipelineConfig::default(), state).unwrap(), events: Vec::new() };
    assert_eq!(b.p.silences().len(), 1);
    assert_eq!(b.p.open_alerts().count(), a.p.open_alerts().count());
    assert_eq!(b.p.open_incidents().count(), a.p.open_incidents().count());
    a.take();
    let next = scenario(1100);
    play(&mut a, &next);
    play(&mut b, &next);
    assert!(!a.events.is_empty());
    assert_eq!(a.events, b.events);
    // Same seed, same inputs: same events, ids included.
    let first = scenario(0);
    let mut c = Harness::new();
    let mut d = Harness::new();
    play(&mut c, &first);
    play(&mut d, &first);
    assert_eq!(c.events, d.events);
}

#[test]
fn events_serialize_with_tags() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.live(&flood(["a1", "a2"][i % 2], secs(i as i64)));
    }
    let v = serde_json::to_value(&h.events).unwrap();
    let kinds: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"incident_opened") && kinds.contains(&"notify") && kinds.contains(&"alert_raised"));
}

// ---------------------------------------------------------------- evaluation floor

#[test]
fn small_labelled_evaluation_stays_above_its_floor() {
    // A lighter forest keeps this fast in debug builds; the full evaluation
    // (examples/evaluate.rs, docs/evaluation.md) uses the defaults.
    let mut cfg = PipelineConfig::default();
    cfg.anomaly.trees = 25;
    let mut spec = EvalSpec::small();
    spec.agents = 3;
    // Agents are independent: one thread each keeps this test short.
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..spec.agents)
            .map(|i| {
                s.spawn({
                    let (spec, cfg) = (&spec, &cfg);
                    move || run_agent(spec, i, cfg)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("{}", score(&spec, &runs).markdown());
    let r = score(&spec, &runs);
    assert!(r.traffic_spike.f1 >= 0.85, "{}", r.markdown());
    assert!(r.overall_precision >= 0.85, "{}", r.markdown());
    assert!(r.metric_anomaly.target_recall >= 0.3, "{}", r.markdown());
}
