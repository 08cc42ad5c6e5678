//! TLS records and the cleartext handshake: ClientHello (SNI, offered versions, cipher
//! suites), ServerHello (negotiated version), Certificate (SHA-256 fingerprint, subject,
//! issuer, validity), and SSLv2 hellos.
//!
//! Record and hello framing is hand-written and zero-copy: [`ClientHello`] and
//! [`ServerHello`] borrow the payload and iterate cipher suites and extensions lazily, so
//! sniffing a ClientHello allocates nothing (tls-parser builds vectors of ciphers and
//! extensions for every hello, and gives little context on errors). Certificates are parsed
//! with `x509-parser` ([`cert_info`]), which is the hard part.
//!
//! Two levels:
//! - one segment: [`client_hello`], [`server_hello`], [`parse_sslv2`] look at the start of
//!   a TCP payload and tolerate a hello cut by the segment end ([`ClientHello::truncated`]);
//! - a stream: [`TlsStream`] reassembles records and handshake messages across segments,
//!   in bounded memory, for Certificate messages that span several segments.

use std::fmt;

use sha2::{Digest, Sha256};

/// ChangeCipherSpec content type.
pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
/// Alert content type.
pub const CONTENT_ALERT: u8 = 21;
/// Handshake content type.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Application data content type.
pub const CONTENT_APPLICATION_DATA: u8 = 23;
/// Heartbeat content type.
pub const CONTENT_HEARTBEAT: u8 = 24;

/// ClientHello handshake type.
pub const HS_CLIENT_HELLO: u8 = 1;
/// ServerHello handshake type.
pub const HS_SERVER_HELLO: u8 = 2;
/// Certificate handshake type.
pub const HS_CERTIFICATE: u8 = 11;

/// server_name extension.
pub const EXT_SERVER_NAME: u16 = 0;
/// application_layer_protocol_negotiation extension.
pub const EXT_ALPN: u16 = 16;
/// supported_versions extension.
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// Largest record fragment accepted (2^14 plus the 2048 bytes of expansion TLS 1.2 allows).
pub const MAX_RECORD_LEN: usize = 16_384 + 2048;
/// Largest handshake message [`TlsStream`] reassembles.
pub const MAX_HANDSHAKE_LEN: usize = 65_536;
/// Default byte budget of a [`TlsStream`].
pub const DEFAULT_STREAM_LIMIT: usize = 128 * 1024;

/// Why TLS data could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The bytes do not start with a TLS record (or an SSLv2 hello).
    #[error("not a TLS record")]
    NotTls,
    /// More bytes are needed to finish the record or message.
    #[error("TLS data incomplete: more bytes needed")]
    Incomplete,
    /// A field is inconsistent; names the field.
    #[error("malformed TLS {0}")]
    Malformed(&'static str),
    /// A certificate did not parse as X.509 DER.
    #[error("certificate is not valid X.509 DER: {0}")]
    BadCertificate(String),
}

/// A TLS (or SSL) protocol version as written on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TlsVersion(pub u16);

impl TlsVersion {
    /// SSL 2.0.
    pub const SSL_2_0: TlsVersion = TlsVersion(0x0002);
    /// SSL 3.0.
    pub const SSL_3_0: TlsVersion = TlsVersion(0x0300);
    /// TLS 1.0.
    pub const TLS_1_0: TlsVersion = TlsVersion(0x0301);
    /// TLS 1.1.
    pub const TLS_1_1: TlsVersion = TlsVersion(0x0302);
    /// TLS 1.2.
    pub const TLS_1_2: TlsVersion = TlsVersion(0x0303);
    /// TLS 1.3.
    pub const TLS_1_3: TlsVersion = TlsVersion(0x0304);

    /// True for the GREASE values (RFC 8701), which mean nothing.
    pub fn is_grease(self) -> bool {
        let [hi, lo] = self.0.to_be_bytes();
        hi == lo && hi & 0x0f == 0x0a
    }

    /// True for versions considered broken or deprecated: SSLv2, SSLv3, TLS 1.0, TLS 1.1.
    pub fn is_deprecated(self) -> bool {
        matches!(self.0, 0x0002 | 0x0300 | 0x0301 | 0x0302)
    }

    /// A short name: `"SSLv2"`, `"TLS 1.2"`, `"TLS 1.3 draft 23"`, or `"0x1234"` in the
    /// Display form for unknown values.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0002 => "SSLv2",
            0x0300 => "SSLv3",
            0x0301 => "TLS 1.0",
            0x0302 => "TLS 1.1",
            0x0303 => "TLS 1.2",
            0x0304 => "TLS 1.3",
            _ => return None,
        })
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None if self.0 & 0xff00 == 0x7f00 => write!(f, "TLS 1.3 draft {}", self.0 & 0xff),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

