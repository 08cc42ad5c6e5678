//! The boot epoch: a number persisted in the state dir that grows at every agent start.
//! Together with the per-message sequence number it makes every message's `(epoch, seq)`
//! unique, which is what the server's replay window relies on.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::AgentError;

const FILE: &str = "boot-epoch";

/// Reads the last epoch (0 when none), stores last + 1 durably, and returns it.
pub fn next_epoch(state_dir: &Path) -> Result<u64, AgentError> {
    let path = state_dir.join(FILE);
    let last = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map_err(|_| AgentError::State {
            path: path.clone(),
            message: "boot-epoch file does not hold a number; restore it or delete it only if the server's agent record is also reissued".into(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(AgentError::io(&path, e)),
    };
    let next = last
        .checked_add(1)
        .ok_or_else(|| AgentError::State { path: path.clone(), message: "boot epoch exhausted".into() })?;
    let tmp = state_dir.join(format!("{FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        writeln!(f, "{next}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(state_dir)?.sync_all()
    };
    write().map_err(|e| AgentError::io(&path, e))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_across_starts() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(next_epoch(d.path()).unwrap(), 1);
        assert_eq!(next_epoch(d.path()).unwrap(), 2);
        assert_eq!(next_epoch(d.path()).unwrap(), 3);
    }

    #[test]
    fn garbage_is_an_error_not_a_reset() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(FILE), "banana").unwrap();
        let e = next_epoch(d.path()).unwrap_err().to_string();
        assert!(e.contains("boot-epoch"), "{e}");
    }
}
