//! DNS messages over UDP, and over TCP with the 2-byte length prefix.
//!
//! Hand-written: the part detectors need (header, questions, answer records, bounded name
//! decompression) is small, and names are kept inline in a fixed 255-byte buffer
//! ([`DnsName`]) so a parse allocates only the two bounded vectors. Decompression
//! follows at most [`MAX_POINTER_JUMPS`] pointers, so a pointer loop ends with
//! [`DnsError::PointerLoop`] instead of spinning.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Most questions kept from one message (the count in the header may be larger).
pub const MAX_QUESTIONS: usize = 16;
/// Most answer records kept from one message.
pub const MAX_ANSWERS: usize = 64;
/// Most compression pointers followed while reading one name.
pub const MAX_POINTER_JUMPS: usize = 32;
/// Most TXT bytes kept per record (character-strings concatenated).
pub const MAX_TXT_BYTES: usize = 4096;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type NS.
pub const TYPE_NS: u16 = 2;
/// Record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Record type PTR.
pub const TYPE_PTR: u16 = 12;
/// Record type MX.
pub const TYPE_MX: u16 = 15;
/// Record type TXT.
pub const TYPE_TXT: u16 = 16;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Record type NULL (used by iodine).
pub const TYPE_NULL: u16 = 10;

/// Why a DNS message could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than the 12-byte header (or the TCP length prefix).
    #[error("DNS message shorter than its 12-byte header")]
    TooShort,
    /// A name, question or record runs past the end of the message.
    #[error("DNS message truncated inside a {0}")]
    Truncated(&'static str),
    /// A label uses the reserved 0x40/0x80 length prefixes.
    #[error("DNS name uses a reserved label type 0x{0:02x}")]
    BadLabel(u8),
    /// A name longer than 255 bytes in wire form.
    #[error("DNS name longer than 255 bytes")]
    NameTooLong,
    /// More than [`MAX_POINTER_JUMPS`] compression pointers (a loop, or an attack).
    #[error("DNS name compression loops (more than {MAX_POINTER_JUMPS} pointers)")]
    PointerLoop,
}

/// A domain name in uncompressed wire form (length-prefixed labels, no final zero),
/// stored inline: no allocation, at most 255 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DnsName {
    wire: [u8; 255],
    len: u8,
}

impl Default for DnsName {
    fn default() -> Self {
        DnsName { wire: [0; 255], len: 0 }
    }
}

impl DnsName {
    /// The root name (empty).
    pub fn root() -> DnsName {
        DnsName::default()
    }

    /// The wire form (length-prefixed labels, without the terminating zero).
    pub fn wire(&self) -> &[u8] {
        self.wire.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Iterates the labels, left to right.
    pub fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.wire();
        std::iter::from_fn(move || {
            let (&n, after) = rest.split_first()?;
            let label = after.get(..usize::from(n))?;
            rest = after.get(usize::from(n)..).unwrap_or(&[]);
            Some(label)
        })
    }

    /// Number of labels.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// Length in presentation form without escapes (`a.bc` is 4; the root is 0).
    pub fn text_len(&self) -> usize {
        usize::from(self.len).saturating_sub(1)
    }

    /// True for the root name.
    pub fn is_root(&self) -> bool {
        self.len == 0
    }

    fn push_label(&mut self, label: &[u8]) -> Result<(), DnsError> {
        let start = usize::from(self.len);
        let end = start + 1 + label.len();
        let len = u8::try_from(end).map_err(|_| DnsError::NameTooLong)?;
        let n = u8::try_from(label.len()).map_err(|_| DnsError::NameTooLong)?;
        let slot = self.wire.get_mut(start..end).ok_or(DnsError::NameTooLong)?;
        if let Some((first, rest)) = slot.split_first_mut() {
            *first = n;
            rest.copy_from_slice(label);
        }
        self.len = len;
        Ok(())
    }

