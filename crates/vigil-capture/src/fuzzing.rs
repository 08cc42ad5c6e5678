//! Entry points shared by the fuzz targets in `fuzz/` and the corpus replay tests. Each
//! takes arbitrary bytes, reads them as a capture with a small record limit, and must not
//! panic or use more memory than the limit allows.

use std::io::Write;

use crate::CaptureReader;

/// Record limit used while fuzzing (keeps each run small).
pub const FUZZ_MAX_RECORD: usize = 4096;

fn drain(data: &[u8]) {
    let Ok(mut r) = CaptureReader::with_max_record_len(data, "fuzz", FUZZ_MAX_RECORD) else {
        return;
    };
    let mut n = 0u32;
    while let Ok(Some(p)) = r.next_packet() {
        assert!(p.data.len() <= FUZZ_MAX_RECORD, "record over the limit");
        n += 1;
        if n > 100_000 {
            break;
        }
    }
    let _ = (r.truncated(), r.format(), r.bytes_read(), r.interfaces().len());
}

/// Target `capture_any`: the raw bytes as a capture file (magic decides).
pub fn capture_any(data: &[u8]) {
    drain(data);
}

/// Target `capture_pcap`: a valid pcap header (byte 0 picks µs/ns and byte order), then
/// the input as records.
pub fn capture_pcap(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let magic: u32 = if sel & 1 == 0 { 0xa1b2_c3d4 } else { 0xa1b2_3c4d };
    let be = sel & 2 != 0;
    let mut file = Vec::with_capacity(24 + rest.len());
    let words: [u32; 4] = [0, 0, 65535, 1];
    if be {
        file.extend(magic.to_be_bytes());
        file.extend([0, 2, 0, 4]);
        for w in words {
            file.extend(w.to_be_bytes());
        }
    } else {
        file.extend(magic.to_le_bytes());
        file.extend([2, 0, 4, 0]);
        for w in words {
            file.extend(w.to_le_bytes());
        }
    }
    file.extend(rest);
    drain(&file);
}

/// Target `capture_pcapng`: a valid little-endian section header, then the input as
/// blocks.
pub fn capture_pcapng(data: &[u8]) {
    let mut file = vec![
        0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 28, 0, 0, 0,
    ];
    file.extend(data);
    drain(&file);
}

/// Target `capture_gzip`: the input gzip-compressed, then read (exercises the
/// decompression path on arbitrary content), and the raw input behind a gzip magic.
pub fn capture_gzip(data: &[u8]) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    if enc.write_all(data).is_ok()
        && let Ok(gz) = enc.finish()
    {
        drain(&gz);
    }
    let mut raw = vec![0x1f, 0x8b];
    raw.extend(data);
    drain(&raw);
}

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// Every target by name, for replay tests.
pub const TARGETS: [(&str, Target); 4] = [
    ("capture_any", capture_any),
    ("capture_pcap", capture_pcap),
    ("capture_pcapng", capture_pcapng),
    ("capture_gzip", capture_gzip),
];
