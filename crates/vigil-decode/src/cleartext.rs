//! Cleartext login commands of FTP, POP3, IMAP and SMTP, one line at a time.
//!
//! Our own line parsers (fuzzed): they recognise the commands that carry or announce
//! credentials and return the user name only. A password is reported as "sent"
//! ([`AuthCommand::Pass`], [`AuthCommand::carries_password`]) and never copied.
//!
//! Stateless: the SASL `AUTH LOGIN` exchange sends the user name on a later line, so a
//! detector that follows the conversation calls [`decode_base64_user`] on that line.

use crate::b64;

/// Longest command line examined; longer lines are ignored.
pub const MAX_LINE: usize = 4096;
/// Longest user name returned, in characters.
pub const MAX_USER_LEN: usize = 256;

/// The protocol whose command syntax to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// FTP (RFC 959): `USER`, `PASS`, `AUTH TLS`.
    Ftp,
    /// POP3 (RFC 1939/5034): `USER`, `PASS`, `APOP`, `AUTH`, `STLS`.
    Pop3,
    /// IMAP (RFC 9051): `tag LOGIN`, `tag AUTHENTICATE`, `tag STARTTLS`.
    Imap,
    /// SMTP (RFC 4954): `AUTH`, `STARTTLS`.
    Smtp,
}

impl Protocol {
    /// Lowercase name (`"ftp"`…).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ftp => "ftp",
            Protocol::Pop3 => "pop3",
            Protocol::Imap => "imap",
            Protocol::Smtp => "smtp",
        }
    }
}

/// A credential-related command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthCommand {
    /// `USER name` (FTP, POP3).
    User {
        /// The user name.
        user: String,
    },
    /// `PASS …` (FTP, POP3): a password was sent in clear; its value is not kept.
    Pass,
    /// POP3 `APOP name digest` (a digest, not the password).
    Apop {
        /// The user name.
        user: String,
    },
    /// IMAP `LOGIN user password`; the user is `None` when sent as a literal on the next
    /// line.
    Login {
        /// The user name.
        user: Option<String>,
    },
    /// SASL PLAIN (`AUTH PLAIN`, `AUTHENTICATE PLAIN`): the user from the initial
    /// response, when there is one (the password travels with it).
    AuthPlain {
        /// The authentication identity.
        user: Option<String>,
    },
    /// SASL LOGIN: the user from the initial response, when there is one; otherwise the
    /// next client line is the base64 user name, and the one after it the password.
    AuthLogin {
        /// The user name.
        user: Option<String>,
    },
    /// Another SASL mechanism (CRAM-MD5, GSSAPI, XOAUTH2…), uppercase.
    Auth {
        /// Mechanism name.
        mechanism: String,
    },
    /// The client asked to upgrade to TLS (`AUTH TLS`, `STLS`, `STARTTLS`).
    StartTls,
}

impl AuthCommand {
    /// The user name, when the command carries one.
    pub fn user(&self) -> Option<&str> {
        match self {
            AuthCommand::User { user } | AuthCommand::Apop { user } => Some(user),
            AuthCommand::Login { user } | AuthCommand::AuthPlain { user } | AuthCommand::AuthLogin { user } => {
                user.as_deref()
            }
            _ => None,
        }
    }

    /// True when this very line carried a cleartext password.
    pub fn carries_password(&self) -> bool {
        matches!(self, AuthCommand::Pass | AuthCommand::Login { .. } | AuthCommand::AuthPlain { user: Some(_) })
    }
}

/// Iterates the lines of a payload (split on `\n`, `\r` trimmed; a last line without
/// `\n` is included).
pub fn lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload.split(|b| *b == b'\n').filter_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        (!l.is_empty()).then_some(l)
    })
}

/// Parses every line of a payload with [`parse_command`].
pub fn commands(protocol: Protocol, payload: &[u8]) -> impl Iterator<Item = AuthCommand> + '_ {
    lines(payload).filter_map(move |l| parse_command(protocol, l))
}

/// Splits off the first space-separated token.
fn token(s: &[u8]) -> (&[u8], &[u8]) {
    let s = s.trim_ascii_start();
    let i = s.iter().position(|b| *b == b' ' || *b == b'\t').unwrap_or(s.len());
    let (t, rest) = s.split_at(i);
    (t, rest.trim_ascii_start())
}

