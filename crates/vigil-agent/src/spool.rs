//! The bounded on-disk spool: every item the agent produces is written here first and
//! deleted only after the server has stored it, so neither a server outage nor an agent
//! restart (even a crash) loses data.
//!
//! One file per write, named `<id>-<class>-<count>.rec` (`class` is `a` for alerts and
//! resolves, `m` for metrics, heartbeats and stats), holding a postcard `Vec<Item>`. Files
//! are written to a temporary name, fsynced and renamed, so a file is either complete or
//! absent. When the spool is over its size cap, the oldest metrics files go first, then
//! the oldest alerts; drops are counted in a small `drops` file that survives restarts.
//!
//! A hand-written segment store rather than an embedded database: the access pattern is a
//! plain FIFO of small blobs, and files keep it inspectable and crash-safe with no
//! extra dependency.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use vigil_model::{AgentStats, Item};

use crate::AgentError;

/// Which queue a record belongs to; alerts are shipped first and dropped last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Alerts and resolves.
    Alerts,
    /// Samples, heartbeats, stats.
    Metrics,
}

impl Class {
    fn tag(self) -> char {
        match self {
            Class::Alerts => 'a',
            Class::Metrics => 'm',
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    size: u64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    files: BTreeMap<(Class, u64), Entry>,
    bytes: u64,
    dropped_samples: u64,
    dropped_alerts: u64,
}

/// Records taken for sending; pass back to [`Spool::ack`] once stored.
#[derive(Debug, Default)]
pub struct Taken {
    keys: Vec<(Class, u64)>,
    /// The items, alerts first, oldest first.
    pub items: Vec<Item>,
}

impl Taken {
    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The spool. Methods do small blocking file I/O: call them from blocking contexts.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    inner: Mutex<Inner>,
}

/// Largest spool file read back; anything larger is not ours.
const MAX_FILE: u64 = 16 * 1024 * 1024;

impl Spool {
    /// Opens (or creates) the spool in `dir`, indexing what a previous run left.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, AgentError> {
        std::fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
        let mut inner = Inner::default();
        for entry in std::fs::read_dir(dir).map_err(|e| AgentError::io(dir, e))? {
            let entry = entry.map_err(|e| AgentError::io(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                // An interrupted write: never acknowledged to anyone, safe to remove.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let Some((id, class, count)) = parse_name(name) else { continue };
            let size = entry.metadata().map_err(|e| AgentError::io(&entry.path(), e))?.len();
            inner.bytes += size;
            inner.next_id = inner.next_id.max(id + 1);
            inner.files.insert((class, id), Entry { size, count });
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("drops")) {
            let mut it = text.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
            inner.dropped_samples = it.next().unwrap_or(0);
            inner.dropped_alerts = it.next().unwrap_or(0);
        }
        if !inner.files.is_empty() {
            tracing::info!(batches = inner.files.len(), bytes = inner.bytes, "spool holds data from an earlier run");
        }
        Ok(Spool { dir: dir.to_owned(), max_bytes, inner: Mutex::new(inner) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `items` durably. Makes room by dropping the oldest metrics, then the oldest
    /// alerts, when the spool would exceed its cap.
    pub fn put(&self, class: Class, items: &[Item]) -> Result<(), AgentError> {
        if items.is_empty() {
            return Ok(());
        }
        let bytes = postcard::to_allocvec(items).map_err(|e| AgentError::State {
            path: self.dir.clone(),
            message: format!("cannot encode items for the spool: {e}"),
        })?;
        let size = bytes.len() as u64;
        let mut inner = self.lock();
        let mut dropped = false;
        while inner.bytes + size > self.max_bytes {
            let victim =
                inner.files.keys().find(|(c, _)| *c == Class::Metrics).or_else(|| inner.files.keys().next()).copied();
            let Some(key) = victim else { break };
            self.remove(&mut inner, key, true);
            dropped = true;
        }
        if inner.bytes + size > self.max_bytes {
            count_drop(&mut inner, class, items.len() as u64);
            self.save_drops(&inner);
            tracing::warn!(size, max = self.max_bytes, "a single batch is larger than the whole spool; dropped");
            return Ok(());
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let name = format!("{id:020}-{}-{}.rec", class.tag(), items.len());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| AgentError::io(&path, e))?;
        inner.bytes += size;
        inner.files.insert((class, id), Entry { size, count: items.len() as u64 });
        if dropped {
            self.save_drops(&inner);
        }
        Ok(())
    }

    fn remove(&self, inner: &mut Inner, key: (Class, u64), as_drop: bool) {
        if let Some(e) = inner.files.remove(&key) {
            inner.bytes = inner.bytes.saturating_sub(e.size);
            let path = self.dir.join(format!("{:020}-{}-{}.rec", key.1, key.0.tag(), e.count));
            if let Err(err) = std::fs::remove_file(&path)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %path.display(), error = %err, "cannot remove spool file");
            }
            if as_drop {
                count_drop(inner, key.0, e.count);
                tracing::warn!(class = ?key.0, items = e.count, "spool full: dropped the oldest batch");
            }
        }
    }

    fn save_drops(&self, inner: &Inner) {
        let text = format!("{} {}\n", inner.dropped_samples, inner.dropped_alerts);
        if let Err(e) = std::fs::write(self.dir.join("drops"), text) {
            tracing::warn!(error = %e, "cannot record spool drop counters");
        }
    }

    /// Reads up to `max_items` items (at least one file), alerts first, oldest first.
    /// Unreadable files are set aside as `.bad` and counted as dropped.
    pub fn take(&self, max_items: usize, max_bytes: u64) -> Taken {
        let mut inner = self.lock();
        let mut taken = Taken::default();
        let mut bytes = 0u64;
        let keys: Vec<_> = inner.files.iter().map(|(k, e)| (*k, e.clone())).collect();
        for (key, e) in keys {
            if !taken.keys.is_empty()
                && (taken.items.len() as u64 + e.count > max_items as u64 || bytes + e.size > max_bytes)
            {
                break;
            }
            let path = self.dir.join(format!("{:020}-{}-{}.rec", key.1, key.0.tag(), e.count));
            match read_file(&path) {
                Ok(items) => {
                    bytes += e.size;
                    taken.items.extend(items);
                    taken.keys.push(key);
                }
                Err(why) => {
                    tracing::error!(file = %path.display(), why, "unreadable spool file set aside as .bad");
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                    inner.files.remove(&key);
                    inner.bytes = inner.bytes.saturating_sub(e.size);
                    count_drop(&mut inner, key.0, e.count);
                    self.save_drops(&inner);
                }
            }
        }
        taken
    }

    /// Deletes what was taken: the server has it.
    pub fn ack(&self, taken: Taken) {
        let mut inner = self.lock();
        for key in taken.keys {
            self.remove(&mut inner, key, false);
        }
    }

    /// Spool use and drop counters.
    pub fn stats(&self) -> AgentStats {
        let inner = self.lock();
        AgentStats {
            spool_bytes: inner.bytes,
            spool_batches: inner.files.len() as u64,
            dropped_samples: inner.dropped_samples,
            dropped_alerts: inner.dropped_alerts,
        }
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().files.is_empty()
    }
}

fn count_drop(inner: &mut Inner, class: Class, n: u64) {
    match class {
        Class::Alerts => inner.dropped_alerts += n,
        Class::Metrics => inner.dropped_samples += n,
    }
}

fn parse_name(name: &str) -> Option<(u64, Class, u64)> {
    let stem = name.strip_suffix(".rec")?;
    let mut parts = stem.split('-');
    let id = parts.next()?.parse().ok()?;
    let class = match parts.next()? {
        "a" => Class::Alerts,
        "m" => Class::Metrics,
        _ => return None,
    };
    let count = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((id, class, count))
}

fn read_file(path: &Path) -> Result<Vec<Item>, &'static str> {
    let meta = std::fs::metadata(path).map_err(|_| "cannot stat")?;
    if meta.len() > MAX_FILE {
        return Err("file too large");
    }
    let bytes = std::fs::read(path).map_err(|_| "cannot read")?;
    postcard::from_bytes(&bytes).map_err(|_| "does not decode")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use vigil_model::{AgentInfo, Alert, Category};

    fn hb(n: u64) -> Item {
        Item::Heartbeat(AgentInfo { hostname: format!("h{n}"), interval_ms: n, ..Default::default() })
    }

    fn alert() -> Item {
        Item::Alert(Alert::new(Category::HostCpuHigh, Utc::now(), "cpu"))
    }

    #[test]
    fn fifo_alerts_first_and_survives_reopen() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), 1 << 20).unwrap();
        s.put(Class::Metrics, &[hb(1)]).unwrap();
        s.put(Class::Alerts, &[alert()]).unwrap();
        s.put(Class::Metrics, &[hb(2), hb(3)]).unwrap();
        drop(s);
        let s = Spool::open(d.path(), 1 << 20).unwrap();
        let t = s.take(100, 1 << 20);
        assert!(matches!(t.items[0], Item::Alert(_)));
        assert_eq!(t.items[1..], [hb(1), hb(2), hb(3)]);
        s.ack(t);
        assert!(s.is_empty());
        assert_eq!(s.stats().spool_bytes, 0);
        drop(s);
        assert!(Spool::open(d.path(), 1 << 20).unwrap().is_empty());
    }

