//! Telnet: strip IAC option negotiation to get the bytes a user typed or saw.
//!
//! The login-name heuristic (what follows a `login:` prompt) belongs to the detector;
//! this module only removes the protocol's in-band commands, statefully, so a command
//! split across two segments is still removed.

/// Interpret As Command.
pub const IAC: u8 = 255;
/// Subnegotiation begin.
pub const SB: u8 = 250;
/// Subnegotiation end.
pub const SE: u8 = 240;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum State {
    #[default]
    Data,
    /// After IAC.
    Iac,
    /// After IAC WILL/WONT/DO/DONT: one option byte follows.
    Opt,
    /// Inside IAC SB … IAC SE.
    Sub,
    /// IAC inside a subnegotiation.
    SubIac,
    /// After a CR in data: a NUL that follows is padding.
    Cr,
}

/// Removes Telnet commands from one direction of a connection, across segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IacStripper {
    state: State,
}

impl IacStripper {
    /// A stripper at the start of a connection.
    pub fn new() -> IacStripper {
        IacStripper::default()
    }

    /// Appends the data bytes of `input` to `out` (at most `input.len()` bytes): IAC IAC
    /// becomes one 255, `CR NUL` becomes CR, option negotiation and subnegotiation vanish.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        for &b in input {
            self.state = match (self.state, b) {
                (State::Data | State::Cr, IAC) => State::Iac,
                (State::Cr, 0) => State::Data,
                (State::Data | State::Cr, b'\r') => {
                    out.push(b);
                    State::Cr
                }
                (State::Data | State::Cr, _) => {
                    out.push(b);
                    State::Data
                }
                (State::Iac, IAC) => {
                    out.push(IAC);
                    State::Data
                }
                (State::Iac, 251..=254) => State::Opt,
                (State::Iac, SB) => State::Sub,
                (State::Iac, _) | (State::Opt, _) => State::Data,
                (State::Sub, IAC) => State::SubIac,
                (State::Sub, _) => State::Sub,
                (State::SubIac, SE) => State::Data,
                (State::SubIac, _) => State::Sub,
            };
        }
    }
}

/// Strips Telnet commands from one self-contained buffer.
pub fn strip_iac(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    IacStripper::new().feed(input, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_negotiation_and_subnegotiation() {
        // IAC DO ECHO, "lo", IAC SB TTYPE ... IAC SE, "gin\r\0", IAC IAC, IAC NOP.
        let input = [
            IAC, 253, 1, b'l', b'o', IAC, SB, 24, 0, b'x', b't', IAC, SE, b'g', b'i', b'n', b'\r', 0, IAC, IAC, IAC,
            241, b'!',
        ];
        assert_eq!(strip_iac(&input), b"login\r\xff!");
    }

    #[test]
    fn state_survives_segment_boundaries() {
        let mut s = IacStripper::new();
        let mut out = Vec::new();
        s.feed(&[b'a', IAC], &mut out);
        s.feed(&[251], &mut out);
        s.feed(&[3, b'b', IAC, SB], &mut out);
        s.feed(&[1, 2, IAC], &mut out);
        s.feed(&[SE, b'c'], &mut out);
        assert_eq!(out, b"abc");
    }
}
