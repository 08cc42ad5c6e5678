//! The agent's credential file: everything an agent needs in one 0600 TOML file.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Deserializer, Serialize};
use vigil_model::AgentId;
use vigil_wire::SealingKey;
use zeroize::Zeroizing;

use crate::certs::agent_id_from_cert;
use crate::record::de_sealing_key;
use crate::{AGENT_ALPN, PkiError, fsutil, tls};

/// What an agent needs to talk to the server: its id, the server's URL, its sealing key,
/// the CA certificate, its client certificate and private key.
///
/// `Debug` shows neither the sealing key nor the private key.
#[derive(Clone)]
pub struct AgentCredential {
    /// The agent's id (its certificate's common name).
    pub agent_id: AgentId,
    /// The server URL, if it was given when the credential was issued.
    pub server_url: Option<String>,
    /// The agent's AES-256-GCM sealing key.
    pub sealing_key: SealingKey,
    /// The CA certificate (PEM), the only root the agent trusts.
    pub ca_cert_pem: String,
    /// The agent's client certificate (PEM).
    pub cert_pem: String,
    key_pem: Zeroizing<String>,
}

impl fmt::Debug for AgentCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCredential")
            .field("agent_id", &self.agent_id)
            .field("server_url", &self.server_url)
            .field("sealing_key", &self.sealing_key)
            .field("ca_cert_pem", &format_args!("<{} bytes>", self.ca_cert_pem.len()))
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

fn de_zeroizing<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFile {
    agent_id: AgentId,
    #[serde(default)]
    server_url: Option<String>,
    #[serde(deserialize_with = "de_sealing_key")]
    sealing_key: SealingKey,
    ca_cert: String,
    cert: String,
    #[serde(deserialize_with = "de_zeroizing")]
    key: Zeroizing<String>,
}

#[derive(Serialize)]
struct CredentialOut<'a> {
    agent_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_url: Option<&'a str>,
    sealing_key: &'a str,
    ca_cert: &'a str,
    cert: &'a str,
    key: &'a str,
}

/// The single certificate in `pem`, or an error naming `field`.
fn one_cert(path: &Path, field: &str, pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let der = item.map_err(|_| PkiError::bad_field(path, field, "not a PEM certificate"))?;
        certs.push(der);
    }
    match certs.len() {
        1 => Ok(certs.remove(0)),
        0 => Err(PkiError::bad_field(path, field, "holds no PEM certificate")),
        n => Err(PkiError::bad_field(path, field, format!("holds {n} certificates; expected exactly one"))),
    }
}

fn private_key(path: &Path, field: &str, pem: &str) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| PkiError::bad_field(path, field, "not a PEM private key"))
}

/// The raw subject public key of a certificate.
fn cert_public_key(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.public_key().subject_public_key.data.to_vec())
}

impl AgentCredential {
    pub(crate) fn new(
        agent_id: AgentId,
        server_url: Option<String>,
        sealing_key: SealingKey,
        ca_cert_pem: String,
        cert_pem: String,
        key_pem: Zeroizing<String>,
    ) -> Self {
        Self { agent_id, server_url, sealing_key, ca_cert_pem, cert_pem, key_pem }
    }

    /// The agent's private key (PEM, PKCS#8). Handle with care: never log it.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The credential as TOML with its header comment (zeroized on drop).
    pub fn to_toml(&self) -> Result<Zeroizing<String>, PkiError> {
        let key_hex = Zeroizing::new(self.sealing_key.to_hex());
        let out = CredentialOut {
            agent_id: self.agent_id.as_str(),
            server_url: self.server_url.as_deref(),
            sealing_key: &key_hex,
            ca_cert: &self.ca_cert_pem,
            cert: &self.cert_pem,
            key: &self.key_pem,
        };
        let body = Zeroizing::new(toml::to_string(&out).map_err(|e| PkiError::Malformed {
            path: self.agent_id.as_str().into(),
            message: format!("could not encode the credential: {e}"),
        })?);
        let mut text = Zeroizing::new(String::with_capacity(body.len() + 256));
        text.push_str(&format!(
            "# vigil agent credential for agent {}.\n\
             # Keep secret: it holds the agent's private key and sealing key. Mode 0600.\n\
             # Issued by `vigil certs agent`; read by `vigil agent`.\n",
            self.agent_id
        ));
        text.push_str(&body);
        Ok(text)
    }