    #[test]
    fn take_respects_item_limit_but_always_makes_progress() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), 1 << 20).unwrap();
        s.put(Class::Metrics, &[hb(1), hb(2), hb(3)]).unwrap();
        s.put(Class::Metrics, &[hb(4)]).unwrap();
        let t = s.take(2, 1 << 20);
        assert_eq!(t.items.len(), 3, "one whole file even if over the limit");
        s.ack(t);
        assert_eq!(s.take(2, 1 << 20).items, vec![hb(4)]);
    }

    #[test]
    fn full_spool_drops_oldest_metrics_before_alerts() {
        let d = tempfile::tempdir().unwrap();
        let one = postcard::to_allocvec(&[hb(1)]).unwrap().len() as u64;
        // Room for the alert and about three metrics files, whatever an alert's size.
        let cap = postcard::to_allocvec(&[alert()]).unwrap().len() as u64 + one * 3 + 8;
        let s = Spool::open(d.path(), cap).unwrap();
        s.put(Class::Alerts, &[alert()]).unwrap();
        for i in 1..=6 {
            s.put(Class::Metrics, &[hb(i)]).unwrap();
        }
        let st = s.stats();
        assert!(st.dropped_samples > 0);
        assert_eq!(st.dropped_alerts, 0);
        assert!(st.spool_bytes <= cap);
        let t = s.take(100, 1 << 20);
        assert!(matches!(t.items[0], Item::Alert(_)), "alert kept");
        assert_eq!(t.items.last(), Some(&hb(6)), "newest metrics kept");
        drop(s);
        let s = Spool::open(d.path(), cap).unwrap();
        assert_eq!(s.stats().dropped_samples, st.dropped_samples, "drop counters persist");
    }

    #[test]
    fn corrupt_file_is_set_aside_and_counted() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("00000000000000000007-a-2.rec"), b"\xff\xff\xff").unwrap();
        std::fs::write(d.path().join("junk.txt"), b"x").unwrap();
        let s = Spool::open(d.path(), 1 << 20).unwrap();
        s.put(Class::Metrics, &[hb(1)]).unwrap();
        let t = s.take(100, 1 << 20);
        assert_eq!(t.items, vec![hb(1)]);
        assert_eq!(s.stats().dropped_alerts, 2);
        assert!(d.path().join("00000000000000000007-a-2.bad").exists());
    }
}
