//! Certificate, key and CRL generation with rcgen (ECDSA P-256, SHA-256, aws-lc-rs), and
//! reading identities back out of certificates with x509-parser.

use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::ServerName;
use time::{Duration, OffsetDateTime};
use vigil_model::AgentId;
use zeroize::Zeroizing;

use crate::PkiError;

/// CA lifetime: ten years.
const CA_DAYS: i64 = 3650;
/// Server and agent certificate lifetime (the CA/Browser Forum's old ceiling).
const LEAF_DAYS: i64 = 825;
/// How long a CRL is announced to be valid.
const CRL_DAYS: i64 = 365;
/// Certificates are back-dated this much so a peer whose clock is a little behind accepts
/// them right after issue.
const BACKDATE: Duration = Duration::hours(1);

/// Common name of the CA certificate.
pub(crate) const CA_COMMON_NAME: &str = "vigil CA";
/// Common name of the server certificate.
const SERVER_COMMON_NAME: &str = "vigil server";

/// A freshly made certificate with its private key.
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: Zeroizing<String>,
    pub(crate) serial_hex: String,
    pub(crate) sha256_hex: String,
}

/// SHA-256 fingerprint of a DER certificate, lowercase hex.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    hex::encode(digest(&SHA256, der))
}

/// A random positive 16-byte serial whose first byte is non-zero, so its hex form is the
/// exact DER integer content.
fn random_serial() -> Result<[u8; 16], PkiError> {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).map_err(|_| PkiError::Random { what: "making a certificate serial number" })?;
    b[0] = (b[0] & 0x7f).max(1);
    Ok(b)
}

fn new_key() -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| PkiError::Certificate { what: "generate an ECDSA P-256 key", source })
}

fn base_params(common_name: &str, now: OffsetDateTime, days: i64) -> Result<CertificateParams, PkiError> {
    let serial = random_serial()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(days);
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

fn finish(
    params: &CertificateParams,
    key: &KeyPair,
    issuer: Option<&Issuer<'_, KeyPair>>,
    what: &'static str,
) -> Result<Issued, PkiError> {
    let cert = match issuer {
        Some(issuer) => params.signed_by(key, issuer),
        None => params.self_signed(key),
    }
    .map_err(|source| PkiError::Certificate { what, source })?;
    let serial_hex = params.serial_number.as_ref().map(|s| hex::encode(s.to_bytes())).unwrap_or_default();
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: Zeroizing::new(key.serialize_pem()),
        serial_hex,
        sha256_hex: fingerprint(cert.der()),
    })
}

/// The self-signed CA: CN "vigil CA", ten years, pathlen 0, keyCertSign + cRLSign.
pub(crate) fn make_ca(now: OffsetDateTime) -> Result<Issued, PkiError> {
    let mut params = base_params(CA_COMMON_NAME, now, CA_DAYS)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = new_key()?;
    finish(&params, &key, None, "self-sign the CA certificate")
}

/// Checks that each name is a DNS name or an IP address a TLS client could ask for.
pub(crate) fn validate_server_names(names: &[String]) -> Result<(), PkiError> {
    for name in names {
        if let Err(e) = ServerName::try_from(name.as_str()) {
            return Err(PkiError::InvalidServerName { name: name.clone(), reason: e.to_string() });
        }
    }
    Ok(())
}

/// The server certificate: SANs from `names`, serverAuth only, 825 days.
pub(crate) fn make_server(ca: &Issuer<'_, KeyPair>, names: &[String], now: OffsetDateTime) -> Result<Issued, PkiError> {
    validate_server_names(names)?;
    let sans = CertificateParams::new(names.to_vec())
        .map_err(|e| PkiError::InvalidServerName { name: names.join(","), reason: e.to_string() })?;
    let mut params = base_params(SERVER_COMMON_NAME, now, LEAF_DAYS)?;
    params.subject_alt_names = sans.subject_alt_names;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = new_key()?;
    finish(&params, &key, Some(ca), "sign the server certificate")
}

/// An agent certificate: CN = agent id, clientAuth only, 825 days.
pub(crate) fn make_agent(ca: &Issuer<'_, KeyPair>, id: &AgentId, now: OffsetDateTime) -> Result<Issued, PkiError> {
    let mut params = base_params(id.as_str(), now, LEAF_DAYS)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let key = new_key()?;
    finish(&params, &key, Some(ca), "sign the agent certificate")
}

/// Loads the CA as an issuer from its PEM certificate and key.
pub(crate) fn load_issuer(
    cert_pem: &str,
    cert_path: &Path,
    key_pem: &str,
    key_path: &Path,
) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::Malformed {
        path: key_path.to_path_buf(),
        message: format!("not a PEM private key rcgen can use: {e}"),
    })?;
    Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| PkiError::Malformed {
        path: cert_path.to_path_buf(),
        message: format!("not a PEM CA certificate: {e}"),
    })
}

/// One CRL entry: the serial (without leading zero bytes) and when it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RevokedSerial {
    pub(crate) serial: Vec<u8>,
    pub(crate) at: OffsetDateTime,
}

/// Strips leading zero bytes so serials compare equal however they were encoded.
pub(crate) fn normalize_serial(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

/// A CRL signed by the CA, as PEM.
pub(crate) fn make_crl(
    ca: &Issuer<'_, KeyPair>,
    number: u64,
    revoked: &[RevokedSerial],
    now: OffsetDateTime,
) -> Result<String, PkiError> {
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + Duration::days(CRL_DAYS),
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&r.serial),
                revocation_time: r.at,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let what = "sign the certificate revocation list";
    params.signed_by(ca).and_then(|crl| crl.pem()).map_err(|source| PkiError::Certificate { what, source })
}

