//! The labelled evaluation of `traffic_spike` and `metric_anomaly` (docs/evaluation.md).
//!
//! ```text
//! cargo run --release -p vigil-pipeline --example evaluate            # 50 agents × 7 days
//! cargo run --release -p vigil-pipeline --example evaluate -- --small # 5 agents × 1 day
//! cargo run --release -p vigil-pipeline --example evaluate -- --json report.json
//! cargo run --release -p vigil-pipeline --example evaluate -- --seed 1 --config cfg.json
//! ```
//! Agents are independent (one pipeline each), so they run on all cores; the result does
//! not depend on the number of threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use vigil_pipeline::PipelineConfig;
use vigil_pipeline::eval::{AgentRun, EvalSpec, run_agent, score};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut spec = if args.iter().any(|a| a == "--small") { EvalSpec::small() } else { EvalSpec::full() };
    if let Some(i) = args.iter().position(|a| a == "--agents") {
        spec.agents = args.get(i + 1).ok_or("--agents needs a number")?.parse()?;
    }
    if let Some(i) = args.iter().position(|a| a == "--seed") {
        spec.seed = args.get(i + 1).ok_or("--seed needs a number")?.parse()?;
    }
    let json = args.iter().position(|a| a == "--json").and_then(|i| args.get(i + 1)).cloned();
    let cfg: PipelineConfig = match args.iter().position(|a| a == "--config").and_then(|i| args.get(i + 1)) {
        Some(path) => serde_json::from_str(&std::fs::read_to_string(path)?)?,
        None => PipelineConfig::default(),
    };
    cfg.validate()?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!("evaluating {} agents × {} days at {} s on {threads} threads…", spec.agents, spec.days, spec.step_secs);
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let runs: Mutex<Vec<(usize, AgentRun)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= spec.agents {
                        break;
                    }
                    let run = run_agent(&spec, i, &cfg);
                    if let Ok(mut r) = runs.lock() {
                        r.push((i, run));
                    }
                }
            });
        }
    });
    let mut runs = runs.into_inner().map_err(|_| "a worker panicked")?;
    runs.sort_by_key(|(i, _)| *i);
    let runs: Vec<AgentRun> = runs.into_iter().map(|(_, r)| r).collect();
    let elapsed = started.elapsed();
    let report = score(&spec, &runs);
    println!("{}", report.markdown());
    println!(
        "{} metric points in {:.1} s ({:.0} points/s on {threads} threads)",
        report.points,
        elapsed.as_secs_f64(),
        report.points as f64 / elapsed.as_secs_f64()
    );
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {path}");
    }
    if std::env::var_os("VIGIL_EVAL_DUMP").is_some() {
        for r in &runs {
            for d in &r.detections {
                println!("DET {} {:?} {:?} {} | {}", d.agent, d.category, d.metric, d.ts_ms, d.summary);
            }
            for l in &r.labels {
                println!("LAB {} {:?} {:?} {} {} {:.1}", l.agent, l.kind, l.metrics, l.start_ms, l.end_ms, l.magnitude);
            }
        }
    }
    Ok(())
}
