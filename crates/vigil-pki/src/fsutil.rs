//! Small file helpers: private directories, atomic 0600 writes that never clobber by
//! accident, bounded reads, change stamps and the PKI lock.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::PkiError;

/// Largest file this crate reads: certificates, keys, records and credentials are a few
/// kilobytes; a CRL with many thousands of entries stays well below this.
pub(crate) const MAX_FILE_BYTES: u64 = 4 << 20;

/// Creates `path` and any missing parents with mode 0700.
pub(crate) fn ensure_private_dir(path: &Path) -> Result<(), PkiError> {
    DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(|e| PkiError::io("create directory", path, e))
}

/// Whether something (file, symlink, anything) is at `path`.
pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` atomically: a new 0600 file in the same directory, fsync,
/// then rename (when `replace`) or hard link (otherwise, so an existing file is never
/// clobbered even by a concurrent writer), then fsync of the directory.
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    replace: bool,
    invalidates: &'static str,
) -> Result<(), PkiError> {
    let already = || PkiError::AlreadyExists { path: path.to_path_buf(), invalidates };
    if !replace && exists(path) {
        return Err(already());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".to_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = write_tmp_and_move(&tmp, path, contents, replace);
    if result.is_err() {
        // Best effort: the temporary file may not exist or may already be moved.
        let _ = fs::remove_file(&tmp);
    }
    match result {
        Err(Move::Exists) => return Err(already()),
        Err(Move::Io(action, p, e)) => return Err(PkiError::io(action, &p, e)),
        Ok(()) => {}
    }
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| PkiError::io("sync directory", &dir, e))
}

enum Move {
    Exists,
    Io(&'static str, PathBuf, io::Error),
}

fn write_tmp_and_move(tmp: &Path, path: &Path, contents: &[u8], replace: bool) -> Result<(), Move> {
    fn io(action: &'static str, p: &Path) -> impl FnOnce(io::Error) -> Move {
        let p = p.to_path_buf();
        move |e| Move::Io(action, p, e)
    }
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp).map_err(io("create", tmp))?;
    f.write_all(contents).map_err(io("write", tmp))?;
    f.sync_all().map_err(io("sync", tmp))?;
    drop(f);
    if replace {
        return fs::rename(tmp, path).map_err(io("rename into place", path));
    }
    match fs::hard_link(tmp, path) {
        Ok(()) => {
            fs::remove_file(tmp).map_err(io("remove", tmp))?;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Move::Exists),
        // File systems without hard links: check, then rename (racy only against a
        // writer outside vigil; vigil's own writers hold the PKI lock).
        Err(_) if exists(path) => Err(Move::Exists),
        Err(_) => fs::rename(tmp, path).map_err(io("rename into place", path)),
    }
}

/// Reads a whole file of at most `MAX_FILE_BYTES` into a zeroized buffer.
pub(crate) fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let f = File::open(path).map_err(|e| PkiError::io("open", path, e))?;
    let len = f.metadata().map_err(|e| PkiError::io("read metadata of", path, e))?.len();
    if len > MAX_FILE_BYTES {
        return Err(PkiError::TooLarge { path: path.to_path_buf(), len, max: MAX_FILE_BYTES });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0)));
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf).map_err(|e| PkiError::io("read", path, e))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(PkiError::TooLarge { path: path.to_path_buf(), len: buf.len() as u64, max: MAX_FILE_BYTES });
    }
    Ok(buf)
}

/// Reads a UTF-8 text file (bounded, zeroized on drop).
pub(crate) fn read_text(path: &Path) -> Result<Zeroizing<String>, PkiError> {
    let mut bytes = read_bounded(path)?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            let mut v = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut v);
            Err(PkiError::Malformed { path: path.to_path_buf(), message: "not UTF-8 text".to_owned() })
        }
    }
}

/// Refuses a secret file that group or others can access.
pub(crate) fn check_private(path: &Path) -> Result<(), PkiError> {
    let meta = fs::metadata(path).map_err(|e| PkiError::io("read metadata of", path, e))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PkiError::InsecurePermissions { path: path.to_path_buf(), mode });
    }
    Ok(())
}

/// Identity of one version of a file. Atomic writes create a new inode while the old one
/// is still linked, so a replaced file always gets a different (dev, ino) even when the
/// file system's timestamps are coarse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileStamp {
    pub(crate) fn of(meta: &fs::Metadata) -> Self {
        Self { dev: meta.dev(), ino: meta.ino(), len: meta.len(), mtime: meta.mtime(), mtime_nsec: meta.mtime_nsec() }
    }
}

/// An exclusive lock on `D/pki/.lock`, held while the PKI is changed so two `vigil certs`
/// runs cannot interleave (e.g. two revokes each rewriting the CRL). Released on drop.
pub(crate) struct PkiLock {
    _file: File,
}

impl PkiLock {
    pub(crate) fn acquire(pki_dir: &Path) -> Result<Self, PkiError> {
        let path = pki_dir.join(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| PkiError::io("open lock file", &path, e))?;
        file.lock().map_err(|e| PkiError::io("lock", &path, e))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_is_private_and_does_not_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_atomic(&p, b"one", false, "x").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let err = write_atomic(&p, b"two", false, "everything").unwrap_err();
        assert!(matches!(err, PkiError::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains("pass --force"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", true, "x").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replaced_file_gets_new_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"same", false, "x").unwrap();
        let a = FileStamp::of(&fs::metadata(&p).unwrap());
        write_atomic(&p, b"same", true, "x").unwrap();
        let b = FileStamp::of(&fs::metadata(&p).unwrap());
        assert_ne!(a, b);
    }

    #[test]
    fn check_private_refuses_group_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        write_atomic(&p, b"s", false, "x").unwrap();
        check_private(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let err = check_private(&p).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