impl fmt::Debug for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsVersion({self})")
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u24_at(b: &[u8], i: usize) -> Option<usize> {
    Some((usize::from(*b.get(i)?) << 16) | (usize::from(*b.get(i + 1)?) << 8) | usize::from(*b.get(i + 2)?))
}

/// A cursor over a byte slice whose reads fail softly (no panics, no indexing).
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        let (b, rest) = self.rest.split_first_chunk::<2>()?;
        self.rest = rest;
        Some(u16::from_be_bytes(*b))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(a)
    }
    /// Takes up to `n` bytes; the bool is false when fewer were there.
    fn take_lenient(&mut self, n: usize) -> (&'a [u8], bool) {
        match self.take(n) {
            Some(a) => (a, true),
            None => (std::mem::take(&mut self.rest), false),
        }
    }
}

/// One TLS record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Content type (20..=24).
    pub content_type: u8,
    /// Record-layer version (often 0x0301 even for newer protocols).
    pub version: TlsVersion,
    /// The record fragment.
    pub fragment: &'a [u8],
}

/// Parses the record at the start of `data`; returns it and the bytes after it.
pub fn parse_record(data: &[u8]) -> Result<(Record<'_>, &[u8]), TlsError> {
    let (h, rest) = match data.split_first_chunk::<5>() {
        Some(x) => x,
        None => {
            // Say "incomplete" only when what is there could start a record.
            let plausible = data.first().is_none_or(|b| (20..=24).contains(b)) && data.get(1).is_none_or(|b| *b == 3);
            return Err(if plausible { TlsError::Incomplete } else { TlsError::NotTls });
        }
    };
    if !(20..=24).contains(&h[0]) || h[1] != 3 {
        return Err(TlsError::NotTls);
    }
    let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
    if len > MAX_RECORD_LEN {
        return Err(TlsError::Malformed("record length"));
    }
    let (fragment, rest) = rest.split_at_checked(len).ok_or(TlsError::Incomplete)?;
    Ok((Record { content_type: h[0], version: TlsVersion(u16::from_be_bytes([h[1], h[2]])), fragment }, rest))
}

/// Iterates the complete records at the start of `data` (stops at the first incomplete or
/// invalid one; [`Records::rest`] tells what was left).
pub fn records(data: &[u8]) -> Records<'_> {
    Records { rest: data }
}

/// Iterator over records; see [`records`].
#[derive(Clone, Debug)]
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    /// The bytes not consumed yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;
    fn next(&mut self) -> Option<Record<'a>> {
        let (rec, rest) = parse_record(self.rest).ok()?;
        self.rest = rest;
        Some(rec)
    }
}

/// Iterator over TLS extensions as (type, data); stops at the first malformed one.
#[derive(Clone, Debug)]
pub struct Extensions<'a> {
    cur: Cursor<'a>,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let ty = self.cur.u16()?;
        let len = self.cur.u16()?;
        match self.cur.take(usize::from(len)) {
            Some(d) => Some((ty, d)),
            None => {
                self.cur.rest = &[];
                None
            }
        }
    }
}

impl fmt::Debug for Cursor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({} bytes)", self.rest.len())
    }
}

impl Clone for Cursor<'_> {
    fn clone(&self) -> Self {
        Cursor { rest: self.rest }
    }
}

fn u16_list(b: &[u8]) -> impl Iterator<Item = u16> + '_ {
    b.chunks_exact(2).map(|c| match c {
        [a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    })
}

/// A ClientHello, borrowed from the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientHello<'a> {
    /// legacy_version (0x0303 for TLS 1.2 and 1.3; see [`ClientHello::max_version`]).
    pub version: TlsVersion,
    /// The 32-byte random (shorter only when truncated).
    pub random: &'a [u8],
    /// Session id.
    pub session_id: &'a [u8],
    /// Raw cipher suite list (see [`ClientHello::cipher_suites`]).
    pub cipher_suites_raw: &'a [u8],
    /// Compression methods.
    pub compression: &'a [u8],
    /// Raw extensions block (see [`ClientHello::extensions`]).
    pub extensions_raw: &'a [u8],
    /// The hello was cut short (segment end): later fields or extensions may be missing.
    pub truncated: bool,
}

