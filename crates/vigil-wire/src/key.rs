use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A per-agent 256-bit AES-GCM key. Zeroed on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealingKey([u8; 32]);

/// The key material could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not 64 hexadecimal digits.
    #[error("sealing key must be 64 hexadecimal digits (256 bits)")]
    BadHex,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
}

impl SealingKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the system CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut k = [0u8; 32];
        SystemRandom::new().fill(&mut k).map_err(|_| KeyError::Rng)?;
        Ok(Self(k))
    }

    /// Parses 64 hex digits (the form used in credential files).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut k).map_err(|_| KeyError::BadHex)?;
        Ok(Self(k))
    }

    /// The key as 64 lowercase hex digits, for writing credential files. Handle with care.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}
