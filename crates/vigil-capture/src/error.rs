//! Errors of the capture readers.

use std::io;
use std::path::PathBuf;

/// Why a capture could not be read. Every variant names the input (its path, or the name
/// given to [`crate::CaptureReader::new`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened.
    #[error("cannot open capture file {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading (or decompressing) failed.
    #[error("{name}: read error at byte {offset}: {source}")]
    Read {
        /// Input name.
        name: String,
        /// Offset in the (decompressed) stream.
        offset: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The input is empty.
    #[error("{name}: the file is empty{}; expected a pcap or pcapng capture", if *compressed { " after gzip decompression" } else { "" })]
    Empty {
        /// Input name.
        name: String,
        /// It was gzip-compressed.
        compressed: bool,
    },
    /// The magic number is not pcap, pcapng or gzip.
    #[error("{name}: not a capture file: unknown magic {magic}{}; vigil reads pcap (µs or ns, either byte order), pcapng, and gzip-compressed forms of both", if *compressed { " (after gzip decompression)" } else { "" })]
    UnknownFormat {
        /// Input name.
        name: String,
        /// The first bytes, in hex.
        magic: String,
        /// It was gzip-compressed.
        compressed: bool,
    },
    /// The file ends inside its file header.
    #[error("{name}: the file ends inside the {format} file header ({len} bytes present); the file is truncated")]
    TruncatedHeader {
        /// Input name.
        name: String,
        /// `"pcap"` or `"pcapng"`.
        format: &'static str,
        /// Bytes present.
        len: usize,
    },
    /// A record claims more bytes than the per-packet limit.
    #[error(
        "{name}: record at byte {offset} claims {len} bytes, over the {max}-byte limit; the file is corrupt (or raise the limit)"
    )]
    RecordTooLarge {
        /// Input name.
        name: String,
        /// Offset of the record in the (decompressed) stream.
        offset: u64,
        /// Claimed length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A structure is inconsistent.
    #[error("{name}: malformed capture at byte {offset}: {reason}")]
    Malformed {
        /// Input name.
        name: String,
        /// Offset in the (decompressed) stream.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A pcapng section declares too many interfaces.
    #[error("{name}: more than {max} pcapng interfaces in one section; the file is corrupt")]
    TooManyInterfaces {
        /// Input name.
        name: String,
        /// The limit.
        max: usize,
    },
}