    /// The lowercase presentation form (`www.example.com`), with bytes outside printable
    /// ASCII and dots inside labels escaped as `\DDD` (RFC 4343 style).
    pub fn to_lowercase_string(&self) -> String {
        let mut s = String::with_capacity(self.text_len());
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                s.push('.');
            }
            for &b in label {
                match b {
                    b'.' | b'\\' => {
                        s.push('\\');
                        s.push(char::from(b));
                    }
                    0x21..=0x7e => s.push(char::from(b.to_ascii_lowercase())),
                    _ => s.push_str(&format!("\\{b:03}")),
                }
            }
        }
        s
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for (i, label) in self.labels().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            for &b in label {
                match b {
                    b'.' | b'\\' => write!(f, "\\{}", char::from(b))?,
                    0x21..=0x7e => write!(f, "{}", char::from(b))?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnsName({self})")
    }
}

/// The 16-bit flags word of the header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DnsFlags(pub u16);

impl DnsFlags {
    /// True for a response.
    pub fn is_response(self) -> bool {
        self.0 & 0x8000 != 0
    }
    /// Opcode (0 query, 4 notify, 5 update).
    pub fn opcode(self) -> u8 {
        ((self.0 >> 11) & 0xf) as u8
    }
    /// Authoritative answer.
    pub fn authoritative(self) -> bool {
        self.0 & 0x0400 != 0
    }
    /// Truncated (TC): the answer did not fit in UDP.
    pub fn truncated(self) -> bool {
        self.0 & 0x0200 != 0
    }
    /// Recursion desired.
    pub fn recursion_desired(self) -> bool {
        self.0 & 0x0100 != 0
    }
    /// Recursion available.
    pub fn recursion_available(self) -> bool {
        self.0 & 0x0080 != 0
    }
    /// Response code (low 4 bits: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED).
    pub fn rcode(self) -> u8 {
        (self.0 & 0xf) as u8
    }
}

impl fmt::Debug for DnsFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DnsFlags({} opcode={} rcode={}{}{})",
            if self.is_response() { "response" } else { "query" },
            self.opcode(),
            self.rcode(),
            if self.truncated() { " TC" } else { "" },
            if self.authoritative() { " AA" } else { "" },
        )
    }
}

/// The fixed 12-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsHeader {
    /// Transaction id.
    pub id: u16,
    /// Flags.
    pub flags: DnsFlags,
    /// Question count.
    pub qdcount: u16,
    /// Answer count.
    pub ancount: u16,
    /// Authority count.
    pub nscount: u16,
    /// Additional count.
    pub arcount: u16,
}

impl DnsHeader {
    /// Parses just the header (cheap: no names).
    pub fn parse(msg: &[u8]) -> Result<DnsHeader, DnsError> {
        let h = msg.first_chunk::<12>().ok_or(DnsError::TooShort)?;
        let w = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        Ok(DnsHeader { id: w(0), flags: DnsFlags(w(2)), qdcount: w(4), ancount: w(6), nscount: w(8), arcount: w(10) })
    }
}

/// One question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
    /// Query name.
    pub name: DnsName,
    /// Query type.
    pub qtype: u16,
    /// Query class (1 = IN; the top bit is the mDNS unicast-response bit).
    pub qclass: u16,
}

/// Record data, decoded for the types detectors use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// IPv6 address.
    Aaaa(Ipv6Addr),
    /// Canonical name.
    Cname(DnsName),
    /// Name server.
    Ns(DnsName),
    /// Pointer.
    Ptr(DnsName),
    /// Mail exchange.
    Mx {
        /// Preference.
        preference: u16,
        /// Exchange host.
        exchange: DnsName,
    },
    /// TXT: the character-strings concatenated (at most [`MAX_TXT_BYTES`] kept).
    Txt {
        /// Number of character-strings.
        strings: usize,
        /// Their bytes, concatenated.
        data: Vec<u8>,
    },
    /// Any other type, or a known type with a bad length: only the length is kept.
    Other {
        /// RDATA length.
        len: u16,
    },
}

