//! Packet sources for vigil.
//!
//! **Owns**: reading packets from capture files: pcap (microsecond and nanosecond,
//! either byte order), pcapng (several interfaces with their own link types and
//! timestamp resolutions; Enhanced, Simple and obsolete Packet Blocks), and gzip-compressed
//! forms of both, detected by magic ([`CaptureReader`]). Live capture (an AF_PACKET
//! TPACKET_V3 ring, and libpcap behind a feature) comes with issue 4 and will live here too.
//!
//! **Must not**: decode packets (that is `vigil-decode`), interpret timestamps beyond
//! converting them to Unix nanoseconds, or use memory that grows with the file: one
//! buffer, grown at most to the largest allowed record, holds everything, and packets
//! are handed out as slices of it (no allocation per packet).
//!
//! **Thread**: a file is read on the thread that owns its [`CaptureReader`] (the
//! `vigil analyze` reader thread); the reader is `Send` when its input is.

mod error;
mod file;
pub mod fuzzing;
pub mod live;

pub use error::CaptureError;
pub use file::{Ahead, CaptureFormat, CaptureReader, DEFAULT_MAX_RECORD_LEN, Interface, MAX_INTERFACES, RawPacket};

#[cfg(test)]
mod tests;
