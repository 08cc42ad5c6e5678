//! [`AgentDirectory`]: the server's cached view of `D/pki/agents/`.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use vigil_model::AgentId;

use crate::fsutil::FileStamp;
use crate::{AgentRecord, PkiError};

/// Most records kept in memory. Only records that exist on disk are cached, so this is
/// a second line of defence; when it is reached the cache is emptied and refilled.
const MAX_CACHED: usize = 65_536;

/// Looks up agent records by id for the ingest path, with caching.
///
/// Each lookup costs one `stat` of the agent's record file. The record is re-read only when
/// that file changed: every write replaces it with a new inode (atomic rename), so a
/// revoke is seen by the next lookup even where directory timestamps are coarse. Unknown
/// ids are not cached, so untrusted ids cannot grow the cache.
///
/// Cloning is cheap; clones share the cache.
#[derive(Clone)]
pub struct AgentDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    cache: Mutex<HashMap<AgentId, (FileStamp, Arc<AgentRecord>)>>,
}

impl fmt::Debug for AgentDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentDirectory").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl AgentDirectory {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { inner: Arc::new(Inner { dir, cache: Mutex::new(HashMap::new()) }) }
    }

    /// The record of agent `id`, or `None` if no such agent was issued. A revoked agent's
    /// record is returned with `revoked` set; refusing it is the caller's decision.
    pub fn lookup(&self, id: &AgentId) -> Result<Option<Arc<AgentRecord>>, PkiError> {
        let path = self.inner.dir.join(format!("{id}.toml"));
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.cache().remove(id);
                return Ok(None);
            }
            Err(e) => return Err(PkiError::io("read metadata of", &path, e)),
        };
        let stamp = FileStamp::of(&meta);
        if let Some((seen, rec)) = self.cache().get(id)
            && *seen == stamp
        {
            return Ok(Some(rec.clone()));
        }
        // Read outside the lock; stamp the record with the metadata taken before reading,
        // so a change during the read is caught by the next lookup.
        let rec = Arc::new(AgentRecord::load(&path, Some(id))?);
        let mut cache = self.cache();
        if cache.len() >= MAX_CACHED && !cache.contains_key(id) {
            cache.clear();
        }
        cache.insert(id.clone(), (stamp, rec.clone()));
        Ok(Some(rec))
    }

    /// Number of cached records (for metrics and tests).
    pub fn cached(&self) -> usize {
        self.cache().len()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<AgentId, (FileStamp, Arc<AgentRecord>)>> {
        self.inner.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InitOptions, Pki};

    #[test]
    fn sees_revoke_after_first_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        pki.init(&InitOptions::default()).unwrap();
        let id = AgentId::new("web-01").unwrap();
        let cred = pki.issue_agent(&id, None, false).unwrap();
        let agents = pki.agent_directory();

        let first = agents.lookup(&id).unwrap().unwrap();
        assert!(!first.revoked);
        assert_eq!(first.sealing_key.as_bytes(), cred.sealing_key.as_bytes());
        // Cached: the same record object comes back while the file is unchanged.
        assert!(Arc::ptr_eq(&first, &agents.lookup(&id).unwrap().unwrap()));

        pki.revoke(&id).unwrap();
        let after = agents.clone().lookup(&id).unwrap().unwrap();
        assert!(after.revoked);
        assert!(after.revoked_at.is_some());
    }

    #[test]
    fn unknown_ids_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        pki.init(&InitOptions::default()).unwrap();
        let agents = pki.agent_directory();
        for i in 0..100 {
            let id = AgentId::new(format!("ghost-{i}")).unwrap();
            assert!(agents.lookup(&id).unwrap().is_none());
        }
        assert_eq!(agents.cached(), 0);

        let id = AgentId::new("real").unwrap();
        pki.issue_agent(&id, None, false).unwrap();
        assert!(agents.lookup(&id).unwrap().is_some());
        assert_eq!(agents.cached(), 1);
        std::fs::remove_file(pki.agent_record_path(&id)).unwrap();
        assert!(agents.lookup(&id).unwrap().is_none());
        assert_eq!(agents.cached(), 0);
    }

    #[test]
    fn works_before_any_agent_dir_exists() {
        let dir = tempfile::tempdir().unwrap();
        let agents = Pki::at(dir.path()).agent_directory();
        assert!(agents.lookup(&AgentId::new("x").unwrap()).unwrap().is_none());
    }
}
