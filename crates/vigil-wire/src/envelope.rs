//! Envelope framing and AES-256-GCM sealing.
//!
//! Byte layout (version 1):
//!
//! ```text
//! [0]        version = 1
//! [1..h]     postcard(Header)  — agent id, boot epoch, seq, timestamp, kind, nonce
//! [h..]      AES-256-GCM ciphertext of the payload, followed by the 16-byte tag
//! ```
//!
//! The associated data is the exact bytes `[0..h]`: version, agent id, boot epoch,
//! sequence number, timestamp, message kind and nonce are all bound by the tag, so
//! flipping any byte of the envelope makes it fail to open. The version byte comes first
//! because postcard is not self-describing: a reader must know the layout before parsing.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use vigil_model::{AgentId, Item};

use crate::SealingKey;

/// The envelope version this build writes and reads.
pub const WIRE_VERSION: u8 = 1;
/// Largest envelope accepted or produced, bytes. Bounds the work an unauthenticated
/// sender can cause before the tag is checked.
pub const MAX_ENVELOPE_LEN: usize = 8 * 1024 * 1024;
/// Most items one batch may carry.
pub const MAX_BATCH_ITEMS: usize = 20_000;
/// Longest header accepted, bytes (agent id ≤ 64 bytes plus fixed fields fits easily).
const MAX_HEADER_LEN: usize = 160;
const TAG_LEN: usize = 16;

/// What a sealed message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum MessageKind {
    /// A batch of [`Item`]s from an agent.
    Batch = 1,
    /// A command from the server to an agent.
    Command = 2,
    /// An agent's answer to a command.
    CommandResult = 3,
}

/// The clear part of an envelope. Authenticated (as associated data), not encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The agent the message is from (or, for commands, to).
    pub agent_id: AgentId,
    /// The sender's boot epoch: grows at every agent start and is persisted.
    pub boot_epoch: u64,
    /// Sequence number within the boot epoch, from 1, growing per message.
    pub seq: u64,
    /// When the message was sealed, unix milliseconds.
    pub timestamp_ms: i64,
    /// What the payload is.
    pub kind: MessageKind,
    /// The AES-GCM nonce, random per message.
    pub nonce: [u8; NONCE_LEN],
}

/// The fields a sender chooses; the nonce is drawn at sealing time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealParams {
    /// See [`Header::agent_id`].
    pub agent_id: AgentId,
    /// See [`Header::boot_epoch`].
    pub boot_epoch: u64,
    /// See [`Header::seq`].
    pub seq: u64,
    /// See [`Header::timestamp_ms`].
    pub timestamp_ms: i64,
    /// See [`Header::kind`].
    pub kind: MessageKind,
}

/// Why an envelope could not be sealed or opened. None of these carries key material or
/// payload bytes, so they are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The envelope is larger than [`MAX_ENVELOPE_LEN`].
    #[error("envelope of {0} bytes exceeds the {MAX_ENVELOPE_LEN}-byte limit")]
    TooLarge(usize),
    /// The envelope is too short to hold a header and a tag.
    #[error("envelope truncated ({0} bytes)")]
    Truncated(usize),
    /// The first byte names a version this build does not speak.
    #[error("unsupported envelope version {0}; this vigil speaks version {WIRE_VERSION}: upgrade the older side")]
    UnsupportedVersion(u8),
    /// The header could not be parsed.
    #[error("envelope header is malformed")]
    BadHeader,
    /// The tag did not verify: tampered, truncated, or sealed under another key.
    #[error("envelope failed authentication (tampered, truncated or wrong key)")]
    Integrity,
    /// The tag verified but the payload is not what the kind promises.
    #[error("envelope payload is malformed: {0}")]
    BadPayload(&'static str),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

/// An opened envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The authenticated header.
    pub header: Header,
    /// The decrypted payload.
    pub plaintext: Vec<u8>,
}

fn aead_key(key: &SealingKey) -> Result<LessSafeKey, WireError> {
    // Only fails for a wrong key length, which the [u8; 32] type rules out.
    UnboundKey::new(&AES_256_GCM, key.as_bytes()).map(LessSafeKey::new).map_err(|_| WireError::Integrity)
}

/// Seals `plaintext` under `key` with a fresh random nonce.
pub fn seal(key: &SealingKey, params: &SealParams, plaintext: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).map_err(|_| WireError::Rng)?;
    let header = Header {
        agent_id: params.agent_id.clone(),
        boot_epoch: params.boot_epoch,
        seq: params.seq,
        timestamp_ms: params.timestamp_ms,
        kind: params.kind,
        nonce,
    };
    let mut out = Vec::with_capacity(1 + MAX_HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(WIRE_VERSION);
    let mut out = postcard::to_extend(&header, out).map_err(|_| WireError::BadHeader)?;
    let header_end = out.len();
    if header_end > MAX_HEADER_LEN + 1 {
        return Err(WireError::BadHeader);
    }
    if header_end + plaintext.len() + TAG_LEN > MAX_ENVELOPE_LEN {
        return Err(WireError::TooLarge(header_end + plaintext.len() + TAG_LEN));
    }
    out.extend_from_slice(plaintext);
    let (aad, body) = out.split_at_mut(header_end);
    let tag = aead_key(key)?
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&*aad), body)
        .map_err(|_| WireError::Integrity)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Reads the clear header without checking the tag, to find which key to open with.
