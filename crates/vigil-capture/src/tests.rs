//! Reader tests over hand-built pcap, pcapng and gzip files.

use std::io::{Read, Write};

use crate::*;

fn pcap(magic: u32, be: bool, link: u32, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
    let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut f = Vec::new();
    f.extend(w32(magic));
    f.extend(w16(2));
    f.extend(w16(4));
    f.extend(w32(0));
    f.extend(w32(0));
    f.extend(w32(65535));
    f.extend(w32(link));
    for (sec, frac, data, orig) in records {
        f.extend(w32(*sec));
        f.extend(w32(*frac));
        f.extend(w32(data.len() as u32));
        f.extend(w32(*orig));
        f.extend(*data);
    }
    f
}

struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn new(be: bool) -> Ng {
        let mut ng = Ng { be, out: Vec::new() };
        ng.shb();
        ng
    }
    fn w32(&self, v: u32) -> [u8; 4] {
        if self.be { v.to_be_bytes() } else { v.to_le_bytes() }
    }
    fn w16(&self, v: u16) -> [u8; 2] {
        if self.be { v.to_be_bytes() } else { v.to_le_bytes() }
    }
    fn block(&mut self, ty: u32, body: &[u8]) {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = 12 + body.len() as u32;
        let (t, l) = (self.w32(ty), self.w32(total));
        self.out.extend(t);
        self.out.extend(l);
        self.out.extend(body);
        self.out.extend(l);
    }
    fn shb(&mut self) {
        let mut b = self.w32(0x1a2b_3c4d).to_vec();
        b.extend(self.w16(1));
        b.extend(self.w16(0));
        b.extend([0xff; 8]);
        self.block(0x0a0d_0d0a, &b);
    }
    fn idb(&mut self, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let mut b = self.w16(link).to_vec();
        b.extend([0, 0]);
        b.extend(self.w32(0));
        // An if_name option first, to check option walking.
        b.extend(self.w16(2));
        b.extend(self.w16(4));
        b.extend(b"eth0");
        if let Some(r) = tsresol {
            b.extend(self.w16(9));
            b.extend(self.w16(1));
            b.extend([r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            b.extend(self.w16(14));
            b.extend(self.w16(8));
            b.extend(if self.be { o.to_be_bytes() } else { o.to_le_bytes() });
        }
        b.extend([0, 0, 0, 0]);
        self.block(1, &b);
    }
    fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig: u32) {
        let mut b = self.w32(iface).to_vec();
        b.extend(self.w32((ts >> 32) as u32));
        b.extend(self.w32(ts as u32));
        b.extend(self.w32(data.len() as u32));
        b.extend(self.w32(orig));
        b.extend(data);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        // An opaque option (comment).
        b.extend(self.w16(1));
        b.extend(self.w16(2));
        b.extend(b"hi\0\0");
        self.block(6, &b);
    }
    fn spb(&mut self, data: &[u8]) {
        let mut b = self.w32(data.len() as u32).to_vec();
        b.extend(data);
        self.block(3, &b);
    }
}

fn collect<R: Read>(r: &mut CaptureReader<R>) -> Vec<(i64, u32, u32, u32, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        v.push((p.ts_nanos, p.link_type, p.orig_len, p.interface, p.data.to_vec()));
    }
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn pcap_all_four_magics() {
    let recs: [(u32, u32, &[u8], u32); 2] = [(10, 5, b"abc", 3), (11, 999_999, b"de", 60)];
    for (magic, be, nanos) in
        [(0xa1b2_c3d4, false, false), (0xa1b2_c3d4, true, false), (0xa1b2_3c4d, false, true), (0xa1b2_3c4d, true, true)]
    {
        let f = pcap(magic, be, 113, &recs);
        let mut r = CaptureReader::new(&f[..], "t.pcap").unwrap();
        assert_eq!(r.format(), CaptureFormat::Pcap { nanos, big_endian: be, link_type: 113, snaplen: 65535 });
        let got = collect(&mut r);
        let mul = if nanos { 1 } else { 1000 };
        assert_eq!(
            got,
            [
                (10_000_000_000 + 5 * mul, 113, 3, 0, b"abc".to_vec()),
                (11_000_000_000 + 999_999 * mul, 113, 60, 0, b"de".to_vec()),
            ]
        );
        assert!(!r.truncated());
        assert_eq!(r.packets_read(), 2);
        assert_eq!(r.bytes_read(), f.len() as u64);
        // Reading past the end stays at the end.
        assert!(r.next_packet().unwrap().is_none());
    }
}

