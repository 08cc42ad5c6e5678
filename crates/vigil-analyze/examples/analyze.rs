//! Runs `vigil_analyze::analyze` like `vigil analyze` will (used for benchmarks until the
//! CLI is wired): `cargo run --release -p vigil-analyze --example analyze -- [--threads N]
//! [--format json|table] [--config F] [--blocklist F] [--fail-on SEV] FILE...`.
//! Alerts go to stdout, the summary to stderr; exit code as `vigil analyze`.

use std::path::PathBuf;

use vigil_analyze::{AnalyzeOptions, analyze, exit_code, stderr_progress};

fn main() {
    let mut opts = AnalyzeOptions { threads: 1, ..AnalyzeOptions::default() };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => opts.threads = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--format" => opts.format = args.next().and_then(|v| v.parse().ok()).unwrap_or_default(),
            "--config" => opts.config = args.next().map(PathBuf::from),
            "--blocklist" => opts.blocklists.extend(args.next().map(PathBuf::from)),
            "--fail-on" => opts.fail_on = args.next().and_then(|v| v.parse().ok()),
            _ => opts.files.push(PathBuf::from(a)),
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut progress = stderr_progress();
    let result = analyze(&opts, &mut out, progress.as_mut());
    match &result {
        Ok(s) => eprintln!("{s}"),
        Err(e) => eprintln!("error: {e}"),
    }
    std::process::exit(exit_code(&result));
}