/// Nothing in it may be trusted until [`open`] succeeds. Returns the header and its end.
pub fn peek(bytes: &[u8]) -> Result<(Header, usize), WireError> {
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (&version, rest) = bytes.split_first().ok_or(WireError::Truncated(0))?;
    if version != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion(version));
    }
    let limit = rest.len().min(MAX_HEADER_LEN);
    let (header, remaining) = match postcard::take_from_bytes::<Header>(&rest[..limit]) {
        Ok(v) => v,
        Err(postcard::Error::DeserializeUnexpectedEnd) if limit < MAX_HEADER_LEN => {
            return Err(WireError::Truncated(bytes.len()));
        }
        Err(_) => return Err(WireError::BadHeader),
    };
    let header_end = 1 + (limit - remaining.len());
    if bytes.len() < header_end + TAG_LEN {
        return Err(WireError::Truncated(bytes.len()));
    }
    Ok((header, header_end))
}

/// Checks the tag and decrypts. Any change to any byte gives [`WireError::Integrity`]
/// (or a framing error when the header itself no longer parses).
pub fn open(key: &SealingKey, bytes: &[u8]) -> Result<Opened, WireError> {
    let (header, header_end) = peek(bytes)?;
    let (aad, sealed) = bytes.split_at(header_end);
    let mut buf = sealed.to_vec();
    let plain_len = aead_key(key)?
        .open_in_place(Nonce::assume_unique_for_key(header.nonce), Aad::from(aad), &mut buf)
        .map_err(|_| WireError::Integrity)?
        .len();
    buf.truncate(plain_len);
    Ok(Opened { header, plaintext: buf })
}

/// The payload of a [`MessageKind::Batch`] message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// What the agent reports.
    pub items: Vec<Item>,
}

/// Seals a batch of items.
pub fn seal_batch(key: &SealingKey, params: &SealParams, items: &[Item]) -> Result<Vec<u8>, WireError> {
    if items.len() > MAX_BATCH_ITEMS {
        return Err(WireError::BadPayload("too many items in one batch"));
    }
    #[derive(Serialize)]
    struct BatchRef<'a> {
        items: &'a [Item],
    }
    let plain = postcard::to_allocvec(&BatchRef { items }).map_err(|_| WireError::BadPayload("unencodable item"))?;
    seal(key, &SealParams { kind: MessageKind::Batch, ..params.clone() }, &plain)
}

/// Decodes the payload of an opened batch message.
pub fn decode_batch(opened: &Opened) -> Result<Batch, WireError> {
    if opened.header.kind != MessageKind::Batch {
        return Err(WireError::BadPayload("message is not a batch"));
    }
    let batch: Batch =
        postcard::from_bytes(&opened.plaintext).map_err(|_| WireError::BadPayload("batch does not decode"))?;
    if batch.items.len() > MAX_BATCH_ITEMS {
        return Err(WireError::BadPayload("too many items in one batch"));
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use vigil_model::{Alert, Category};

    fn params() -> SealParams {
        SealParams {
            agent_id: AgentId::new("web-01").unwrap(),
            boot_epoch: 3,
            seq: 7,
            timestamp_ms: 1_700_000_000_000,
            kind: MessageKind::Batch,
        }
    }

    #[test]
    fn round_trip() {
        let key = SealingKey::generate().unwrap();
        let items = vec![Item::Alert(Alert::new(Category::PortScan, Utc::now(), "x"))];
        let env = seal_batch(&key, &params(), &items).unwrap();
        let opened = open(&key, &env).unwrap();
        assert_eq!(opened.header.agent_id.as_str(), "web-01");
        assert_eq!((opened.header.boot_epoch, opened.header.seq), (3, 7));
        assert_eq!(decode_batch(&opened).unwrap().items, items);
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let key = SealingKey::generate().unwrap();
        let env = seal(&key, &params(), b"hello metrics").unwrap();
        for i in 0..env.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = env.clone();
                bad[i] ^= bit;
                assert!(open(&key, &bad).is_err(), "flip of byte {i} bit {bit:#x} accepted");
            }
        }
    }

    #[test]
    fn truncation_and_wrong_key_are_refused() {
        let key = SealingKey::generate().unwrap();
        let env = seal(&key, &params(), b"payload").unwrap();
        for len in 0..env.len() {
            assert!(open(&key, &env[..len]).is_err(), "truncated to {len} accepted");
        }
        let other = SealingKey::generate().unwrap();
        assert_eq!(open(&other, &env), Err(WireError::Integrity));
    }

    #[test]
    fn unknown_version_is_named() {
        let key = SealingKey::generate().unwrap();
        let mut env = seal(&key, &params(), b"x").unwrap();
        env[0] = 9;
        assert_eq!(open(&key, &env), Err(WireError::UnsupportedVersion(9)));
    }

    #[test]
    fn nonces_differ_between_messages() {
        let key = SealingKey::generate().unwrap();
        let a = peek(&seal(&key, &params(), b"x").unwrap()).unwrap().0;
        let b = peek(&seal(&key, &params(), b"x").unwrap()).unwrap().0;
        assert_ne!(a.nonce, b.nonce);
    }

    #[test]
    fn oversized_input_is_refused_before_work() {
        let big = vec![1u8; MAX_ENVELOPE_LEN + 1];
        assert_eq!(peek(&big).map(|_| ()), Err(WireError::TooLarge(MAX_ENVELOPE_LEN + 1)));
    }
}
