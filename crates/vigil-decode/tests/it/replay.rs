//! Replays the saved fuzz corpora (`fuzz/corpus/<target>/`) through the same entry points
//! the fuzz targets call, so CI on stable exercises them.

use std::path::PathBuf;

#[test]
fn fuzz_corpora_replay() {
    let root =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
            .join("../../fuzz/corpus");
    for (target, run) in vigil_decode::fuzzing::TARGETS {
        let dir = root.join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_file() {
                run(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n > 0, "empty fuzz corpus {}", dir.display());
    }
}