#[test]
fn pcap_truncated_mid_record_is_a_warning() {
    let f = pcap(0xa1b2_c3d4, false, 1, &[(1, 0, b"first", 5), (2, 0, b"second!", 7)]);
    for cut in [f.len() - 1, f.len() - 7, f.len() - 20] {
        let mut r = CaptureReader::new(&f[..cut], "cut.pcap").unwrap();
        assert_eq!(collect(&mut r).len(), 1, "cut {cut}");
        assert!(r.truncated());
    }
    // Cut exactly at a record boundary: clean.
    let mut r = CaptureReader::new(&f[..24 + 16 + 5], "b.pcap").unwrap();
    assert_eq!(collect(&mut r).len(), 1);
    assert!(!r.truncated());
}

#[test]
fn header_errors_name_the_input() {
    let e = CaptureReader::new(&b""[..], "empty.pcap").unwrap_err();
    assert!(matches!(e, CaptureError::Empty { .. }));
    assert!(e.to_string().contains("empty.pcap"));
    let e = CaptureReader::new(&b"GIF89a..."[..], "pic.gif").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("pic.gif") && msg.contains("47494638"), "{msg}");
    let e = CaptureReader::new(&b"ab"[..], "x").unwrap_err();
    assert!(e.to_string().contains("6162"), "{e}");
    let f = pcap(0xa1b2_c3d4, false, 1, &[]);
    let e = CaptureReader::new(&f[..20], "short.pcap").unwrap_err();
    assert!(matches!(e, CaptureError::TruncatedHeader { format: "pcap", len: 20, .. }), "{e}");
    let e = CaptureReader::open("/nonexistent/vigil/x.pcap").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/vigil/x.pcap"));
    // Gzip of garbage names the inner magic.
    let e = CaptureReader::new(&gzip(b"hello world")[..], "g.gz").unwrap_err();
    assert!(e.to_string().contains("68656c6c") && e.to_string().contains("gzip"), "{e}");
}

#[test]
fn record_over_the_limit_is_an_error() {
    let big = vec![0u8; 5000];
    let f = pcap(0xa1b2_c3d4, false, 1, &[(1, 0, b"ok", 2), (1, 0, &big, 5000)]);
    let mut r = CaptureReader::with_max_record_len(&f[..], "big.pcap", 4096).unwrap();
    assert!(r.next_packet().unwrap().is_some());
    let e = r.next_packet().unwrap_err();
    assert!(matches!(e, CaptureError::RecordTooLarge { len: 5000, max: 4096, offset: 42, .. }), "{e}");
    // The default limit accepts it.
    let mut r = CaptureReader::new(&f[..], "big.pcap").unwrap();
    assert_eq!(collect(&mut r).len(), 2);
}

#[test]
fn pcapng_interfaces_resolutions_and_blocks() {
    for be in [false, true] {
        let mut ng = Ng::new(be);
        ng.idb(1, None, None); // µs
        ng.idb(113, Some(9), Some(100)); // ns, +100 s
        ng.idb(101, Some(0x80 | 10), None); // 1/1024 s
        ng.epb(0, 1_500_000, b"eth", 60);
        ng.epb(1, 2_000_000_123, b"sll", 3);
        ng.epb(2, 3 * 1024 + 512, b"raw", 3);
        ng.block(5, &[0; 12]); // interface statistics: skipped
        ng.spb(b"simple");
        let mut r = CaptureReader::new(&ng.out[..], "t.pcapng").unwrap();
        assert_eq!(r.format(), CaptureFormat::PcapNg);
        let got = collect(&mut r);
        assert_eq!(r.interfaces().len(), 3);
        assert_eq!(r.interfaces()[1].tsoffset, 100);
        assert_eq!(
            got,
            [
                (1_500_000_000, 1, 60, 0, b"eth".to_vec()),
                (102_000_000_123, 113, 3, 1, b"sll".to_vec()),
                (3_500_000_000, 101, 3, 2, b"raw".to_vec()),
                (3_500_000_000, 1, 6, 0, b"simple".to_vec()),
            ],
            "be={be}"
        );
        assert!(!r.truncated());
    }
}

