use vigil_pipeline::eval::{EvalSpec, EventKind, simulate_agent};
use vigil_pipeline::{Pipeline, PipelineConfig, AnomalyModel};
fn main() {
    let spec = EvalSpec::small();
    for a in 0..5 {
        let (labels, batches) = simulate_agent(&spec, a);
        let mut p = Pipeline::new(PipelineConfig::default()).unwrap();
        let mut out = Vec::new();
        let multi: Vec<_> = labels.iter().filter(|l| l.kind == EventKind::MultiMetric).cloned().collect();
        for b in &batches {
            p.ingest_metrics(b, b.timestamp, &mut out);
            out.clear();
            let t = b.timestamp.timestamp_millis();
            for l in &multi {
                if t >= l.start_ms - 120_000 && t <= l.end_ms && (t - l.start_ms) % 60_000 < 10_000 {
                    let d = p.state().anomaly.get(&b.agent).unwrap();
                    let zs: Vec<String> = p.config().anomaly.features.iter().map(|f| {
                        let k = vigil_pipeline::SeriesKey { agent: b.agent.clone(), metric: f.clone() };
                        p.state().baselines.get(&k).map(|_| "".to_string()).unwrap_or_default()
                    }).collect();
                    let _ = zs;
                    println!("agent {a} {:?} m={:.1} t-start={}s score={:?} thr={:.3} gen={} win={}", l.metrics, l.magnitude, (t - l.start_ms)/1000, d.last_score(), d.threshold(), d.generation(), d.window_len());
                }
            }
        }
    }
}
