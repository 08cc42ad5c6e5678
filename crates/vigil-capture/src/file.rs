//! Streaming reader for pcap, pcapng and their gzip-compressed forms.
//!
//! Our own reader rather than `pcap-parser`: its pcapng blocks carry a `Vec` of options
//! per Enhanced Packet Block (an allocation per packet), and its streaming API needs the
//! same refill loop we write here anyway. This one keeps one buffer that grows only to the
//! largest record allowed ([`DEFAULT_MAX_RECORD_LEN`] by default), hands out packets as
//! slices of it, and so reads a file of any size in constant memory.

use std::fs::File;
use std::io::{self, Chain, Cursor, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::CaptureError;

/// Default largest captured length accepted for one packet (256 KiB); larger means a
/// corrupt file (the largest real snap length is 256 KiB).
pub const DEFAULT_MAX_RECORD_LEN: usize = 256 * 1024;
/// Most pcapng interfaces per section.
pub const MAX_INTERFACES: usize = 1024;
/// Largest non-packet pcapng block buffered (bigger ones are skipped unread).
const MAX_META_BLOCK: usize = 64 * 1024;
const INITIAL_BUF: usize = 64 * 1024;
const MIN_READ: usize = 16 * 1024;

const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const BOM: u32 = 0x1a2b_3c4d;

/// One packet as stored in the file, borrowed from the reader's buffer (valid until the
/// next call to [`CaptureReader::next_packet`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPacket<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_nanos: i64,
    /// Link type (`LINKTYPE_*`) of the interface the packet came from.
    pub link_type: u32,
    /// Length of the packet on the wire (may exceed `data.len()` when the snap length cut it).
    pub orig_len: u32,
    /// pcapng interface id (0 for pcap).
    pub interface: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// A look at the packet after the current one ([`CaptureReader::next_packet_and_peek`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ahead<'a> {
    /// Link type of the packet.
    pub link_type: u32,
    /// Its captured bytes.
    pub data: &'a [u8],
}

/// The container format of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic pcap.
    Pcap {
        /// Nanosecond timestamps (magic `a1b23c4d`).
        nanos: bool,
        /// The file was written big-endian.
        big_endian: bool,
        /// Link type of every packet.
        link_type: u32,
        /// Snap length from the header.
        snaplen: u32,
    },
    /// pcapng; see [`CaptureReader::interfaces`].
    PcapNg,
}

/// A pcapng interface (from an Interface Description Block).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Link type.
    pub link_type: u32,
    /// Snap length (0 = unlimited).
    pub snaplen: u32,
    /// `if_tsresol` as written (default 6: microseconds; high bit set: power of two).
    pub tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp.
    pub tsoffset: i64,
}

impl Interface {
    fn ts_nanos(&self, ts: u64) -> i64 {
        let ts = i128::from(ts);
        let n = u32::from(self.tsresol & 0x7f);
        let ns = if self.tsresol & 0x80 != 0 {
            (ts * 1_000_000_000).checked_shr(n).unwrap_or(0)
        } else if n <= 9 {
            ts * 10i128.pow(9 - n)
        } else {
            10i128.checked_pow(n - 9).map_or(0, |d| ts / d)
        };
        let ns = ns + i128::from(self.tsoffset) * 1_000_000_000;
        i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
    }
}

enum Input<R> {
    Plain(R),
    Gzip(Box<MultiGzDecoder<Chain<Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(buf),
            Input::Gzip(r) => r.read(buf),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pcap { nanos: bool, be: bool, rec_hdr: usize },
    PcapNg { be: bool },
}

/// Reads packets from a pcap or pcapng stream (optionally gzip-compressed, detected by
/// its magic), in constant memory.
///
/// ```no_run
/// # fn main() -> Result<(), vigil_capture::CaptureError> {
/// let mut r = vigil_capture::CaptureReader::open("trace.pcap.gz")?;
/// while let Some(pkt) = r.next_packet()? {
///     let _ = (pkt.ts_nanos, pkt.link_type, pkt.data.len());
/// }
/// if r.truncated() {
///     eprintln!("warning: {} ends in the middle of a packet", r.name());
/// }
/// # Ok(()) }
/// ```
pub struct CaptureReader<R> {
    input: Input<R>,
    name: String,
    compressed: bool,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of the previously returned packet's record, consumed at the next call.
    pending: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    eof: bool,
    truncated: bool,
    kind: Kind,
    format: CaptureFormat,
    interfaces: Vec<Interface>,
    last_ts: i64,
    packets: u64,
    max_record: usize,
}

impl<R> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("compressed", &self.compressed)
            .field("packets", &self.packets)
            .field("offset", &self.offset)
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl CaptureReader<File> {
    /// Opens a capture file; errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| CaptureError::Open { path: path.to_path_buf(), source })?;
        CaptureReader::new(file, path.display().to_string())
    }
}