/// Parses one client command line (without its line ending).
pub fn parse_command(protocol: Protocol, line: &[u8]) -> Option<AuthCommand> {
    if line.len() > MAX_LINE {
        return None;
    }
    let line = line.trim_ascii();
    let (first, rest) = token(line);
    let (verb, args) = match protocol {
        Protocol::Imap => token(rest), // first is the tag
        _ => (first, rest),
    };
    let is = |name: &str| verb.eq_ignore_ascii_case(name.as_bytes());
    match protocol {
        Protocol::Ftp | Protocol::Pop3 if is("USER") => {
            let user = args.trim_ascii();
            (!user.is_empty()).then(|| AuthCommand::User { user: b64::user_string(user, MAX_USER_LEN) })
        }
        Protocol::Ftp | Protocol::Pop3 if is("PASS") => Some(AuthCommand::Pass),
        Protocol::Ftp if is("AUTH") => Some(AuthCommand::StartTls),
        Protocol::Pop3 if is("APOP") => {
            let (user, _) = token(args);
            (!user.is_empty()).then(|| AuthCommand::Apop { user: b64::user_string(user, MAX_USER_LEN) })
        }
        Protocol::Pop3 if is("STLS") => Some(AuthCommand::StartTls),
        Protocol::Imap | Protocol::Smtp if is("STARTTLS") => Some(AuthCommand::StartTls),
        Protocol::Imap if is("LOGIN") => Some(AuthCommand::Login { user: imap_astring(args) }),
        Protocol::Imap if is("AUTHENTICATE") => Some(sasl(args)),
        Protocol::Pop3 | Protocol::Smtp if is("AUTH") => Some(sasl(args)),
        _ => None,
    }
}

/// `MECHANISM [initial-response]`.
fn sasl(args: &[u8]) -> AuthCommand {
    let (mech, initial) = token(args);
    let (initial, _) = token(initial);
    let initial = (!initial.is_empty() && initial != b"=").then_some(initial);
    if mech.eq_ignore_ascii_case(b"PLAIN") {
        AuthCommand::AuthPlain { user: initial.and_then(sasl_plain_user) }
    } else if mech.eq_ignore_ascii_case(b"LOGIN") {
        AuthCommand::AuthLogin { user: initial.and_then(decode_base64_user) }
    } else {
        AuthCommand::Auth { mechanism: b64::user_string(mech, 32).to_ascii_uppercase() }
    }
}

/// An IMAP astring: quoted (with `\"` and `\\` escapes) or atom; `None` for a literal
/// (`{5}`), whose bytes follow on the next line.
fn imap_astring(args: &[u8]) -> Option<String> {
    match args.split_first() {
        None => None,
        Some((b'{', _)) => None,
        Some((b'"', rest)) => {
            let mut out = Vec::with_capacity(rest.len().min(MAX_USER_LEN));
            let mut it = rest.iter();
            while let Some(&b) = it.next() {
                match b {
                    b'"' => return Some(b64::user_string(&out, MAX_USER_LEN)),
                    b'\\' => out.push(*it.next()?),
                    _ => out.push(b),
                }
                if out.len() > MAX_USER_LEN * 4 {
                    break;
                }
            }
            None // unterminated
        }
        Some(_) => {
            let (atom, _) = token(args);
            Some(b64::user_string(atom, MAX_USER_LEN))
        }
    }
}

/// Decodes a SASL PLAIN response (`authzid NUL authcid NUL password`, base64) and returns
/// the authentication identity (or the authorization identity when that is empty). The
/// password is wiped from the decode buffer.
pub fn sasl_plain_user(b64_response: &[u8]) -> Option<String> {
    if b64_response.len() > 2048 {
        return None;
    }
    let mut buf = [0u8; 1536];
    let user = b64::decode_into(b64_response, &mut buf).and_then(|d| {
        let mut parts = d.splitn(3, |b| *b == 0);
        let authzid = parts.next()?;
        let authcid = parts.next()?;
        parts.next()?; // a password part must exist
        let id = if authcid.is_empty() { authzid } else { authcid };
        (!id.is_empty()).then(|| b64::user_string(id, MAX_USER_LEN))
    });
    buf.fill(0);
    user
}