/// One resource record of the answer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    /// Owner name.
    pub name: DnsName,
    /// Type.
    pub rtype: u16,
    /// Class.
    pub class: u16,
    /// Time to live.
    pub ttl: u32,
    /// Decoded data.
    pub data: RData,
}

/// A parsed DNS message: header, questions and answers (authority and additional
/// records are counted in the header but not decoded).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsMessage {
    /// Header.
    pub header: DnsHeader,
    /// Up to [`MAX_QUESTIONS`] questions.
    pub questions: Vec<DnsQuestion>,
    /// Up to [`MAX_ANSWERS`] answer records.
    pub answers: Vec<DnsRecord>,
    /// The message ended (or failed) before every counted question and answer was read;
    /// what was read is kept.
    pub incomplete: bool,
}

impl DnsMessage {
    /// Transaction id.
    pub fn id(&self) -> u16 {
        self.header.id
    }
    /// True for a response.
    pub fn is_response(&self) -> bool {
        self.header.flags.is_response()
    }
    /// Response code.
    pub fn rcode(&self) -> u8 {
        self.header.flags.rcode()
    }
    /// The first question, if any (what nearly every message has).
    pub fn question(&self) -> Option<&DnsQuestion> {
        self.questions.first()
    }
}

/// Reads a (possibly compressed) name at `pos`; returns the name and the position just
/// after it in the original location.
pub fn read_name(msg: &[u8], mut pos: usize) -> Result<(DnsName, usize), DnsError> {
    let mut name = DnsName::default();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let &b = msg.get(pos).ok_or(DnsError::Truncated("name"))?;
        match b & 0xc0 {
            0x00 if b == 0 => {
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let n = usize::from(b);
                let label = msg.get(pos + 1..pos + 1 + n).ok_or(DnsError::Truncated("name"))?;
                name.push_label(label)?;
                pos += 1 + n;
            }
            0xc0 => {
                let &lo = msg.get(pos + 1).ok_or(DnsError::Truncated("name"))?;
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::PointerLoop);
                }
                end.get_or_insert(pos + 2);
                pos = (usize::from(b & 0x3f) << 8) | usize::from(lo);
            }
            _ => return Err(DnsError::BadLabel(b & 0xc0)),
        }
    }
}

fn u16_at(msg: &[u8], pos: usize, what: &'static str) -> Result<u16, DnsError> {
    msg.get(pos..pos + 2)
        .and_then(|s| s.first_chunk::<2>())
        .map(|b| u16::from_be_bytes(*b))
        .ok_or(DnsError::Truncated(what))
}

fn parse_question(msg: &[u8], pos: usize) -> Result<(DnsQuestion, usize), DnsError> {
    let (name, pos) = read_name(msg, pos)?;
    let qtype = u16_at(msg, pos, "question")?;
    let qclass = u16_at(msg, pos + 2, "question")?;
    Ok((DnsQuestion { name, qtype, qclass }, pos + 4))
}

