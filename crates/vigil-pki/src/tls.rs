//! The server's rustls configuration, rebuilt when the CRL changes.

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use crate::fsutil::{self, FileStamp};
use crate::pki::{CA_CERT, CA_KEY, CRL, SERVER_CERT, SERVER_KEY};
use crate::{Pki, PkiError, SERVER_ALPN};

/// The crypto provider every vigil TLS config uses (aws-lc-rs), passed explicitly so no
/// process-wide default is needed.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server's TLS configuration: TLS 1.3 only, ALPN `h2` and `http/1.1`, and optional
/// client authentication against the vigil CA with the CRL applied.
///
/// Client certificates are optional so people without one can reach the API on the same
/// port; a certificate that is presented must chain to the CA, carry the clientAuth usage
/// and not be revoked, or the handshake fails. Whether a route needs an agent certificate
/// is decided by the server after the handshake.
///
/// Cloning is cheap; clones share the current configuration.
#[derive(Clone)]
pub struct ServerTls {
    inner: Arc<Inner>,
}

struct Inner {
    m: Material,
    state: Mutex<State>,
}

/// What the configuration is built from, apart from the CRL.
struct Material {
    pki_dir: PathBuf,
    crl_path: PathBuf,
    roots: Arc<RootCertStore>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

struct State {
    config: Arc<rustls::ServerConfig>,
    /// The CRL version the last reload attempt saw (`None`: the file was missing), so a
    /// bad or missing CRL is reported once rather than on every connection.
    seen: Option<FileStamp>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls").field("pki_dir", &self.inner.m.pki_dir).finish_non_exhaustive()
    }
}

fn read_pem_cert(path: &std::path::Path) -> Result<CertificateDer<'static>, PkiError> {
    let bytes = fsutil::read_bounded(path)?;
    CertificateDer::from_pem_slice(&bytes)
        .map_err(|_| PkiError::Malformed { path: path.to_path_buf(), message: "not a PEM certificate".to_owned() })
}

impl ServerTls {
    pub(crate) fn load(pki: &Pki) -> Result<Self, PkiError> {
        pki.require(&[CA_CERT, SERVER_CERT, SERVER_KEY, CRL])?;
        let pki_dir = pki.pki_dir();
        let ca_path = pki_dir.join(CA_CERT);
        let key_path = pki_dir.join(SERVER_KEY);
        for secret in [&key_path, &pki_dir.join(CA_KEY)] {
            if let Err(e @ PkiError::InsecurePermissions { .. }) = fsutil::check_private(secret) {
                tracing::warn!("{e}");
            }
        }
        let ca = read_pem_cert(&ca_path)?;
        let mut roots = RootCertStore::empty();
        roots.add(ca).map_err(|source| PkiError::Tls { path: ca_path.clone(), source })?;
        let cert = read_pem_cert(&pki_dir.join(SERVER_CERT))?;
        let key_bytes = fsutil::read_bounded(&key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes)
            .map_err(|_| PkiError::Malformed { path: key_path.clone(), message: "not a PEM private key".to_owned() })?;
        let crl_path = pki_dir.join(CRL);
        let m = Material { pki_dir, crl_path, roots: Arc::new(roots), cert, key };
        let (stamp, crl) = m.read_crl()?;
        let config = m.build(crl)?;
        let inner = Inner { m, state: Mutex::new(State { config, seen: Some(stamp) }) };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The current configuration. Costs one `stat` of `crl.pem`; when the CRL changed
    /// since the last call, it is re-read and the configuration rebuilt, so a revoke takes
    /// effect without a restart. If the new CRL cannot be used the previous configuration
    /// is kept and a warning logged.
    ///
    /// A rebuilt configuration also starts with an empty session cache, so a revoked agent
    /// cannot resume a session from before its revocation.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        let inner = &self.inner.m;
        let mut st = self.inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = fs::metadata(&inner.crl_path).ok().map(|m| FileStamp::of(&m));
        if now == st.seen {
            return st.config.clone();
        }
        st.seen = now;
        if now.is_none() {
            tracing::warn!(
                path = %inner.crl_path.display(),
                "CRL is missing; keeping the previous TLS configuration"
            );
            return st.config.clone();
        }
        match inner.read_crl().and_then(|(stamp, crl)| {
            st.seen = Some(stamp);
            inner.build(crl)
        }) {
            Ok(config) => {
                tracing::info!(path = %inner.crl_path.display(), "CRL changed; TLS configuration reloaded");
                st.config = config;
            }
            Err(e) => {
                tracing::warn!("{e}; keeping the previous TLS configuration");
            }
        }
        st.config.clone()
    }
}

impl Material {
    /// Reads the CRL with the stamp of the version read (taken from the open file, so the
    /// two always agree).
    fn read_crl(&self) -> Result<(FileStamp, CertificateRevocationListDer<'static>), PkiError> {
        let path = &self.crl_path;
        let meta = fs::metadata(path).map_err(|e| PkiError::io("read metadata of", path, e))?;
        let bytes = fsutil::read_bounded(path)?;
        let crl = CertificateRevocationListDer::from_pem_slice(&bytes)
            .map_err(|_| PkiError::Malformed { path: path.clone(), message: "not a PEM CRL".to_owned() })?;
        Ok((FileStamp::of(&meta), crl))
    }

    fn build(&self, crl: CertificateRevocationListDer<'static>) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = crypto_provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
            .with_crls([crl])
            .allow_unauthenticated()
            .build()
            .map_err(|source| PkiError::Verifier { path: self.pki_dir.clone(), source })?;
        let tls_err = |source| PkiError::Tls { path: self.pki_dir.clone(), source };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(tls_err)?;
        config.alpn_protocols = SERVER_ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AgentCredential, InitOptions, agent_id_from_cert};
    use rustls::{ClientConnection, ServerConnection};
    use rustls_pki_types::ServerName;
    use vigil_model::AgentId;

