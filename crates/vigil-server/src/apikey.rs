//! API keys: `vgl_<id>_<secret>`. The id (16 hex digits) finds the row; only the SHA-256
//! of the secret is stored, and it is compared in constant time.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

const PREFIX: &str = "vgl_";
const ID_HEX_LEN: usize = 16;
const SECRET_B64_LEN: usize = 43;

/// What a caller may do. Ordered: `Viewer < Operator < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read, and change alert state, blocks and silences.
    Operator,
    /// Everything, including API keys.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A freshly made key: the text to hand out once, and what to store.
pub struct NewKey {
    /// The full key, shown to the user once. Never logged.
    pub text: String,
    /// The public id part.
    pub id: String,
    /// SHA-256 of the secret part.
    pub hash: [u8; 32],
}

/// Makes a new random key.
pub fn generate() -> Result<NewKey, &'static str> {
    let rng = SystemRandom::new();
    let mut id = [0u8; ID_HEX_LEN / 2];
    let mut secret = [0u8; 32];
    rng.fill(&mut id).map_err(|_| "system random number generator failed")?;
    rng.fill(&mut secret).map_err(|_| "system random number generator failed")?;
    let id = hex::encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let hash = hash_secret(&secret);
    Ok(NewKey { text: format!("{PREFIX}{id}_{secret}"), id, hash })
}

fn hash_secret(secret: &str) -> [u8; 32] {
    let d = digest(&SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Splits a presented key into its id and the hash of its secret; `None` if it is not
/// shaped like a vigil key (which is answered like a wrong key).
pub fn parse(text: &str) -> Option<(String, [u8; 32])> {
    let rest = text.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != ID_HEX_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() != SECRET_B64_LEN {
        return None;
    }
    Some((id.to_owned(), hash_secret(secret)))
}

/// Constant-time comparison of a presented hash with a stored one.
pub fn hashes_match(presented: &[u8; 32], stored: &[u8; 32]) -> bool {
    presented.ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match() {
        let k = generate().unwrap();
        let (id, hash) = parse(&k.text).unwrap();
        assert_eq!(id, k.id);
        assert!(hashes_match(&hash, &k.hash));
        let other = generate().unwrap();
        assert!(!hashes_match(&parse(&other.text).unwrap().1, &k.hash));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        for bad in ["", "vgl_", "vgl_abc_def", "xyz_0123456789abcdef_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn roles_order() {
        assert!(Role::Viewer < Role::Admin);
        assert_eq!(Role::parse("operator"), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
    }
}