/// Decodes a base64 line as a user name (SASL LOGIN). Call it only on the line known to
/// hold the user name: on the password line it would decode the password.
pub fn decode_base64_user(line: &[u8]) -> Option<String> {
    if line.len() > 1024 {
        return None;
    }
    let mut buf = [0u8; 768];
    let user = b64::decode_into(line, &mut buf).filter(|d| !d.is_empty()).map(|d| b64::user_string(d, MAX_USER_LEN));
    buf.fill(0);
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(p: Protocol, line: &str) -> Option<AuthCommand> {
        parse_command(p, line.as_bytes())
    }

    #[test]
    fn ftp_and_pop3() {
        assert_eq!(one(Protocol::Ftp, "USER csanders"), Some(AuthCommand::User { user: "csanders".into() }));
        assert_eq!(one(Protocol::Ftp, "pass  secret "), Some(AuthCommand::Pass));
        assert_eq!(one(Protocol::Ftp, "AUTH TLS"), Some(AuthCommand::StartTls));
        assert_eq!(one(Protocol::Ftp, "RETR file"), None);
        assert_eq!(one(Protocol::Ftp, "USER "), None);
        assert_eq!(
            one(Protocol::Pop3, "APOP mrose c4c9334bac560ecc979e58001b3e22fb"),
            Some(AuthCommand::Apop { user: "mrose".into() })
        );
        assert_eq!(one(Protocol::Pop3, "STLS"), Some(AuthCommand::StartTls));
        let all: Vec<_> = commands(Protocol::Pop3, b"USER test@tt.com\r\nPASS 123456\r\nQUIT\r\n").collect();
        assert_eq!(all, [AuthCommand::User { user: "test@tt.com".into() }, AuthCommand::Pass]);
        assert!(all[1].carries_password());
        assert!(!all[0].carries_password());
        assert_eq!(all[0].user(), Some("test@tt.com"));
    }

    #[test]
    fn imap_login_forms() {
        assert_eq!(
            one(Protocol::Imap, "a0001 LOGIN \"neulingern\" \"XXXXXX\""),
            Some(AuthCommand::Login { user: Some("neulingern".into()) })
        );
        assert_eq!(one(Protocol::Imap, "a1 login bob pw"), Some(AuthCommand::Login { user: Some("bob".into()) }));
        assert_eq!(
            one(Protocol::Imap, "a1 LOGIN \"a\\\"b\" pw"),
            Some(AuthCommand::Login { user: Some("a\"b".into()) })
        );
        assert_eq!(one(Protocol::Imap, "a1 LOGIN {5}"), Some(AuthCommand::Login { user: None }));
        assert_eq!(one(Protocol::Imap, "a1 LOGIN \"unterminated"), Some(AuthCommand::Login { user: None }));
        assert_eq!(one(Protocol::Imap, "a2 STARTTLS"), Some(AuthCommand::StartTls));
        assert_eq!(one(Protocol::Imap, "LOGIN bob pw"), None); // no tag
    }

    #[test]
    fn sasl_mechanisms() {
        // "\0alice\0wonderland"
        assert_eq!(
            one(Protocol::Smtp, "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="),
            Some(AuthCommand::AuthPlain { user: Some("alice".into()) })
        );
        assert!(one(Protocol::Smtp, "AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=").unwrap().carries_password());
        assert_eq!(one(Protocol::Smtp, "AUTH PLAIN"), Some(AuthCommand::AuthPlain { user: None }));
        assert_eq!(
            one(Protocol::Imap, "x AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="),
            Some(AuthCommand::AuthPlain { user: Some("alice".into()) })
        );
        // "bob"
        assert_eq!(one(Protocol::Smtp, "auth login Ym9i"), Some(AuthCommand::AuthLogin { user: Some("bob".into()) }));
        assert_eq!(one(Protocol::Pop3, "AUTH CRAM-MD5"), Some(AuthCommand::Auth { mechanism: "CRAM-MD5".into() }));
        assert_eq!(one(Protocol::Smtp, "STARTTLS"), Some(AuthCommand::StartTls));
        assert_eq!(decode_base64_user(b"Ym9i\r"), Some("bob".into()));
        assert_eq!(sasl_plain_user(b"YWxpY2U="), None); // no NULs: not PLAIN
    }
}