#[inline]
fn u32_of(b: &[u8], at: usize, be: bool) -> u32 {
    let w = b.get(at..at + 4).and_then(|s| s.first_chunk::<4>()).copied().unwrap_or_default();
    if be { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) }
}

#[inline]
fn u16_of(b: &[u8], at: usize, be: bool) -> u16 {
    let w = b.get(at..at + 2).and_then(|s| s.first_chunk::<2>()).copied().unwrap_or_default();
    if be { u16::from_be_bytes(w) } else { u16::from_le_bytes(w) }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the record loop found, as offsets (so the borrow of `buf` is taken once, after).
struct Found {
    data_at: usize,
    caplen: usize,
    record_len: usize,
    ts_nanos: i64,
    link_type: u32,
    orig_len: u32,
    interface: u32,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `reader`; `name` (usually the path) appears in errors.
    pub fn new(reader: R, name: impl Into<String>) -> Result<Self, CaptureError> {
        Self::with_max_record_len(reader, name, DEFAULT_MAX_RECORD_LEN)
    }

    /// Like [`CaptureReader::new`] with another per-packet size limit.
    pub fn with_max_record_len(
        mut reader: R,
        name: impl Into<String>,
        max_record: usize,
    ) -> Result<Self, CaptureError> {
        let name = name.into();
        // Peek at the magic to choose between plain and gzip input.
        let mut magic = [0u8; 4];
        let mut n = 0;
        while n < magic.len() {
            match reader.read(magic.get_mut(n..).unwrap_or(&mut [])) {
                Ok(0) => break,
                Ok(got) => n += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Read { name, offset: n as u64, source });
                }
            }
        }
        let peeked = magic.get(..n).unwrap_or(&[]);
        let mut buf = vec![0; INITIAL_BUF];
        let (input, compressed, end) = if peeked.starts_with(&[0x1f, 0x8b]) {
            let chained = Cursor::new(peeked.to_vec()).chain(reader);
            (Input::Gzip(Box::new(MultiGzDecoder::new(chained))), true, 0)
        } else {
            if let Some(dst) = buf.get_mut(..n) {
                dst.copy_from_slice(peeked);
            }
            (Input::Plain(reader), false, n)
        };
        let mut r = CaptureReader {
            input,
            name,
            compressed,
            buf,
            start: 0,
            end,
            pending: 0,
            offset: 0,
            eof: false,
            truncated: false,
            kind: Kind::PcapNg { be: false },
            format: CaptureFormat::PcapNg,
            interfaces: Vec::new(),
            last_ts: 0,
            packets: 0,
            max_record,
        };
        r.fill(4)?;
        r.read_file_header()?;
        Ok(r)
    }

    fn avail(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Makes at least `n` bytes available from `start`; false at end of input.
    fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            // Move the unread bytes to the front when the record would not fit after them
            // or little room is left; grow only for a record larger than the buffer.
            let cramped = self.start + n > self.buf.len() || self.buf.len() - self.end < MIN_READ;
            if cramped && self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if n > self.buf.len() {
                self.buf.resize(n.next_power_of_two(), 0);
            }
            let Some(space) = self.buf.get_mut(self.end..).filter(|s| !s.is_empty()) else {
                return Ok(false);
            };
            match self.input.read(space) {
                Ok(0) => self.eof = true,
                Ok(got) => self.end += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.compressed && e.kind() == io::ErrorKind::UnexpectedEof => {
                    // A gzip stream cut short: the file was truncated.
                    self.eof = true;
                    self.truncated = true;
                }
                Err(source) => {
                    return Err(CaptureError::Read {
                        name: self.name.clone(),
                        offset: self.offset + (self.end - self.start) as u64,
                        source,
                    });
                }
            }
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// Skips `n` bytes without buffering them; false when the input ends first.
    fn skip(&mut self, mut n: u64) -> Result<bool, CaptureError> {
        loop {
            let have = (self.end - self.start) as u64;
            let take = have.min(n);
            self.consume(usize::try_from(take).unwrap_or(usize::MAX));
            n -= take;
            if n == 0 {
                return Ok(true);
            }
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }

    fn malformed(&self, reason: &'static str) -> CaptureError {
        CaptureError::Malformed { name: self.name.clone(), offset: self.offset, reason }
    }

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        let head = self.avail();
        let magic = head.get(..4).map(|m| [m[0], m[1], m[2], m[3]]);
        let Some(magic) = magic else {
            return Err(if head.is_empty() {
                CaptureError::Empty { name: self.name.clone(), compressed: self.compressed }
            } else {
                CaptureError::UnknownFormat { name: self.name.clone(), magic: hex(head), compressed: self.compressed }
            });
        };
        match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                self.kind = Kind::PcapNg { be: false };
                self.format = CaptureFormat::PcapNg;
                // The SHB is read as the first block by `next_pcapng`; check it is whole
                // here so a cut header is reported as such.
                if !self.fill(28)? {
                    return Err(self.truncated_header("pcapng"));
                }
                let bom = self.avail().get(8..12).map(|b| [b[0], b[1], b[2], b[3]]);
                if bom != Some(BOM.to_le_bytes()) && bom != Some(BOM.to_be_bytes()) {
                    return Err(self.malformed("pcapng section header byte-order magic"));
                }
                Ok(())
            }
            _ => {
                let (nanos, be, rec_hdr) = match magic {
                    [0xd4, 0xc3, 0xb2, 0xa1] => (false, false, 16),
                    [0xa1, 0xb2, 0xc3, 0xd4] => (false, true, 16),
                    [0x4d, 0x3c, 0xb2, 0xa1] => (true, false, 16),
                    [0xa1, 0xb2, 0x3c, 0x4d] => (true, true, 16),
                    [0x34, 0xcd, 0xb2, 0xa1] => (false, false, 24), // Kuznetzov's modified pcap
                    [0xa1, 0xb2, 0xcd, 0x34] => (false, true, 24),
                    _ => {
                        return Err(CaptureError::UnknownFormat {
                            name: self.name.clone(),
                            magic: hex(&magic),
                            compressed: self.compressed,
                        });
                    }
                };
                if !self.fill(24)? {
                    return Err(self.truncated_header("pcap"));
                }
                let h = self.avail();
                let major = u16_of(h, 4, be);
                let snaplen = u32_of(h, 16, be);
                let link_type = u32_of(h, 20, be) & 0x03ff_ffff;
                if major != 2 {
                    return Err(self.malformed("pcap header: version is not 2.x"));
                }
                self.kind = Kind::Pcap { nanos, be, rec_hdr };
                self.format = CaptureFormat::Pcap { nanos, big_endian: be, link_type, snaplen };
                self.consume(24);
                Ok(())
            }
        }
    }

    fn truncated_header(&self, format: &'static str) -> CaptureError {
        CaptureError::TruncatedHeader { name: self.name.clone(), format, len: self.end - self.start }
    }

    /// The next packet, `Ok(None)` at the end of the file. A file that ends inside a
    /// record also gives `Ok(None)`, with [`CaptureReader::truncated`] set: report it as a
    /// warning. Errors are for corrupt structure (impossible lengths) and I/O failures;
    /// reading should stop after one.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        Ok(self.next_packet_and_peek()?.map(|(p, _)| p))
    }

    /// Like [`CaptureReader::next_packet`], and also a look at the packet after it when
    /// that record is already in the buffer (a pcap record, or a pcapng enhanced packet
    /// block), so the caller can warm its caches for it while it works on this one. The
    /// look is a hint, checked for bounds only: the next call still reads and validates
    /// that record in its turn.
    pub fn next_packet_and_peek(&mut self) -> Result<Option<(RawPacket<'_>, Option<Ahead<'_>>)>, CaptureError> {
        let pending = std::mem::take(&mut self.pending);
        self.consume(pending);
        let found = match self.kind {
            Kind::Pcap { nanos, be, rec_hdr } => self.next_pcap(nanos, be, rec_hdr)?,
            Kind::PcapNg { .. } => self.next_pcapng()?,
        };
        let Some(f) = found else {
            return Ok(None);
        };
        self.pending = f.record_len;
        self.packets += 1;
        self.last_ts = f.ts_nanos;
        let from = self.start + f.data_at;
        let data = self.buf.get(from..from + f.caplen).unwrap_or(&[]);
        let rest = self.buf.get(self.start + f.record_len..self.end).unwrap_or(&[]);
        let next = match self.kind {
            Kind::Pcap { be, rec_hdr, .. } => {
                let caplen = rest.get(..rec_hdr).map(|h| u32_of(h, 8, be) as usize);
                caplen
                    .and_then(|n| rest.get(rec_hdr..rec_hdr.saturating_add(n)))
                    .map(|data| Ahead { link_type: f.link_type, data })
            }
            Kind::PcapNg { be } if rest.len() >= 28 && u32_of(rest, 0, be) == PCAPNG_EPB => {
                let caplen = u32_of(rest, 20, be) as usize;
                let link = self.interfaces.get(u32_of(rest, 8, be) as usize).map(|i| i.link_type);
                link.zip(rest.get(28..28usize.saturating_add(caplen)))
                    .map(|(link_type, data)| Ahead { link_type, data })
            }
            Kind::PcapNg { .. } => None,
        };
        let p = RawPacket {
            ts_nanos: f.ts_nanos,
            link_type: f.link_type,
            orig_len: f.orig_len,
            interface: f.interface,
            data,
        };
        Ok(Some((p, next)))
    }

    /// Marks a cut record: bytes were there but not enough.
    fn cut(&mut self) -> Option<Found> {
        if self.end > self.start {
            self.truncated = true;
        }
        None
    }

    fn next_pcap(&mut self, nanos: bool, be: bool, rec_hdr: usize) -> Result<Option<Found>, CaptureError> {
        if !self.fill(rec_hdr)? {
            return Ok(self.cut());
        }
        let h = self.avail();
        let sec = u32_of(h, 0, be);
        let frac = u32_of(h, 4, be);
        let caplen = u32_of(h, 8, be);
        let orig_len = u32_of(h, 12, be);
        let caplen_usize = usize::try_from(caplen).unwrap_or(usize::MAX);
        if caplen_usize > self.max_record {
            return Err(CaptureError::RecordTooLarge {
                name: self.name.clone(),
                offset: self.offset,
                len: u64::from(caplen),
                max: self.max_record,
            });
        }
        if !self.fill(rec_hdr + caplen_usize)? {
            return Ok(self.cut());
        }
        let frac_ns = if nanos { i64::from(frac) } else { i64::from(frac) * 1000 };
        let link_type = match self.format {
            CaptureFormat::Pcap { link_type, .. } => link_type,
            CaptureFormat::PcapNg => 0,
        };
        Ok(Some(Found {
            data_at: rec_hdr,
            caplen: caplen_usize,
            record_len: rec_hdr + caplen_usize,
            ts_nanos: i64::from(sec) * 1_000_000_000 + frac_ns,
            link_type,
            orig_len,
            interface: 0,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Found>, CaptureError> {
        loop {
            if !self.fill(8)? {
                return Ok(self.cut());
            }
            let mut be = match self.kind {
                Kind::PcapNg { be } => be,
                Kind::Pcap { .. } => false,
            };
            let block_type = u32_of(self.avail(), 0, be);
            if block_type == PCAPNG_SHB {
                if !self.fill(12)? {
                    return Ok(self.cut());
                }
                be = match u32_of(self.avail(), 8, false) {
                    BOM => false,
                    v if v.swap_bytes() == BOM => true,
                    _ => return Err(self.malformed("pcapng section header byte-order magic")),
                };
                self.kind = Kind::PcapNg { be };
                self.interfaces.clear();
            }
            let total = usize::try_from(u32_of(self.avail(), 4, be)).unwrap_or(usize::MAX);
            if total < 12 || !total.is_multiple_of(4) {
                return Err(self.malformed("pcapng block length (below 12 or not a multiple of 4)"));
            }
            let is_packet = matches!(block_type, PCAPNG_EPB | PCAPNG_SPB | PCAPNG_PB);
            let limit = if is_packet { self.max_record.saturating_add(MAX_META_BLOCK) } else { MAX_META_BLOCK };
            if total > limit {
                if is_packet {
                    return Err(CaptureError::RecordTooLarge {
                        name: self.name.clone(),
                        offset: self.offset,
                        len: total as u64,
                        max: self.max_record,
                    });
                }
                if matches!(block_type, PCAPNG_SHB | PCAPNG_IDB) {
                    return Err(self.malformed("pcapng header block larger than 64 KiB"));
                }
                if !self.skip(total as u64)? {
                    self.truncated = true;
                    return Ok(None);
                }
                continue;
            }
            if !self.fill(total)? {
                return Ok(self.cut());
            }
            match block_type {
                PCAPNG_SHB if u16_of(self.avail(), 12, be) != 1 => {
                    return Err(self.malformed("pcapng section header: major version is not 1"));
                }
                PCAPNG_IDB => self.read_idb(be, total)?,
                PCAPNG_EPB | PCAPNG_PB => {
                    let b = self.avail();
                    let (iface, caplen, orig_len) = if block_type == PCAPNG_EPB {
                        (u32_of(b, 8, be), u32_of(b, 20, be), u32_of(b, 24, be))
                    } else {
                        (u32::from(u16_of(b, 8, be)), u32_of(b, 20, be), u32_of(b, 24, be))
                    };
                    let ts = (u64::from(u32_of(b, 12, be)) << 32) | u64::from(u32_of(b, 16, be));
                    let caplen = usize::try_from(caplen).unwrap_or(usize::MAX);
                    if caplen > self.max_record {
                        return Err(CaptureError::RecordTooLarge {
                            name: self.name.clone(),
                            offset: self.offset,
                            len: caplen as u64,
                            max: self.max_record,
                        });
                    }
                    if 28 + caplen + 4 > total {
                        return Err(self.malformed("packet block: captured length beyond the block"));
                    }
                    let Some(ifc) = usize::try_from(iface).ok().and_then(|i| self.interfaces.get(i)) else {
                        return Err(self.malformed("packet block: undefined interface id"));
                    };
                    return Ok(Some(Found {
                        data_at: 28,
                        caplen,
                        record_len: total,
                        ts_nanos: ifc.ts_nanos(ts),
                        link_type: ifc.link_type,
                        orig_len,
                        interface: iface,
                    }));
                }
                PCAPNG_SPB => {
                    let Some(ifc) = self.interfaces.first() else {
                        return Err(self.malformed("simple packet block before any interface"));
                    };
                    if total < 16 {
                        return Err(self.malformed("simple packet block shorter than 16 bytes"));
                    }
                    let orig_len = u32_of(self.avail(), 8, be);
                    let mut caplen = (total - 16).min(usize::try_from(orig_len).unwrap_or(usize::MAX));
                    if ifc.snaplen != 0 {
                        caplen = caplen.min(usize::try_from(ifc.snaplen).unwrap_or(usize::MAX));
                    }
                    return Ok(Some(Found {
                        data_at: 12,
                        caplen,
                        record_len: total,
                        // No timestamp in an SPB: keep the previous packet's time.
                        ts_nanos: self.last_ts,
                        link_type: ifc.link_type,
                        orig_len,
                        interface: 0,
                    }));
                }
                _ => {}
            }
            self.consume(total);
        }
    }

    fn read_idb(&mut self, be: bool, total: usize) -> Result<(), CaptureError> {
        if total < 20 {
            return Err(self.malformed("interface description block shorter than 20 bytes"));
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(CaptureError::TooManyInterfaces { name: self.name.clone(), max: MAX_INTERFACES });
        }
        let b = self.avail();
        let mut ifc =
            Interface { link_type: u32::from(u16_of(b, 8, be)), snaplen: u32_of(b, 12, be), tsresol: 6, tsoffset: 0 };
        let mut opts = b.get(16..total - 4).unwrap_or(&[]);
        while let Some(hdr) = opts.first_chunk::<4>() {
            let code = u16_of(hdr, 0, be);
            let len = usize::from(u16_of(hdr, 2, be));
            let Some(value) = opts.get(4..4 + len) else {
                break; // options cut: ignore the rest, the block itself is fine
            };
            match (code, value) {
                (0, _) => break,
                (9, [r]) => ifc.tsresol = *r,
                (14, v) if v.len() == 8 => {
                    let w = v.first_chunk::<8>().copied().unwrap_or_default();
                    ifc.tsoffset = if be { i64::from_be_bytes(w) } else { i64::from_le_bytes(w) };
                }
                _ => {}
            }
            opts = opts.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
        }
        self.interfaces.push(ifc);
        Ok(())
    }

    /// True when the input ended inside a record (or the gzip stream was cut): the packets
    /// read so far are good, the rest is lost. A warning, not an error.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// True when the input was gzip-compressed.
    pub fn compressed(&self) -> bool {
        self.compressed
    }

    /// The name given at creation (the path for [`CaptureReader::open`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pcapng interfaces of the current section (empty for pcap).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Packets returned so far.
    pub fn packets_read(&self) -> u64 {
        self.packets
    }

    #[cfg(test)]
    pub(crate) fn buf_capacity_for_tests(&self) -> usize {
        self.buf.len()
    }

    /// Bytes of the (decompressed) stream consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.offset + self.pending as u64
    }
}
