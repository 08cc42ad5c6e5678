//! Same input, same bytes: twice in a row, and for any thread count.

use vigil_analyze::{AnalyzeOptions, NoProgress, analyze};

use crate::corpus::corpus;

fn output(files: Vec<std::path::PathBuf>, threads: usize) -> String {
    let opts = AnalyzeOptions { files, threads, ..AnalyzeOptions::default() };
    let mut out = Vec::new();
    analyze(&opts, &mut out, &mut NoProgress).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn corpus_output_is_identical_across_runs_and_thread_counts() {
    let Some(dir) = corpus() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    // Every file in one stream (timestamps jump between files: the clock resyncs).
    let one = output(files.clone(), 1);
    assert!(one.lines().count() > 50, "{}", one.lines().count());
    assert_eq!(one, output(files.clone(), 1), "second run differs");
    assert_eq!(one, output(files.clone(), 4), "4 threads differ from 1");
    assert_eq!(one, output(files, 2), "2 threads differ from 1");
}
