//! Lenient base64 decoding into caller-provided (stack) buffers, for credentials.

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet; padding optional and trailing bits tolerated, as real clients vary.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes `input` (surrounding blanks ignored) into `buf`; `None` when it is not base64
/// or does not fit.
pub(crate) fn decode_into<'b>(input: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let input = input.trim_ascii();
    if input.is_empty() || input.len() / 4 * 3 > buf.len() {
        return None;
    }
    let n = LENIENT.decode_slice(input, buf).ok()?;
    buf.get(..n)
}

/// Turns user-name bytes into a bounded, printable `String` (at most `max` chars).
pub(crate) fn user_string(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes).chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_decoding() {
        let mut buf = [0u8; 64];
        assert_eq!(decode_into(b"  dGVzdDp0ZXN0 ", &mut buf), Some(&b"test:test"[..]));
        let mut buf = [0u8; 64];
        assert_eq!(decode_into(b"dGVzdA", &mut buf), Some(&b"test"[..]));
        let mut buf = [0u8; 64];
        assert_eq!(decode_into(b"not base64!", &mut buf), None);
        let mut small = [0u8; 2];
        assert_eq!(decode_into(b"dGVzdDp0ZXN0", &mut small), None);
        assert_eq!(user_string(b"a\x01b\xffc", 3), "ab\u{fffd}");
    }
}