fn parse_record(msg: &[u8], pos: usize) -> Result<(DnsRecord, usize), DnsError> {
    let (name, pos) = read_name(msg, pos)?;
    let fixed = msg.get(pos..pos + 10).and_then(|s| s.first_chunk::<10>()).ok_or(DnsError::Truncated("record"))?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]);
    let start = pos + 10;
    let end = start + usize::from(rdlen);
    let rdata = msg.get(start..end).ok_or(DnsError::Truncated("record data"))?;
    let other = RData::Other { len: rdlen };
    let data = match rtype {
        TYPE_A => rdata.first_chunk::<4>().filter(|_| rdata.len() == 4).map_or(other, |b| RData::A(Ipv4Addr::from(*b))),
        TYPE_AAAA => {
            rdata.first_chunk::<16>().filter(|_| rdata.len() == 16).map_or(other, |b| RData::Aaaa(Ipv6Addr::from(*b)))
        }
        TYPE_CNAME | TYPE_NS | TYPE_PTR => match read_name(msg, start) {
            Ok((n, _)) if rtype == TYPE_CNAME => RData::Cname(n),
            Ok((n, _)) if rtype == TYPE_NS => RData::Ns(n),
            Ok((n, _)) => RData::Ptr(n),
            Err(_) => other,
        },
        TYPE_MX => match (rdata.first_chunk::<2>(), read_name(msg, start + 2)) {
            (Some(p), Ok((exchange, _))) => RData::Mx { preference: u16::from_be_bytes(*p), exchange },
            _ => other,
        },
        TYPE_TXT => {
            let mut data = Vec::with_capacity(rdata.len().min(MAX_TXT_BYTES));
            let mut strings = 0;
            let mut rest = rdata;
            while let Some((&n, after)) = rest.split_first() {
                let s = after.get(..usize::from(n)).unwrap_or(after);
                let room = MAX_TXT_BYTES.saturating_sub(data.len());
                data.extend_from_slice(s.get(..room.min(s.len())).unwrap_or(&[]));
                strings += 1;
                rest = after.get(usize::from(n)..).unwrap_or(&[]);
            }
            RData::Txt { strings, data }
        }
        _ => other,
    };
    Ok((DnsRecord { name, rtype, class, ttl, data }, end))
}

/// Parses a DNS message as carried by UDP (no length prefix).
///
/// Errors only when even the header is missing; a message that ends early or has a bad
/// name keeps what was read and sets [`DnsMessage::incomplete`].
pub fn parse(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    let header = DnsHeader::parse(msg)?;
    let mut out = DnsMessage {
        header,
        questions: Vec::with_capacity(usize::from(header.qdcount).min(MAX_QUESTIONS).min(4)),
        answers: Vec::new(),
        incomplete: false,
    };
    let mut pos = 12;
    for _ in 0..header.qdcount {
        match parse_question(msg, pos) {
            Ok((q, next)) => {
                if out.questions.len() < MAX_QUESTIONS {
                    out.questions.push(q);
                }
                pos = next;
            }
            Err(_) => {
                out.incomplete = true;
                return Ok(out);
            }
        }
    }
    for _ in 0..header.ancount {
        if out.answers.len() >= MAX_ANSWERS {
            out.incomplete = true;
            break;
        }
        match parse_record(msg, pos) {
            Ok((r, next)) => {
                out.answers.push(r);
                pos = next;
            }
            Err(_) => {
                out.incomplete = true;
                break;
            }
        }
    }
    Ok(out)
}

