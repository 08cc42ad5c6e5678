//! [`Pki`]: the PKI directory of a data dir and the operations behind `vigil certs`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateRevocationListDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use vigil_model::AgentId;
use vigil_wire::SealingKey;

use crate::certs::{self, RevokedSerial};
use crate::fsutil::{self, PkiLock};
use crate::{AgentCredential, AgentDirectory, AgentRecord, DEFAULT_SERVER_NAMES, PkiError, ServerTls};

pub(crate) const CA_CERT: &str = "ca.crt";
pub(crate) const CA_KEY: &str = "ca.key";
pub(crate) const SERVER_CERT: &str = "server.crt";
pub(crate) const SERVER_KEY: &str = "server.key";
pub(crate) const CRL: &str = "crl.pem";
pub(crate) const AGENTS: &str = "agents";

const INVALIDATES_CA: &str = "the CA: every server certificate and agent credential issued so far stops working";
const INVALIDATES_SERVER: &str = "the server certificate agents currently trust by name";
const INVALIDATES_AGENT: &str =
    "the agent's current credential: its sealing key changes and its certificate is revoked";

/// Options for [`Pki::init`].
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Names (DNS names or IP addresses) to put in the server certificate. Empty means
    /// [`DEFAULT_SERVER_NAMES`](crate::DEFAULT_SERVER_NAMES).
    pub server_names: Vec<String>,
    /// Replace an existing CA, server certificate and CRL.
    pub force: bool,
}

/// What [`Pki::init`] did.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// SHA-256 fingerprint of the CA certificate (DER), lowercase hex.
    pub ca_fingerprint: String,
    /// Names in the server certificate.
    pub server_names: Vec<String>,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "CA fingerprint (SHA-256): {}", self.ca_fingerprint)?;
        writeln!(f, "server certificate names: {}", self.server_names.join(", "))?;
        for p in &self.files {
            writeln!(f, "wrote {}", p.display())?;
        }
        Ok(())
    }
}

/// The PKI of one data dir (`D/pki`). Cheap to create and clone; every operation reads
/// the files it needs, so several processes can share the directory.
#[derive(Debug, Clone)]
pub struct Pki {
    data_dir: PathBuf,
}

pub(crate) fn now_utc() -> (DateTime<Utc>, OffsetDateTime) {
    let now = Utc::now();
    let t = OffsetDateTime::from_unix_timestamp(now.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // Whole seconds in both forms, so records and certificates agree exactly.
    (DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now), t)
}