impl<'a> ClientHello<'a> {
    /// Offered cipher suites (GREASE included, as sent).
    pub fn cipher_suites(&self) -> impl Iterator<Item = u16> + 'a {
        u16_list(self.cipher_suites_raw)
    }
    /// Extensions as (type, data).
    pub fn extensions(&self) -> Extensions<'a> {
        Extensions { cur: Cursor { rest: self.extensions_raw } }
    }
    /// The data of the first extension of type `ty`.
    pub fn extension(&self, ty: u16) -> Option<&'a [u8]> {
        self.extensions().find(|(t, _)| *t == ty).map(|(_, d)| d)
    }
    /// The server name (SNI host_name), when present and valid UTF-8.
    pub fn sni(&self) -> Option<&'a str> {
        let mut c = Cursor { rest: self.extension(EXT_SERVER_NAME)? };
        let list_len = c.u16()?;
        let mut list = Cursor { rest: c.take(usize::from(list_len)).unwrap_or(c.rest) };
        while let Some(kind) = list.u8() {
            let len = list.u16()?;
            let name = list.take(usize::from(len))?;
            if kind == 0 {
                return std::str::from_utf8(name).ok();
            }
        }
        None
    }
    /// Versions of the supported_versions extension (GREASE included, as sent).
    pub fn supported_versions(&self) -> impl Iterator<Item = TlsVersion> + 'a {
        let list = self
            .extension(EXT_SUPPORTED_VERSIONS)
            .and_then(|d| {
                let (&n, rest) = d.split_first()?;
                Some(rest.get(..usize::from(n)).unwrap_or(rest))
            })
            .unwrap_or(&[]);
        u16_list(list).map(TlsVersion)
    }
    /// Every version the client offers: supported_versions without GREASE, or the
    /// legacy_version alone when the extension is absent.
    pub fn offered_versions(&self) -> impl Iterator<Item = TlsVersion> + 'a {
        let has_ext = self.extension(EXT_SUPPORTED_VERSIONS).is_some();
        let legacy = (!has_ext).then_some(self.version);
        self.supported_versions().filter(|v| !v.is_grease()).chain(legacy)
    }
    /// The highest version offered.
    pub fn max_version(&self) -> TlsVersion {
        self.offered_versions().max().unwrap_or(self.version)
    }
    /// ALPN protocol names.
    pub fn alpn(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut c = Cursor { rest: self.extension(EXT_ALPN).and_then(|d| d.get(2..)).unwrap_or(&[]) };
        std::iter::from_fn(move || {
            let n = c.u8()?;
            c.take(usize::from(n))
        })
    }
}

/// Parses a ClientHello body (after the 4-byte handshake header). A body cut short is
/// parsed as far as it goes and marked [`ClientHello::truncated`]; it must at least hold
/// the version.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello<'_>, TlsError> {
    let mut c = Cursor { rest: body };
    let version = TlsVersion(c.u16().ok_or(TlsError::Incomplete)?);
    let mut complete = true;
    let (random, ok) = c.take_lenient(32);
    complete &= ok;
    let sid_len = c.u8();
    let (session_id, ok) = c.take_lenient(usize::from(sid_len.unwrap_or(0)));
    complete &= ok && sid_len.is_some();
    let cs_len = c.u16();
    let (cipher_suites_raw, ok) = c.take_lenient(usize::from(cs_len.unwrap_or(0)));
    complete &= ok && cs_len.is_some();
    let comp_len = c.u8();
    let (compression, ok) = c.take_lenient(usize::from(comp_len.unwrap_or(0)));
    complete &= ok && comp_len.is_some();
    let mut extensions_raw: &[u8] = &[];
    if complete && !c.rest.is_empty() {
        match c.u16() {
            Some(n) => {
                let (e, ok) = c.take_lenient(usize::from(n));
                extensions_raw = e;
                complete &= ok;
            }
            None => complete = false,
        }
    }
    if !cipher_suites_raw.len().is_multiple_of(2) && complete {
        return Err(TlsError::Malformed("ClientHello cipher suite list"));
    }
    Ok(ClientHello {
        version,
        random,
        session_id,
        cipher_suites_raw,
        compression,
        extensions_raw,
        truncated: !complete,
    })
}

/// A ServerHello, borrowed from the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerHello<'a> {
    /// legacy_version (see [`ServerHello::selected_version`]).
    pub version: TlsVersion,
    /// The 32-byte random.
    pub random: &'a [u8],
    /// Session id.
    pub session_id: &'a [u8],
    /// Chosen cipher suite.
    pub cipher_suite: u16,
    /// Chosen compression method.
    pub compression: u8,
    /// Raw extensions block.
    pub extensions_raw: &'a [u8],
}

impl<'a> ServerHello<'a> {
    /// Extensions as (type, data).
    pub fn extensions(&self) -> Extensions<'a> {
        Extensions { cur: Cursor { rest: self.extensions_raw } }
    }
    /// The negotiated version: supported_versions when present (TLS 1.3), else
    /// legacy_version.
    pub fn selected_version(&self) -> TlsVersion {
        self.extensions()
            .find(|(t, _)| *t == EXT_SUPPORTED_VERSIONS)
            .and_then(|(_, d)| u16_at(d, 0))
            .map_or(self.version, TlsVersion)
    }
}