#[test]
fn pcapng_sections_may_change_byte_order() {
    let mut a = Ng::new(false);
    a.idb(1, None, None);
    a.epb(0, 1, b"le", 2);
    let mut b = Ng::new(true);
    b.idb(228, None, None);
    b.epb(0, 2, b"be", 2);
    let f = [a.out, b.out].concat();
    let mut r = CaptureReader::new(&f[..], "two.pcapng").unwrap();
    let got = collect(&mut r);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].1, got[1].1), (1, 228));
    assert_eq!(r.interfaces().len(), 1); // reset by the second section
}

#[test]
fn pcapng_errors_and_truncation() {
    let mut ng = Ng::new(false);
    ng.epb(0, 1, b"x", 1);
    let mut r = CaptureReader::new(&ng.out[..], "noif.pcapng").unwrap();
    let e = r.next_packet().unwrap_err();
    assert!(e.to_string().contains("undefined interface"), "{e}");

    let mut ng = Ng::new(false);
    ng.idb(1, None, None);
    ng.epb(0, 1, b"one", 3);
    ng.epb(0, 2, b"two", 3);
    let cut = &ng.out[..ng.out.len() - 5];
    let mut r = CaptureReader::new(cut, "cut.pcapng").unwrap();
    assert_eq!(collect(&mut r).len(), 1);
    assert!(r.truncated());

    // Block length not a multiple of 4.
    let mut bad = Ng::new(false).out;
    bad.extend([1, 0, 0, 0, 13, 0, 0, 0]);
    let mut r = CaptureReader::new(&bad[..], "bad.pcapng").unwrap();
    assert!(matches!(r.next_packet(), Err(CaptureError::Malformed { .. })));

    // A cut section header.
    let e = CaptureReader::new(&Ng::new(false).out[..20], "h.pcapng").unwrap_err();
    assert!(matches!(e, CaptureError::TruncatedHeader { format: "pcapng", .. }), "{e}");

    // A simple packet block too short to hold its length field (found by fuzzing).
    let mut ng = Ng::new(false);
    ng.idb(1, None, None);
    ng.block(3, &[]);
    let mut r = CaptureReader::new(&ng.out[..], "spb.pcapng").unwrap();
    assert!(matches!(r.next_packet(), Err(CaptureError::Malformed { .. })));

    // A huge unknown block is skipped without buffering it.
    let mut ng = Ng::new(false);
    ng.idb(1, None, None);
    ng.block(0x0bad, &vec![0u8; 200 * 1024]);
    ng.epb(0, 1, b"after", 5);
    let mut r = CaptureReader::new(&ng.out[..], "skip.pcapng").unwrap();
    assert_eq!(collect(&mut r).len(), 1);
}

#[test]
fn gzip_is_detected_and_streamed() {
    let recs: Vec<(u32, u32, Vec<u8>, u32)> =
        (0..5000).map(|i| (i, 0, vec![i as u8; 100 + (i as usize % 50)], 150)).collect();
    let refs: Vec<(u32, u32, &[u8], u32)> = recs.iter().map(|(a, b, d, o)| (*a, *b, &d[..], *o)).collect();
    let f = pcap(0xa1b2_c3d4, false, 1, &refs);
    let gz = gzip(&f);
    let mut r = CaptureReader::new(&gz[..], "t.pcap.gz").unwrap();
    assert!(r.compressed());
    let got = collect(&mut r);
    assert_eq!(got.len(), 5000);
    assert_eq!(got[4999].4, vec![(4999 % 256) as u8; 100 + 4999 % 50]);
    assert!(!r.truncated());
    // Concatenated gzip members read as one stream.
    let half = f.len() / 2;
    let two = [gzip(&f[..half]), gzip(&f[half..])].concat();
    let mut r = CaptureReader::new(&two[..], "two.gz").unwrap();
    assert_eq!(collect(&mut r).len(), 5000);
    // A cut gzip stream: the packets before the cut, then a truncation warning.
    let mut r = CaptureReader::new(&gz[..gz.len() / 2], "cut.gz").unwrap();
    let n = collect(&mut r).len();
    assert!(n > 100 && n < 5000, "{n}");
    assert!(r.truncated());
}