    /// Writes the credential to `path` (0600, atomic). An existing file is kept unless
    /// `force` is true.
    pub fn write(&self, path: &Path, force: bool) -> Result<(), PkiError> {
        let text = self.to_toml()?;
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            fsutil::ensure_private_dir(dir)?;
        }
        fsutil::write_atomic(
            path,
            text.as_bytes(),
            force,
            "the credential stored there; an agent using it stops working",
        )
    }

    /// Reads and checks a credential file. Refuses a file that group or others can access;
    /// errors name the path and the bad field.
    pub fn load(path: &Path) -> Result<AgentCredential, PkiError> {
        fsutil::check_private(path)?;
        let text = fsutil::read_text(path)?;
        Self::parse(path, &text)
    }

    /// Parses credential text (already read from `path`) and checks that the parts agree.
    fn parse(path: &Path, text: &str) -> Result<AgentCredential, PkiError> {
        let f: CredentialFile = toml::from_str(text).map_err(|e| PkiError::from_toml(path, text, &e))?;
        if let Some(url) = &f.server_url
            && url.trim().is_empty()
        {
            return Err(PkiError::bad_field(path, "server_url", "is empty; remove it or give a URL"));
        }
        one_cert(path, "ca_cert", &f.ca_cert)?;
        let cert = one_cert(path, "cert", &f.cert)?;
        let cn = agent_id_from_cert(&cert).map_err(|e| PkiError::bad_field(path, "cert", e.to_string()))?;
        if cn != f.agent_id {
            return Err(PkiError::bad_field(
                path,
                "cert",
                format!("is the certificate of agent {cn}, but agent_id is {}", f.agent_id),
            ));
        }
        private_key(path, "key", &f.key)?;
        let key_pair = rcgen::KeyPair::from_pem(&f.key)
            .map_err(|_| PkiError::bad_field(path, "key", "not a usable PEM private key"))?;
        if cert_public_key(&cert).as_deref() != Some(key_pair.public_key_raw()) {
            return Err(PkiError::bad_field(path, "key", "does not belong to the certificate in `cert`"));
        }
        Ok(Self::new(f.agent_id, f.server_url, f.sealing_key, f.ca_cert, f.cert, f.key))
    }

    /// The agent's TLS client configuration: TLS 1.3 only, the CA as the sole root, this
    /// credential's certificate as client certificate, ALPN `http/1.1`.
    pub fn client_tls_config(&self) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        let here = Path::new("<agent credential>");
        let ca = one_cert(here, "ca_cert", &self.ca_cert_pem)?;
        let cert = one_cert(here, "cert", &self.cert_pem)?;
        let key = private_key(here, "key", &self.key_pem)?;
        let tls_err = |source| PkiError::Tls { path: here.to_path_buf(), source };
        let mut roots = RootCertStore::empty();
        roots.add(ca).map_err(tls_err)?;
        let mut config = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)
            .map_err(tls_err)?;
        config.alpn_protocols = vec![AGENT_ALPN.to_vec()];
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InitOptions, Pki};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn issued() -> (tempfile::TempDir, AgentCredential) {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        pki.init(&InitOptions::default()).unwrap();
        let id = AgentId::new("edge-7").unwrap();
        let cred = pki.issue_agent(&id, Some("https://vigil.example:8443"), false).unwrap();
        (dir, cred)
    }

    #[test]
    fn write_load_round_trip_private_mode() {
        let (dir, cred) = issued();
        let path = dir.path().join("out/edge-7.credential.toml");
        cred.write(&path, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# vigil agent credential"), "{text}");
        assert!(text.contains("Keep secret"));

        let back = AgentCredential::load(&path).unwrap();
        assert_eq!(back.agent_id, cred.agent_id);
        assert_eq!(back.server_url.as_deref(), Some("https://vigil.example:8443"));
        assert_eq!(back.sealing_key.as_bytes(), cred.sealing_key.as_bytes());
        assert_eq!(back.ca_cert_pem, cred.ca_cert_pem);
        assert_eq!(back.cert_pem, cred.cert_pem);
        assert_eq!(back.key_pem(), cred.key_pem());
        back.client_tls_config().unwrap();

        // Never overwritten without force.
        let err = cred.write(&path, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        cred.write(&path, true).unwrap();
    }

    #[test]
    fn load_refuses_group_readable_file() {
        let (dir, cred) = issued();
        let path = dir.path().join("c.toml");
        cred.write(&path, false).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = AgentCredential::load(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PkiError::InsecurePermissions { .. }), "{msg}");
        assert!(msg.contains(&format!("chmod 600 {}", path.display())), "{msg}");
    }

    #[test]
    fn debug_hides_secrets() {
        let (_dir, cred) = issued();
        let dbg = format!("{cred:?}");
        assert!(!dbg.contains(&cred.sealing_key.to_hex()), "{dbg}");
        assert!(!dbg.contains("PRIVATE KEY"), "{dbg}");
    }

    #[test]
    fn load_names_bad_fields() {
        let (dir, cred) = issued();
        let good = cred.to_toml().unwrap();
        let path = dir.path().join("bad.toml");
        let check = |text: &str, field: &str| {
            let err = AgentCredential::parse(&path, text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(field), "{field}: {msg}");
            assert!(!msg.contains(&cred.sealing_key.to_hex()), "{msg}");
        };
        check(&good.replace(&cred.sealing_key.to_hex(), "00"), "sealing_key");
        check(&good.replace("agent_id = \"edge-7\"", "agent_id = \"other\""), "cert");
        check(&good.replace("agent_id = \"edge-7\"", "agent_id = \"bad id\""), "agent_id");
        check(&format!("{}\ncolor = \"red\"\n", &*good), "color");
        check(&good.replace("agent_id = \"edge-7\"\n", ""), "agent_id");

        // A key from another credential does not match the certificate.
        let (_d2, other) = issued();
        let swapped = good.replace(cred.key_pem(), other.key_pem());
        check(&swapped, "key");
    }
}