/// Parses a ServerHello body (after the 4-byte handshake header).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello<'_>, TlsError> {
    let mut c = Cursor { rest: body };
    let inc = TlsError::Incomplete;
    let version = TlsVersion(c.u16().ok_or(inc.clone())?);
    let random = c.take(32).ok_or(inc.clone())?;
    let sid_len = c.u8().ok_or(inc.clone())?;
    let session_id = c.take(usize::from(sid_len)).ok_or(inc.clone())?;
    let cipher_suite = c.u16().ok_or(inc.clone())?;
    let compression = c.u8().ok_or(inc)?;
    let extensions_raw = match c.u16() {
        Some(n) => c.take_lenient(usize::from(n)).0,
        None => &[],
    };
    Ok(ServerHello { version, random, session_id, cipher_suite, compression, extensions_raw })
}

/// The certificate list of a (TLS ≤ 1.2) Certificate message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertificateList<'a> {
    list: &'a [u8],
}

impl<'a> CertificateList<'a> {
    /// The DER certificates, leaf first; stops at the first malformed entry.
    pub fn certs(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.list;
        std::iter::from_fn(move || {
            let n = u24_at(rest, 0)?;
            let der = rest.get(3..3 + n)?;
            rest = rest.get(3 + n..).unwrap_or(&[]);
            Some(der)
        })
    }
}

/// Parses a Certificate body (after the 4-byte handshake header).
pub fn parse_certificate(body: &[u8]) -> Result<CertificateList<'_>, TlsError> {
    let n = u24_at(body, 0).ok_or(TlsError::Incomplete)?;
    let list = body.get(3..3 + n).ok_or(TlsError::Incomplete)?;
    Ok(CertificateList { list })
}

/// A decoded handshake message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake<'a> {
    /// ClientHello.
    ClientHello(ClientHello<'a>),
    /// ServerHello.
    ServerHello(ServerHello<'a>),
    /// Certificate.
    Certificate(CertificateList<'a>),
    /// Any other handshake type, undecoded.
    Other {
        /// Handshake type.
        msg_type: u8,
        /// Body.
        body: &'a [u8],
    },
}

/// Decodes the body of a handshake message of type `msg_type`.
pub fn parse_handshake(msg_type: u8, body: &[u8]) -> Result<Handshake<'_>, TlsError> {
    Ok(match msg_type {
        HS_CLIENT_HELLO => Handshake::ClientHello(parse_client_hello(body)?),
        HS_SERVER_HELLO => Handshake::ServerHello(parse_server_hello(body)?),
        HS_CERTIFICATE => Handshake::Certificate(parse_certificate(body)?),
        _ => Handshake::Other { msg_type, body },
    })
}

/// The first handshake message of the first record of a segment, tolerating a cut record
/// or message: (type, available body, complete?).
fn first_handshake(payload: &[u8]) -> Option<(u8, &[u8], bool)> {
    let h = payload.first_chunk::<5>()?;
    if h[0] != CONTENT_HANDSHAKE || h[1] != 3 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
    let avail = payload.get(5..)?;
    let frag = avail.get(..len).unwrap_or(avail);
    let msg_type = *frag.first()?;
    let mlen = u24_at(frag, 1)?;
    let body_avail = frag.get(4..)?;
    match body_avail.get(..mlen) {
        Some(b) => Some((msg_type, b, true)),
        None => Some((msg_type, body_avail, false)),
    }
}

/// Fast path: the ClientHello at the start of a TCP payload, if it starts with one. No
/// allocation. A hello cut by the segment end is returned with
/// [`ClientHello::truncated`] set.
pub fn client_hello(payload: &[u8]) -> Option<ClientHello<'_>> {
    let (ty, body, complete) = first_handshake(payload)?;
    if ty != HS_CLIENT_HELLO {
        return None;
    }
    let mut ch = parse_client_hello(body).ok()?;
    ch.truncated |= !complete;
    Some(ch)
}

/// Fast path: the ServerHello at the start of a TCP payload, if it starts with one.
pub fn server_hello(payload: &[u8]) -> Option<ServerHello<'_>> {
    let (ty, body, _) = first_handshake(payload)?;
    if ty != HS_SERVER_HELLO {
        return None;
    }
    parse_server_hello(body).ok()
}

/// An SSLv2 hello (2-byte record header with the high bit set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sslv2Hello<'a> {
    /// CLIENT-HELLO; `version` is 0x0002 for SSLv2, or 0x0300+ for a v2-compatible hello
    /// offering SSLv3/TLS.
    Client {
        /// Highest version offered.
        version: TlsVersion,
        /// Cipher specs (3 bytes each).
        cipher_specs: &'a [u8],
        /// Session id.
        session_id: &'a [u8],
        /// Challenge.
        challenge: &'a [u8],
    },
    /// SERVER-HELLO: the server speaks SSLv2.
    Server {
        /// Version (0x0002).
        version: TlsVersion,
        /// The server certificate (DER), if any.
        certificate: &'a [u8],
        /// Cipher specs (3 bytes each).
        cipher_specs: &'a [u8],
        /// Connection id.
        connection_id: &'a [u8],
    },
}