    /// Which side of the handshake failed, and why.
    #[derive(Debug)]
    enum Failed {
        Server(rustls::Error),
        Client(rustls::Error),
    }

    /// Runs a TLS handshake between the two configs entirely in memory. On success returns
    /// the server connection (to inspect the peer certificate).
    fn handshake(
        server: Arc<rustls::ServerConfig>,
        client: Arc<rustls::ClientConfig>,
    ) -> Result<ServerConnection, Failed> {
        let mut s = ServerConnection::new(server).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut c = ClientConnection::new(client, name).unwrap();
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
                s.process_new_packets().map_err(Failed::Server)?;
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
                c.process_new_packets().map_err(Failed::Client)?;
            }
            if !s.is_handshaking() && !c.is_handshaking() && !s.wants_write() && !c.wants_write() {
                assert_eq!(s.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
                assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
                return Ok(s);
            }
        }
        panic!("handshake did not finish in 20 rounds");
    }

    fn setup() -> (tempfile::TempDir, Pki, ServerTls) {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::at(dir.path());
        pki.init(&InitOptions::default()).unwrap();
        let tls = pki.server_tls().unwrap();
        (dir, pki, tls)
    }

    fn issue(pki: &Pki, id: &str) -> AgentCredential {
        pki.issue_agent(&AgentId::new(id).unwrap(), None, false).unwrap()
    }

    /// A client trusting `pki`'s CA, with the given client certificate (or none).
    fn client_with(pki: &Pki, cert: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
        let ca = CertificateDer::from_pem_slice(pki.ca_cert_pem().unwrap().as_bytes()).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca).unwrap();
        let b = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match cert {
            None => b.with_no_client_auth(),
            Some((cert, key)) => b
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    #[test]
    fn good_agent_handshakes_and_is_identified() {
        let (_dir, pki, tls) = setup();
        let cred = issue(&pki, "web-01");
        let s = handshake(tls.config(), cred.client_tls_config().unwrap()).unwrap();
        let peer = s.peer_certificates().expect("client certificate");
        assert_eq!(agent_id_from_cert(&peer[0]).unwrap().as_str(), "web-01");
    }

    #[test]
    fn credential_from_another_ca_is_refused() {
        let (_dir, pki, tls) = setup();
        let (_other_dir, other, _) = setup();
        let cred = issue(&other, "web-01");
        // The client trusts the right server; only its own certificate is foreign. Both
        // CAs are named "vigil CA", so webpki finds a candidate issuer whose signature
        // does not verify.
        let client = client_with(&pki, Some((&cred.cert_pem, cred.key_pem())));
        let err = handshake(tls.config(), client).unwrap_err();
        let foreign = matches!(
            err,
            Failed::Server(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadSignature | rustls::CertificateError::UnknownIssuer
            ))
        );
        assert!(foreign, "{err:?}");
        // And the agent's own config (trusting the other CA) refuses this server.
        let err = handshake(tls.config(), cred.client_tls_config().unwrap()).unwrap_err();
        assert!(matches!(err, Failed::Client(rustls::Error::InvalidCertificate(_))), "{err:?}");
    }

    #[test]
    fn revoked_agent_is_refused_without_restart() {
        let (_dir, pki, tls) = setup();
        let cred = issue(&pki, "web-01");
        let keep = issue(&pki, "web-02");
        handshake(tls.config(), cred.client_tls_config().unwrap()).unwrap();
        let before = tls.config();
        // Unchanged CRL: the same config object is handed out.
        assert!(Arc::ptr_eq(&before, &tls.config()));

        pki.revoke(&cred.agent_id).unwrap();
        let after = tls.config();
        assert!(!Arc::ptr_eq(&before, &after));
        let err = handshake(after.clone(), cred.client_tls_config().unwrap()).unwrap_err();
        assert!(
            matches!(err, Failed::Server(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked))),
            "{err:?}"
        );
        // Other agents are unaffected.
        handshake(after, keep.client_tls_config().unwrap()).unwrap();
    }

    #[test]
    fn no_client_certificate_is_allowed() {
        let (_dir, pki, tls) = setup();
        let s = handshake(tls.config(), client_with(&pki, None)).unwrap();
        assert!(s.peer_certificates().is_none());
    }

    #[test]
    fn server_certificate_is_not_a_client_certificate() {
        let (_dir, pki, tls) = setup();
        let cert = fs::read_to_string(pki.pki_dir().join(SERVER_CERT)).unwrap();
        let key = fs::read_to_string(pki.pki_dir().join(SERVER_KEY)).unwrap();
        let err = handshake(tls.config(), client_with(&pki, Some((&cert, &key)))).unwrap_err();
        let wrong_purpose = matches!(
            err,
            Failed::Server(rustls::Error::InvalidCertificate(
                rustls::CertificateError::InvalidPurpose | rustls::CertificateError::InvalidPurposeContext { .. }
            ))
        );
        assert!(wrong_purpose, "{err:?}");
    }

    #[test]
    fn broken_crl_keeps_previous_config() {
        let (_dir, pki, tls) = setup();
        let cred = issue(&pki, "web-01");
        let before = tls.config();
        fsutil::write_atomic(&pki.pki_dir().join(CRL), b"garbage", true, "").unwrap();
        let after = tls.config();
        assert!(Arc::ptr_eq(&before, &after));
        handshake(after, cred.client_tls_config().unwrap()).unwrap();
    }

    #[test]
    fn server_offers_h2_and_http1() {
        let (_dir, _pki, tls) = setup();
        assert_eq!(tls.config().alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