fn to_offset(t: &DateTime<Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Pki {
    /// The PKI under `data_dir` (in `data_dir/pki`). Does no I/O.
    pub fn at(data_dir: impl Into<PathBuf>) -> Pki {
        Pki { data_dir: data_dir.into() }
    }

    /// `D/pki`.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    /// `D/pki/agents`.
    pub fn agents_dir(&self) -> PathBuf {
        self.pki_dir().join(AGENTS)
    }

    /// Path of one PKI file (`ca.crt`, `crl.pem`, …).
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.pki_dir().join(name)
    }

    /// `D/pki/agents/<id>.toml`. Agent ids hold no `/` and never start with `.`, so this
    /// stays inside the directory.
    pub fn agent_record_path(&self, id: &AgentId) -> PathBuf {
        self.agents_dir().join(format!("{id}.toml"))
    }

    /// Whether the CA and the server certificate and key exist.
    pub fn is_initialized(&self) -> bool {
        [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY].iter().all(|f| self.file(f).is_file())
    }

    pub(crate) fn require(&self, files: &[&'static str]) -> Result<(), PkiError> {
        for f in files {
            if !self.file(f).is_file() {
                return Err(PkiError::NotInitialized { dir: self.pki_dir(), missing: f });
            }
        }
        Ok(())
    }

    /// Creates the CA, the server certificate and key and an empty CRL. Without
    /// `opts.force`, fails before writing anything if any of these files exists. Agent
    /// records are left alone (after a forced re-init their certificates no longer verify).
    pub fn init(&self, opts: &InitOptions) -> Result<InitReport, PkiError> {
        let names: Vec<String> = if opts.server_names.is_empty() {
            DEFAULT_SERVER_NAMES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            opts.server_names.clone()
        };
        certs::validate_server_names(&names)?;
        let dir = self.pki_dir();
        fsutil::ensure_private_dir(&dir)?;
        fsutil::ensure_private_dir(&self.agents_dir())?;
        let _lock = PkiLock::acquire(&dir)?;

        let plan: [(&str, &'static str); 5] = [
            (CA_KEY, INVALIDATES_CA),
            (CA_CERT, INVALIDATES_CA),
            (SERVER_KEY, INVALIDATES_SERVER),
            (SERVER_CERT, INVALIDATES_SERVER),
            (CRL, "the revocation list: revoked agents are accepted again"),
        ];
        if !opts.force {
            for (name, invalidates) in plan {
                let path = self.file(name);
                if fsutil::exists(&path) {
                    return Err(PkiError::AlreadyExists { path, invalidates });
                }
            }
        }

        let (_, now) = now_utc();
        let ca = certs::make_ca(now)?;
        let issuer = certs::load_issuer(&ca.cert_pem, &self.file(CA_CERT), &ca.key_pem, &self.file(CA_KEY))?;
        let server = certs::make_server(&issuer, &names, now)?;
        let crl = certs::make_crl(&issuer, 1, &[], now)?;

        let contents: [&[u8]; 5] = [
            ca.key_pem.as_bytes(),
            ca.cert_pem.as_bytes(),
            server.key_pem.as_bytes(),
            server.cert_pem.as_bytes(),
            crl.as_bytes(),
        ];
        let mut files = Vec::with_capacity(plan.len());
        for ((name, invalidates), bytes) in plan.iter().zip(contents) {
            let path = self.file(name);
            fsutil::write_atomic(&path, bytes, opts.force, invalidates)?;
            files.push(path);
        }
        tracing::info!(dir = %dir.display(), ca_sha256 = %ca.sha256_hex, "PKI initialised");
        Ok(InitReport { files, ca_fingerprint: ca.sha256_hex, server_names: names })
    }

    fn load_ca(&self) -> Result<rcgen::Issuer<'static, rcgen::KeyPair>, PkiError> {
        self.require(&[CA_CERT, CA_KEY])?;
        let cert_path = self.file(CA_CERT);
        let key_path = self.file(CA_KEY);
        let cert = fsutil::read_text(&cert_path)?;
        let key = fsutil::read_text(&key_path)?;
        certs::load_issuer(&cert, &cert_path, &key, &key_path)
    }

    /// The CA certificate (PEM).
    pub fn ca_cert_pem(&self) -> Result<String, PkiError> {
        self.require(&[CA_CERT])?;
        Ok(fsutil::read_text(&self.file(CA_CERT))?.to_string())
    }

    /// Issues a credential for agent `id`: a new key, a certificate signed by the CA and a
    /// new sealing key. Writes the server's record (`D/pki/agents/<id>.toml`) and returns
    /// the credential; the caller writes it where the agent will read it.
    ///
    /// An existing record is kept unless `force`; with `force`, the previous certificate is
    /// put on the CRL.
    pub fn issue_agent(
        &self,
        id: &AgentId,
        server_url: Option<&str>,
        force: bool,
    ) -> Result<AgentCredential, PkiError> {
        let issuer = self.load_ca()?;
        let ca_cert_pem = self.ca_cert_pem()?;
        fsutil::ensure_private_dir(&self.agents_dir())?;
        let _lock = PkiLock::acquire(&self.pki_dir())?;
        let path = self.agent_record_path(id);
        let previous = if fsutil::exists(&path) {
            if !force {
                return Err(PkiError::AlreadyExists { path, invalidates: INVALIDATES_AGENT });
            }
            // A damaged record must not stop a forced re-issue.
            AgentRecord::load(&path, Some(id)).ok()
        } else {
            None
        };

        let (issued_at, now) = now_utc();
        let cert = certs::make_agent(&issuer, id, now)?;
        let sealing_key = SealingKey::generate().map_err(|_| PkiError::Random { what: "making a sealing key" })?;
        let record = AgentRecord {
            agent_id: id.clone(),
            sealing_key: sealing_key.clone(),
            cert_serial: cert.serial_hex.clone(),
            cert_sha256: cert.sha256_hex.clone(),
            issued_at,
            revoked: false,
            revoked_at: None,
        };
        fsutil::write_atomic(&path, record.to_toml()?.as_bytes(), force, INVALIDATES_AGENT)?;

        if let Some(old) = previous.filter(|p| !p.revoked)
            && let Some(serial) = old.serial_bytes()
        {
            self.write_crl(&issuer, &[RevokedSerial { serial: certs::normalize_serial(&serial), at: now }], now)?;
        }
        tracing::info!(agent = %id, serial = %cert.serial_hex, "agent credential issued");
        Ok(AgentCredential::new(
            id.clone(),
            server_url.map(str::to_owned),
            sealing_key,
            ca_cert_pem,
            cert.cert_pem,
            cert.key_pem,
        ))
    }

    /// Marks agent `id` revoked and regenerates the CRL. Revoking a revoked agent keeps its
    /// first revocation time and rewrites the CRL (which repairs a CRL write that failed).
    pub fn revoke(&self, id: &AgentId) -> Result<(), PkiError> {
        let issuer = self.load_ca()?;
        let _lock = PkiLock::acquire(&self.pki_dir())?;
        let path = self.agent_record_path(id);
        if !fsutil::exists(&path) {
            return Err(PkiError::UnknownAgent { id: id.clone(), path });
        }
        let mut record = AgentRecord::load(&path, Some(id))?;
        let (revoked_at, now) = now_utc();
        if !record.revoked {
            record.revoked = true;
            record.revoked_at = Some(revoked_at);
            fsutil::write_atomic(&path, record.to_toml()?.as_bytes(), true, INVALIDATES_AGENT)?;
        }
        self.write_crl(&issuer, &[], now)?;
        tracing::info!(agent = %id, serial = %record.cert_serial, "agent revoked");
        Ok(())
    }

    /// Rewrites the CRL: the entries of the current CRL, every revoked record and `extra`,
    /// with the CRL number one higher. Caller holds the lock.
    fn write_crl(
        &self,
        issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
        extra: &[RevokedSerial],
        now: OffsetDateTime,
    ) -> Result<(), PkiError> {
        let crl_path = self.file(CRL);
        let (number, mut entries) = match fsutil::read_bounded(&crl_path) {
            Ok(bytes) => {
                let der = CertificateRevocationListDer::from_pem_slice(&bytes)
                    .map_err(|_| PkiError::Malformed { path: crl_path.clone(), message: "not a PEM CRL".to_owned() })?;
                certs::read_crl(&der, &crl_path)?
            }
            Err(PkiError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => (0, Vec::new()),
            Err(e) => return Err(e),
        };
        // A damaged record must not block revoking the others: skip it loudly.
        for rec in self.records(false)?.into_iter().filter(|r| r.revoked) {
            if let Some(serial) = rec.serial_bytes() {
                let at = rec.revoked_at.as_ref().map_or(now, to_offset);
                entries.push(RevokedSerial { serial: certs::normalize_serial(&serial), at });
            }
        }
        entries.extend_from_slice(extra);
        entries.sort_by(|a, b| a.serial.cmp(&b.serial).then(a.at.cmp(&b.at)));
        entries.dedup_by(|a, b| a.serial == b.serial);
        let pem = certs::make_crl(issuer, number.saturating_add(1), &entries, now)?;
        fsutil::write_atomic(&crl_path, pem.as_bytes(), true, "")
    }

    /// The record of agent `id`, or `None` if it was never issued.
    pub fn agent_record(&self, id: &AgentId) -> Result<Option<AgentRecord>, PkiError> {
        let path = self.agent_record_path(id);
        match fs::symlink_metadata(&path) {
            Ok(_) => AgentRecord::load(&path, Some(id)).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(PkiError::io("read metadata of", &path, e)),
        }
    }

    /// Every agent record, sorted by id. Files that are not `<agent-id>.toml` are ignored.
    pub fn agent_records(&self) -> Result<Vec<AgentRecord>, PkiError> {
        self.records(true)
    }

    /// The records in the agents dir; unless `strict`, unreadable ones are logged and skipped.
    fn records(&self, strict: bool) -> Result<Vec<AgentRecord>, PkiError> {
        let dir = self.agents_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PkiError::io("list", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| PkiError::io("list", &dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".toml")).and_then(|n| AgentId::new(n).ok())
            else {
                continue;
            };
            match AgentRecord::load(&entry.path(), Some(&id)) {
                Ok(rec) => out.push(rec),
                Err(e) if !strict => tracing::warn!("skipping agent record: {e}"),
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        Ok(out)
    }

    /// The server's TLS configuration source (reloads the CRL when it changes).
    pub fn server_tls(&self) -> Result<ServerTls, PkiError> {
        ServerTls::load(self)
    }

    /// A cached lookup of agent records for the server's ingest path.
    pub fn agent_directory(&self) -> AgentDirectory {
        AgentDirectory::new(self.agents_dir())
    }

    /// The data dir this PKI lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn snapshot(pki: &Pki) -> Vec<Vec<u8>> {
        [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY, CRL].iter().map(|f| fs::read(pki.file(f)).unwrap()).collect()
    }

    #[test]
    fn init_writes_private_keys_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        assert!(!pki.is_initialized());
        let report = pki.init(&InitOptions::default()).unwrap();
        assert!(pki.is_initialized());
        assert_eq!(report.files.len(), 5);
        assert_eq!(report.ca_fingerprint.len(), 64);
        assert_eq!(report.server_names, vec!["localhost", "127.0.0.1"]);
        assert_eq!(mode(&pki.file(CA_KEY)), 0o600);
        assert_eq!(mode(&pki.file(SERVER_KEY)), 0o600);
        assert_eq!(mode(&pki.pki_dir()), 0o700);
        assert_eq!(mode(&pki.agents_dir()), 0o700);
        let ca_der = certs::cert_from_pem(&pki.ca_cert_pem().unwrap()).unwrap();
        assert_eq!(certs::fingerprint(&ca_der), report.ca_fingerprint);

        let before = snapshot(&pki);
        let err = pki.init(&InitOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PkiError::AlreadyExists { .. }), "{msg}");
        assert!(msg.contains("pass --force to replace it (this invalidates"), "{msg}");
        assert_eq!(snapshot(&pki), before);

        let forced = pki.init(&InitOptions { server_names: vec!["vigil.lan".into()], force: true }).unwrap();
        let after = snapshot(&pki);
        for (a, b) in before.iter().zip(&after) {
            assert_ne!(a, b);
        }
        assert_ne!(forced.ca_fingerprint, report.ca_fingerprint);
        assert_eq!(mode(&pki.file(CA_KEY)), 0o600);
        // No temporary files left.
        let names: Vec<_> = fs::read_dir(pki.pki_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn init_refuses_bad_names_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        let err = pki.init(&InitOptions { server_names: vec!["not a name".into()], force: false }).unwrap_err();
        assert!(matches!(err, PkiError::InvalidServerName { .. }), "{err}");
        assert!(!pki.is_initialized());
    }

    #[test]
    fn issue_requires_init() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        let err = pki.issue_agent(&AgentId::new("a").unwrap(), None, false).unwrap_err();
        assert!(matches!(err, PkiError::NotInitialized { .. }), "{err}");
        assert!(err.to_string().contains("vigil certs init"));
    }

    #[test]
    fn issue_writes_record_and_refuses_reissue_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        pki.init(&InitOptions::default()).unwrap();
        let id = AgentId::new("web-01").unwrap();
        let cred = pki.issue_agent(&id, None, false).unwrap();
        let path = pki.agent_record_path(&id);
        assert_eq!(mode(&path), 0o600);
        let rec = pki.agent_record(&id).unwrap().unwrap();
        assert_eq!(rec.sealing_key.as_bytes(), cred.sealing_key.as_bytes());
        assert!(!rec.revoked);
        let der = certs::cert_from_pem(&cred.cert_pem).unwrap();
        assert_eq!(rec.cert_sha256, certs::fingerprint(&der));
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(hex::encode(parsed.raw_serial()), rec.cert_serial);

        let before = fs::read(&path).unwrap();
        let err = pki.issue_agent(&id, None, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);

        // Forced re-issue: new key, and the old certificate lands on the CRL.
        let again = pki.issue_agent(&id, None, true).unwrap();
        assert_ne!(again.sealing_key.as_bytes(), cred.sealing_key.as_bytes());
        let crl = fs::read(pki.file(CRL)).unwrap();
        let der = CertificateRevocationListDer::from_pem_slice(&crl).unwrap();
        let (n, entries) = certs::read_crl(&der, Path::new("crl")).unwrap();
        assert_eq!(n, 2);
        assert_eq!(entries.len(), 1);
        assert_eq!(hex::encode(&entries[0].serial), rec.cert_serial);

        assert!(pki.agent_record(&AgentId::new("nobody").unwrap()).unwrap().is_none());
        assert_eq!(pki.agent_records().unwrap().len(), 1);
    }

    #[test]
    fn revoke_marks_record_and_grows_crl() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        pki.init(&InitOptions::default()).unwrap();
        let a = AgentId::new("a1").unwrap();
        let b = AgentId::new("b2").unwrap();
        pki.issue_agent(&a, None, false).unwrap();
        pki.issue_agent(&b, None, false).unwrap();

        let err = pki.revoke(&AgentId::new("ghost").unwrap()).unwrap_err();
        assert!(matches!(err, PkiError::UnknownAgent { .. }), "{err}");

        // A damaged record elsewhere does not block revocation.
        let junk = pki.agents_dir().join("junk.toml");
        fs::write(&junk, "not = [valid").unwrap();
        pki.revoke(&a).unwrap();
        assert!(pki.agent_records().is_err());
        fs::remove_file(&junk).unwrap();
        let rec = pki.agent_record(&a).unwrap().unwrap();
        assert!(rec.revoked);
        let first_at = rec.revoked_at.unwrap();
        pki.revoke(&b).unwrap();
        pki.revoke(&a).unwrap();
        assert_eq!(pki.agent_record(&a).unwrap().unwrap().revoked_at, Some(first_at));

        let crl = fs::read(pki.file(CRL)).unwrap();
        let der = CertificateRevocationListDer::from_pem_slice(&crl).unwrap();
        let (n, entries) = certs::read_crl(&der, Path::new("crl")).unwrap();
        assert_eq!(n, 4, "init, then three revokes");
        let mut serials: Vec<_> = entries.iter().map(|e| hex::encode(&e.serial)).collect();
        serials.sort();
        let mut want: Vec<_> = pki.agent_records().unwrap().into_iter().map(|r| r.cert_serial).collect();
        want.sort();
        assert_eq!(serials, want);
    }
}