impl Sslv2Hello<'_> {
    /// The version field.
    pub fn version(&self) -> TlsVersion {
        match self {
            Sslv2Hello::Client { version, .. } | Sslv2Hello::Server { version, .. } => *version,
        }
    }
    /// Cipher specs as 24-bit values.
    pub fn cipher_specs(&self) -> impl Iterator<Item = u32> + '_ {
        let specs = match self {
            Sslv2Hello::Client { cipher_specs, .. } | Sslv2Hello::Server { cipher_specs, .. } => *cipher_specs,
        };
        specs.chunks_exact(3).map(|c| match c {
            [a, b, d] => (u32::from(*a) << 16) | (u32::from(*b) << 8) | u32::from(*d),
            _ => 0,
        })
    }
}

/// Parses an SSLv2 CLIENT-HELLO or SERVER-HELLO at the start of `data`; returns it and
/// the bytes after its record.
pub fn parse_sslv2(data: &[u8]) -> Result<(Sslv2Hello<'_>, &[u8]), TlsError> {
    let h = data.first_chunk::<3>().ok_or(TlsError::Incomplete)?;
    if h[0] & 0x80 == 0 {
        return Err(TlsError::NotTls);
    }
    let len = (usize::from(h[0] & 0x7f) << 8) | usize::from(h[1]);
    let body = data.get(2..2 + len).ok_or(TlsError::Incomplete)?;
    let rest = data.get(2 + len..).unwrap_or(&[]);
    let mut c = Cursor { rest: body };
    let bad = TlsError::NotTls;
    let hello = match c.u8() {
        Some(1) => {
            let version = TlsVersion(c.u16().ok_or(bad.clone())?);
            let (cs, sid, chal) = (c.u16(), c.u16(), c.u16());
            let (Some(cs), Some(sid), Some(chal)) = (cs, sid, chal) else {
                return Err(bad);
            };
            if !matches!(version.0, 0x0002 | 0x0300..=0x0304)
                || !cs.is_multiple_of(3)
                || !(16..=32).contains(&chal)
                || (sid != 0 && sid != 16)
            {
                return Err(bad);
            }
            Sslv2Hello::Client {
                version,
                cipher_specs: c.take(usize::from(cs)).ok_or(bad.clone())?,
                session_id: c.take(usize::from(sid)).ok_or(bad.clone())?,
                challenge: c.take(usize::from(chal)).ok_or(bad)?,
            }
        }
        Some(4) => {
            let _session_id_hit = c.u8();
            let _cert_type = c.u8();
            let version = TlsVersion(c.u16().ok_or(bad.clone())?);
            let (cert, cs, conn) = (c.u16(), c.u16(), c.u16());
            let (Some(cert), Some(cs), Some(conn)) = (cert, cs, conn) else {
                return Err(bad);
            };
            if version != TlsVersion::SSL_2_0 || !cs.is_multiple_of(3) {
                return Err(bad);
            }
            Sslv2Hello::Server {
                version,
                certificate: c.take(usize::from(cert)).ok_or(bad.clone())?,
                cipher_specs: c.take(usize::from(cs)).ok_or(bad.clone())?,
                connection_id: c.take(usize::from(conn)).ok_or(bad)?,
            }
        }
        _ => return Err(bad),
    };
    Ok((hello, rest))
}

/// What an X.509 certificate says, for fingerprint-change and validity checks.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CertInfo {
    /// SHA-256 of the DER encoding (the usual certificate fingerprint).
    pub sha256: [u8; 32],
    /// Subject distinguished name (RFC 4514 style, e.g. `CN=example.org, O=Example`).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// The subject's first common name, if any.
    pub subject_cn: Option<String>,
    /// notBefore, in seconds since the Unix epoch (may be negative).
    pub not_before: i64,
    /// notAfter, in seconds since the Unix epoch.
    pub not_after: i64,
    /// Serial number as colon-separated hex.
    pub serial: String,
}

impl CertInfo {
    /// The fingerprint as 64 lowercase hex digits.
    pub fn fingerprint_hex(&self) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(64);
        for b in self.sha256 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }
    /// Issuer and subject are the same name (self-issued, usually self-signed).
    pub fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }
    /// True when `unix_secs` is outside [not_before, not_after].
    pub fn is_expired_at(&self, unix_secs: i64) -> bool {
        unix_secs < self.not_before || unix_secs > self.not_after
    }
}