/// Parses the first DNS message of a TCP segment (2-byte length prefix, RFC 1035 §4.2.2).
/// When the segment holds less than the prefix announces, what is there is parsed and
/// the result is marked incomplete.
pub fn parse_tcp(segment: &[u8]) -> Result<DnsMessage, DnsError> {
    let (len, rest) = segment.split_first_chunk::<2>().ok_or(DnsError::TooShort)?;
    let len = usize::from(u16::from_be_bytes(*len));
    match rest.get(..len) {
        Some(msg) => parse(msg),
        None => parse(rest).map(|mut m| {
            m.incomplete = true;
            m
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_wire(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for l in name.split('.').filter(|l| !l.is_empty()) {
            v.push(l.len() as u8);
            v.extend_from_slice(l.as_bytes());
        }
        v.push(0);
        v
    }

    /// A response for `www.example.com` A with a compressed CNAME, an A, an AAAA and a TXT.
    fn response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x83, 0, 1, 0, 4, 0, 0, 0, 0];
        m.extend(name_wire("www.example.com"));
        m.extend([0, 1, 0, 1]);
        // CNAME: www.example.com -> alias.example.com (compressed: "alias" + ptr to 16)
        m.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 8]);
        m.extend([5, b'a', b'l', b'i', b'a', b's', 0xc0, 16]);
        // A: alias -> 192.0.2.1 (owner = pointer to the CNAME rdata at offset 45)
        m.extend([0xc0, 45, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        // AAAA
        m.extend([0xc0, 45, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        m.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        // TXT with two strings
        m.extend([0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 7, 2, b'h', b'i', 3, b'y', b'o', b'u']);
        m
    }

    #[test]
    fn parses_header_question_and_answers() {
        let m = parse(&response()).unwrap();
        assert_eq!(m.id(), 0x1234);
        assert!(m.is_response());
        assert_eq!(m.rcode(), 3);
        assert!(m.header.flags.recursion_desired());
        let q = m.question().unwrap();
        assert_eq!(q.name.to_string(), "www.example.com");
        assert_eq!(q.name.label_count(), 3);
        assert_eq!(q.name.text_len(), 15);
        assert_eq!(q.qtype, TYPE_A);
        assert_eq!(m.answers.len(), 4);
        assert_eq!(m.answers[0].name.to_string(), "www.example.com");
        match &m.answers[0].data {
            RData::Cname(n) => assert_eq!(n.to_string(), "alias.example.com"),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.answers[1].name.to_string(), "alias.example.com");
        assert_eq!(m.answers[1].data, RData::A(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(m.answers[2].data, RData::Aaaa("2001:db8::1".parse().unwrap()));
        assert_eq!(m.answers[3].data, RData::Txt { strings: 2, data: b"hiyou".to_vec() });
        assert!(!m.incomplete);
    }

    #[test]
    fn tcp_prefix_and_truncation() {
        let r = response();
        let mut t = (r.len() as u16).to_be_bytes().to_vec();
        t.extend(&r);
        assert_eq!(parse_tcp(&t).unwrap(), parse(&r).unwrap());
        let cut = parse_tcp(&t[..40]).unwrap();
        assert!(cut.incomplete);
        assert_eq!(cut.questions.len(), 1);
        assert_eq!(parse_tcp(&[0]), Err(DnsError::TooShort));
        let short = parse(&r[..r.len() - 3]).unwrap();
        assert!(short.incomplete);
        assert_eq!(short.answers.len(), 3);
    }

    #[test]
    fn pointer_loops_and_bad_labels_are_bounded() {
        // A name that points to itself.
        let m = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert_eq!(read_name(&m, 12), Err(DnsError::PointerLoop));
        let p = parse(&m).unwrap();
        assert!(p.incomplete);
        assert!(p.questions.is_empty());
        assert_eq!(read_name(&[0x40], 0), Err(DnsError::BadLabel(0x40)));
        assert_eq!(read_name(&[3, b'a'], 0), Err(DnsError::Truncated("name")));
        // 5 labels of 63 bytes = 320 bytes: too long.
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend([b'a'; 63]);
        }
        long.push(0);
        assert_eq!(read_name(&long, 0), Err(DnsError::NameTooLong));
        // 3 labels of 63 + one of 61 = 255 bytes exactly in wire form with the zero.
        let mut max = Vec::new();
        for _ in 0..3 {
            max.push(63);
            max.extend([b'b'; 63]);
        }
        max.push(61);
        max.extend([b'c'; 61]);
        max.push(0);
        let (n, end) = read_name(&max, 0).unwrap();
        assert_eq!(n.wire().len(), 254);
        assert_eq!(end, 255);
    }

    #[test]
    fn display_escapes_and_lowercases() {
        let m = [3, b'A', b'.', 0xff, 2, b'c', b'D', 0];
        let (n, _) = read_name(&m, 0).unwrap();
        assert_eq!(n.to_string(), "A\\.\\255.cD");
        assert_eq!(n.to_lowercase_string(), "a\\.\\255.cd");
        assert_eq!(DnsName::root().to_string(), ".");
    }
}