/// The CRL number and entries of an existing CRL (DER).
pub(crate) fn read_crl(der: &[u8], path: &Path) -> Result<(u64, Vec<RevokedSerial>), PkiError> {
    let (_, crl) = x509_parser::parse_x509_crl(der)
        .map_err(|e| PkiError::Malformed { path: path.to_path_buf(), message: format!("not a valid CRL: {e}") })?;
    let number = crl
        .crl_number()
        .map(|n| n.to_bytes_be())
        .and_then(|b| {
            let b = normalize_serial(&b);
            (b.len() <= 8).then(|| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
        })
        .unwrap_or(0);
    let entries = crl
        .iter_revoked_certificates()
        .map(|r| RevokedSerial { serial: normalize_serial(r.raw_serial()), at: r.revocation_date.to_datetime() })
        .collect();
    Ok((number, entries))
}

/// The agent id named by a peer certificate's common name.
///
/// The certificate must already have been verified against the CA (rustls does this in
/// the handshake); this only reads the name. A certificate with no CN, several CNs or a CN
/// that is not a valid [`AgentId`] is refused.
pub fn agent_id_from_cert(der: &[u8]) -> Result<AgentId, PkiError> {
    let bad = |reason: String| PkiError::PeerCertificate { reason };
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| bad(format!("not a DER X.509 certificate: {e}")))?;
    let mut cns = cert.subject().iter_common_name();
    let cn = cns.next().ok_or_else(|| bad("the subject has no common name".to_owned()))?;
    if cns.next().is_some() {
        return Err(bad("the subject has more than one common name".to_owned()));
    }
    let cn = cn.as_str().map_err(|_| bad("the common name is not a string".to_owned()))?;
    AgentId::new(cn).map_err(|e| bad(format!("the common name is not an agent id: {e}")))
}

/// The first certificate in a PEM text, as DER.
#[cfg(test)]
pub(crate) fn cert_from_pem(pem: &str) -> Option<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::ParsedExtension;

    fn der(pem: &str) -> Vec<u8> {
        cert_from_pem(pem).unwrap().to_vec()
    }

    #[test]
    fn ca_has_ca_constraints_and_key_usage() {
        let now = OffsetDateTime::now_utc();
        let ca = make_ca(now).unwrap();
        let der = der(&ca.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(!ku.digital_signature());
        let cn: Vec<_> = cert.subject().iter_common_name().collect();
        assert_eq!(cn[0].as_str().unwrap(), CA_COMMON_NAME);
        let days = (cert.validity().not_after.to_datetime() - now).whole_days();
        assert!((CA_DAYS - 1..=CA_DAYS).contains(&days), "{days}");
        assert_eq!(hex::encode(cert.raw_serial()), ca.serial_hex);
        assert_eq!(ca.serial_hex.len(), 32);
        assert_eq!(fingerprint(&der), ca.sha256_hex);
    }

    #[test]
    fn server_and_agent_leaf_profiles() {
        let now = OffsetDateTime::now_utc();
        let ca = make_ca(now).unwrap();
        let issuer = load_issuer(&ca.cert_pem, Path::new("c"), &ca.key_pem, Path::new("k")).unwrap();
        let names = vec!["vigil.example".to_owned(), "10.0.0.1".to_owned()];
        let server = make_server(&issuer, &names, now).unwrap();
        let der_s = der(&server.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der_s).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        let s = format!("{:?}", san.general_names);
        assert!(s.contains("vigil.example") && s.contains("IPAddress"), "{s}");
        let has_aki = cert
            .extensions()
            .iter()
            .any(|e| matches!(e.parsed_extension(), ParsedExtension::AuthorityKeyIdentifier(_)));
        assert!(has_aki);

        let id = AgentId::new("web-01").unwrap();
        let agent = make_agent(&issuer, &id, now).unwrap();
        let der_a = der(&agent.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der_a).unwrap();
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(agent_id_from_cert(&der_a).unwrap(), id);
        assert_ne!(agent.serial_hex, server.serial_hex);
        let days = (cert.validity().not_after.to_datetime() - now).whole_days();
        assert!((LEAF_DAYS - 1..=LEAF_DAYS).contains(&days), "{days}");
    }

    #[test]
    fn bad_server_names_are_refused() {
        for bad in ["", "a b", "-", "http://x"] {
            let err = validate_server_names(&[bad.to_owned()]).unwrap_err();
            assert!(matches!(err, PkiError::InvalidServerName { .. }), "{bad}: {err}");
        }
        validate_server_names(&["::1".to_owned(), "host.local".to_owned()]).unwrap();
    }

    #[test]
    fn crl_round_trips_number_and_entries() {
        let now = OffsetDateTime::now_utc();
        let ca = make_ca(now).unwrap();
        let issuer = load_issuer(&ca.cert_pem, Path::new("c"), &ca.key_pem, Path::new("k")).unwrap();
        let entry = RevokedSerial {
            serial: vec![0x12, 0x34],
            at: OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap(),
        };
        let pem = make_crl(&issuer, 7, std::slice::from_ref(&entry), now).unwrap();
        use rustls_pki_types::{CertificateRevocationListDer, pem::PemObject};
        let der = CertificateRevocationListDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (n, entries) = read_crl(&der, Path::new("crl")).unwrap();
        assert_eq!(n, 7);
        assert_eq!(entries, vec![entry]);
    }

    #[test]
    fn agent_id_from_cert_rejects_garbage_and_non_agent_names() {
        assert!(agent_id_from_cert(b"not a cert").is_err());
        let ca = make_ca(OffsetDateTime::now_utc()).unwrap();
        // "vigil CA" has a space: not an agent id.
        assert!(agent_id_from_cert(&der(&ca.cert_pem)).is_err());
    }
}