impl fmt::Debug for CertInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertInfo")
            .field("sha256", &self.fingerprint_hex())
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("serial", &self.serial)
            .finish()
    }
}

/// Parses one DER certificate: fingerprint, names and validity.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, TlsError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| TlsError::BadCertificate(e.to_string()))?;
    let sha256: [u8; 32] = Sha256::digest(der).into();
    let subject_cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned);
    let validity = cert.validity();
    Ok(CertInfo {
        sha256,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        subject_cn,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        serial: cert.raw_serial_as_string(),
    })
}

/// One message out of a [`TlsStream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMessage<'a> {
    /// A complete handshake message.
    Handshake(Handshake<'a>),
    /// An SSLv2 hello (only as the first message of a stream).
    Sslv2(Sslv2Hello<'a>),
    /// ChangeCipherSpec: what follows in this direction is encrypted, so the stream stops
    /// producing handshake messages after it.
    ChangeCipherSpec,
    /// An alert (in clear before ChangeCipherSpec).
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// Alert description.
        description: u8,
    },
    /// Application data (or a heartbeat) record: only its length.
    Record {
        /// Content type.
        content_type: u8,
        /// Fragment length.
        len: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StreamState {
    Start,
    Records,
    Stopped,
}

/// Reassembles one direction of a TLS connection, segment by segment, into records and
/// handshake messages, in bounded memory (the detectors keep one per watched connection
/// for its first few kilobytes).
///
/// Feed TCP payloads in order with [`TlsStream::push`], then drain with
/// [`TlsStream::next_message`] until it returns `None`.
#[derive(Clone, Debug)]
pub struct TlsStream {
    raw: Vec<u8>,
    hs: Vec<u8>,
    hs_pending: usize,
    raw_pending: usize,
    limit: usize,
    state: StreamState,
    overflowed: bool,
}

impl Default for TlsStream {
    fn default() -> Self {
        TlsStream::new(DEFAULT_STREAM_LIMIT)
    }
}

impl TlsStream {
    /// A stream that holds at most `limit` bytes at once (records plus partial handshake
    /// messages).
    pub fn new(limit: usize) -> TlsStream {
        TlsStream {
            raw: Vec::new(),
            hs: Vec::new(),
            hs_pending: 0,
            raw_pending: 0,
            limit,
            state: StreamState::Start,
            overflowed: false,
        }
    }

    /// Appends the next TCP payload of this direction. Returns false when the data was
    /// dropped: the stream has stopped (encrypted, not TLS), or the byte budget would be
    /// exceeded, which stops it ([`TlsStream::overflowed`] then tells).
    pub fn push(&mut self, data: &[u8]) -> bool {
        self.consume_pending();
        if self.state == StreamState::Stopped {
            return false;
        }
        if self.raw.len() + self.hs.len() + data.len() > self.limit {
            self.overflowed = true;
            self.stop();
            return false;
        }
        self.raw.extend_from_slice(data);
        true
    }

    /// True when the stream was stopped for exceeding its byte budget.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// True when the stream will produce nothing more (encrypted, overflowed, not TLS).
    pub fn is_stopped(&self) -> bool {
        self.state == StreamState::Stopped
    }

    fn stop(&mut self) {
        self.state = StreamState::Stopped;
        self.raw = Vec::new();
        self.hs = Vec::new();
        self.raw_pending = 0;
        self.hs_pending = 0;
    }

    fn consume_pending(&mut self) {
        if self.hs_pending > 0 {
            self.hs.drain(..self.hs_pending.min(self.hs.len()));
            self.hs_pending = 0;
        }
        if self.raw_pending > 0 {
            self.raw.drain(..self.raw_pending.min(self.raw.len()));
            self.raw_pending = 0;
        }
    }

    /// The next complete message, `None` when more data is needed or the stream stopped.
    /// An error stops the stream.
    pub fn next_message(&mut self) -> Option<Result<TlsMessage<'_>, TlsError>> {
        self.consume_pending();
        loop {
            if self.state == StreamState::Stopped {
                return None;
            }
            // A complete handshake message already reassembled?
            if let Some(len) = u24_at(&self.hs, 1) {
                if len > MAX_HANDSHAKE_LEN {
                    self.stop();
                    return Some(Err(TlsError::Malformed("handshake length")));
                }
                if self.hs.len() >= 4 + len {
                    self.hs_pending = 4 + len;
                    let ty = self.hs.first().copied().unwrap_or(0);
                    let body = self.hs.get(4..4 + len).unwrap_or(&[]);
                    return Some(parse_handshake(ty, body).map(TlsMessage::Handshake));
                }
            }
            if self.state == StreamState::Start {
                match self.raw.first() {
                    None => return None,
                    Some(b) if b & 0x80 != 0 => {
                        self.state = StreamState::Stopped;
                        return match parse_sslv2(&self.raw) {
                            Err(TlsError::Incomplete) => {
                                self.state = StreamState::Start;
                                None
                            }
                            Ok((hello, _)) => Some(Ok(TlsMessage::Sslv2(hello))),
                            Err(e) => Some(Err(e)),
                        };
                    }
                    Some(_) => self.state = StreamState::Records,
                }
            }
            let (content_type, start, end) = match parse_record(&self.raw) {
                Ok((rec, rest)) => (rec.content_type, 5, self.raw.len() - rest.len()),
                Err(TlsError::Incomplete) => return None,
                Err(e) => {
                    self.stop();
                    return Some(Err(e));
                }
            };
            let fragment = self.raw.get(start..end).unwrap_or(&[]);
            match content_type {
                CONTENT_HANDSHAKE => {
                    self.hs.extend_from_slice(fragment);
                    self.raw.drain(..end);
                }
                CONTENT_CHANGE_CIPHER_SPEC => {
                    self.stop();
                    return Some(Ok(TlsMessage::ChangeCipherSpec));
                }
                CONTENT_ALERT => {
                    let msg = TlsMessage::Alert {
                        level: fragment.first().copied().unwrap_or(0),
                        description: fragment.get(1).copied().unwrap_or(0),
                    };
                    self.raw_pending = end;
                    return Some(Ok(msg));
                }
                _ => {
                    let msg = TlsMessage::Record { content_type, len: end - start };
                    self.raw_pending = end;
                    return Some(Ok(msg));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello record: SNI, supported_versions (GREASE, 1.3, 1.2), ALPN h2.
    pub(crate) fn client_hello_record(sni: &str) -> Vec<u8> {
        let mut ext = Vec::new();
        // server_name
        let name = sni.as_bytes();
        let mut sn = Vec::new();
        sn.extend(((name.len() + 3) as u16).to_be_bytes());
        sn.push(0);
        sn.extend((name.len() as u16).to_be_bytes());
        sn.extend(name);
        ext.extend(0u16.to_be_bytes());
        ext.extend((sn.len() as u16).to_be_bytes());
        ext.extend(&sn);
        // supported_versions
        ext.extend([0, 43, 0, 7, 6, 0x1a, 0x1a, 3, 4, 3, 3]);
        // ALPN
        ext.extend([0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0, 6, 0x13, 0x01, 0xc0, 0x2f, 0x00, 0x04]);
        body.extend([1, 0]);
        body.extend((ext.len() as u16).to_be_bytes());
        body.extend(ext);
        let mut hs = vec![HS_CLIENT_HELLO, 0];
        hs.extend((body.len() as u16).to_be_bytes());
        hs.extend(body);
        let mut rec = vec![CONTENT_HANDSHAKE, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn server_hello_body(version: u16, supported: Option<u16>) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend([9u8; 32]);
        b.push(0);
        b.extend([0x13, 0x01, 0]);
        if let Some(v) = supported {
            b.extend([0, 6, 0, 43, 0, 2]);
            b.extend(v.to_be_bytes());
        }
        b
    }

    fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, 0];
        v.extend((body.len() as u16).to_be_bytes());
        v.extend(body);
        v
    }

    fn record(ct: u8, frag: &[u8]) -> Vec<u8> {
        let mut v = vec![ct, 3, 3];
        v.extend((frag.len() as u16).to_be_bytes());
        v.extend(frag);
        v
    }

    #[test]
    fn client_hello_fields() {
        let rec = client_hello_record("example.org");
        let ch = client_hello(&rec).unwrap();
        assert!(!ch.truncated);
        assert_eq!(ch.version, TlsVersion::TLS_1_2);
        assert_eq!(ch.sni(), Some("example.org"));
        assert_eq!(ch.cipher_suites().collect::<Vec<_>>(), [0x1301, 0xc02f, 0x0004]);
        assert_eq!(ch.offered_versions().collect::<Vec<_>>(), [TlsVersion::TLS_1_3, TlsVersion::TLS_1_2]);
        assert_eq!(ch.supported_versions().count(), 3);
        assert_eq!(ch.max_version(), TlsVersion::TLS_1_3);
        assert_eq!(ch.alpn().collect::<Vec<_>>(), [b"h2"]);
        assert!(server_hello(&rec).is_none());
        // Cut inside the extensions: still parsed, marked truncated, SNI may survive.
        let cut = client_hello(&rec[..rec.len() - 12]).unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.sni(), Some("example.org"));
        assert_eq!(cut.cipher_suites().count(), 3);
        // Not a handshake.
        assert!(client_hello(b"GET / HTTP/1.1\r\n").is_none());
    }

    #[test]
    fn server_hello_versions() {
        let rec = record(CONTENT_HANDSHAKE, &handshake(2, &server_hello_body(0x0303, Some(0x0304))));
        let sh = server_hello(&rec).unwrap();
        assert_eq!(sh.selected_version(), TlsVersion::TLS_1_3);
        assert_eq!(sh.cipher_suite, 0x1301);
        let rec = record(CONTENT_HANDSHAKE, &handshake(2, &server_hello_body(0x0301, None)));
        let sh = server_hello(&rec).unwrap();
        assert_eq!(sh.selected_version(), TlsVersion::TLS_1_0);
        assert!(sh.selected_version().is_deprecated());
        assert!(!TlsVersion::TLS_1_2.is_deprecated());
        assert!(TlsVersion(0x3a3a).is_grease());
        assert_eq!(TlsVersion(0x7f17).to_string(), "TLS 1.3 draft 23");
        assert_eq!(TlsVersion(0x1234).to_string(), "0x1234");
    }

    #[test]
    fn stream_reassembles_messages_across_records_and_segments() {
        // ServerHello and a Certificate (with a non-X.509 blob) split over two records,
        // delivered in 7-byte segments, then CCS.
        let mut hs = handshake(2, &server_hello_body(0x0303, None));
        let mut cert_list = Vec::new();
        let fake_der = [0x30u8, 3, 1, 2, 3];
        cert_list.extend([0, 0, fake_der.len() as u8]);
        cert_list.extend(fake_der);
        let mut body = vec![0, 0, cert_list.len() as u8];
        body.extend(cert_list);
        hs.extend(handshake(HS_CERTIFICATE, &body));
        let (a, b) = hs.split_at(30);
        let mut wire = record(CONTENT_HANDSHAKE, a);
        wire.extend(record(CONTENT_HANDSHAKE, b));
        wire.extend(record(CONTENT_ALERT, &[1, 0]));
        wire.extend(record(CONTENT_CHANGE_CIPHER_SPEC, &[1]));
        wire.extend(record(CONTENT_HANDSHAKE, &[0xde, 0xad]));
        let mut s = TlsStream::default();
        let mut seen = Vec::new();
        for seg in wire.chunks(7) {
            s.push(seg);
            while let Some(m) = s.next_message() {
                seen.push(match m.unwrap() {
                    TlsMessage::Handshake(Handshake::ServerHello(sh)) => {
                        format!("sh {}", sh.selected_version())
                    }
                    TlsMessage::Handshake(Handshake::Certificate(c)) => {
                        let certs: Vec<_> = c.certs().collect();
                        assert_eq!(certs, [&fake_der[..]]);
                        assert!(cert_info(certs[0]).is_err());
                        "cert".to_string()
                    }
                    other => format!("{other:?}"),
                });
            }
        }
        assert_eq!(seen, ["sh TLS 1.2", "cert", "Alert { level: 1, description: 0 }", "ChangeCipherSpec"]);
        assert!(s.is_stopped());
        assert!(!s.push(b"more"));
    }

    #[test]
    fn stream_budget_and_garbage() {
        let mut s = TlsStream::new(10);
        assert!(!s.push(&[0u8; 11]));
        assert!(s.overflowed());
        assert!(s.next_message().is_none());
        let mut s = TlsStream::default();
        s.push(b"SSH-2.0-OpenSSH");
        assert_eq!(s.next_message(), Some(Err(TlsError::NotTls)));
        assert!(s.next_message().is_none());
        // An absurd handshake length stops the stream.
        let mut s = TlsStream::default();
        s.push(&record(CONTENT_HANDSHAKE, &[1, 0xff, 0xff, 0xff]));
        assert_eq!(s.next_message(), Some(Err(TlsError::Malformed("handshake length"))));
    }

    #[test]
    fn sslv2_hellos() {
        // CLIENT-HELLO offering SSLv2 with 2 cipher specs, 16-byte challenge.
        let mut body = vec![1, 0, 2, 0, 6, 0, 0, 0, 16];
        body.extend([0x07, 0x00, 0xc0, 0x01, 0x00, 0x80]);
        body.extend([0xaa; 16]);
        let mut rec = vec![0x80 | (body.len() >> 8) as u8, body.len() as u8];
        rec.extend(&body);
        let (h, rest) = parse_sslv2(&rec).unwrap();
        assert!(rest.is_empty());
        assert_eq!(h.version(), TlsVersion::SSL_2_0);
        assert_eq!(h.cipher_specs().collect::<Vec<_>>(), [0x0700c0, 0x010080]);
        let mut s = TlsStream::default();
        s.push(&rec);
        assert!(matches!(s.next_message(), Some(Ok(TlsMessage::Sslv2(Sslv2Hello::Client { .. })))));
        assert!(parse_sslv2(&rec[..5]).is_err());
        assert_eq!(parse_sslv2(b"\x16\x03\x01"), Err(TlsError::NotTls));
    }
}