/// A reader that returns one byte at a time, to exercise refills at every offset.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn one_byte_reads_give_the_same_packets() {
    let mut ng = Ng::new(false);
    ng.idb(1, None, None);
    for i in 0..50u8 {
        ng.epb(0, u64::from(i), &vec![i; usize::from(i)], u32::from(i));
    }
    let whole = collect(&mut CaptureReader::new(&ng.out[..], "a").unwrap());
    let trickled = collect(&mut CaptureReader::new(Trickle(&ng.out), "b").unwrap());
    assert_eq!(whole, trickled);
    assert_eq!(whole.len(), 50);
}

#[test]
fn memory_stays_bounded_on_a_large_stream() {
    // 20 000 records of 1 KiB (20 MB) through a generator reader: the buffer never
    // grows past its initial size because no record needs more.
    struct Gen {
        header: Vec<u8>,
        n: u32,
        pos: usize,
        cur: Vec<u8>,
    }
    impl Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if !self.header.is_empty() {
                let k = self.header.len().min(buf.len());
                buf[..k].copy_from_slice(&self.header[..k]);
                self.header.drain(..k);
                return Ok(k);
            }
            if self.pos == self.cur.len() {
                if self.n == 0 {
                    return Ok(0);
                }
                self.n -= 1;
                self.cur.clear();
                self.cur.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0]);
                self.cur.extend([0xab; 1024]);
                self.pos = 0;
            }
            let k = (self.cur.len() - self.pos).min(buf.len());
            buf[..k].copy_from_slice(&self.cur[self.pos..self.pos + k]);
            self.pos += k;
            Ok(k)
        }
    }
    let header = pcap(0xa1b2_c3d4, false, 1, &[]);
    let mut r = CaptureReader::new(Gen { header, n: 20_000, pos: 0, cur: Vec::new() }, "gen").unwrap();
    let mut count = 0;
    while let Some(p) = r.next_packet().unwrap() {
        assert_eq!(p.data.len(), 1024);
        count += 1;
    }
    assert_eq!(count, 20_000);
    assert!(r.buf_capacity_for_tests() <= 64 * 1024);
}

/// Every packet's look-ahead, when given, is exactly the packet that comes next.
fn check_lookahead(file: &[u8]) -> usize {
    let mut r = CaptureReader::new(file, "t").unwrap();
    let mut peeked: Option<(u32, Vec<u8>)> = None;
    let mut seen = 0;
    let mut hits = 0;
    while let Some((p, next)) = r.next_packet_and_peek().unwrap() {
        if let Some((link, data)) = peeked.take() {
            assert_eq!((link, data.as_slice()), (p.link_type, p.data), "packet {seen}");
            hits += 1;
        }
        peeked = next.map(|a| (a.link_type, a.data.to_vec()));
        seen += 1;
    }
    assert!(peeked.is_none(), "a look past the last packet");
    hits
}

#[test]
fn lookahead_is_the_next_packet() {
    let recs: Vec<(u32, u32, Vec<u8>, u32)> =
        (0..200u32).map(|i| (i, 0, vec![i as u8; (i as usize * 37) % 1500], 1500)).collect();
    let refs: Vec<(u32, u32, &[u8], u32)> = recs.iter().map(|(a, b, d, o)| (*a, *b, d.as_slice(), *o)).collect();
    for be in [false, true] {
        let f = pcap(0xa1b2_c3d4, be, 1, &refs);
        // 199 successors; the reader's 64 KiB buffer holds most of them when peeked.
        assert!(check_lookahead(&f) > 150);
    }
    let mut ng = Ng::new(true);
    ng.idb(1, None, None);
    ng.idb(113, None, None);
    for i in 0..200u32 {
        ng.epb(i % 2, u64::from(i), &vec![i as u8; (i as usize * 37) % 1500], 1500);
    }
    assert!(check_lookahead(&ng.out) > 150);
    // Look-ahead is only a hint: a reader fed byte by byte rarely has the next record.
    let mut r = CaptureReader::new(Trickle(&ng.out), "b").unwrap();
    let mut n = 0;
    while r.next_packet_and_peek().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 200);
}
