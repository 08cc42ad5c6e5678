//! HTTP/1.x request line and headers: method, target, Host, Authorization.
//!
//! Hand-written rather than httparse: httparse reports `Partial` without the headers it
//! has seen when a request head spans segments, and rejects some bytes real clients send;
//! a detector looking at one segment wants whatever is there. Zero-copy: every field
//! borrows the payload; headers are iterated lazily. Basic credentials are decoded only
//! on request ([`Authorization::basic_user`]) and only the user name leaves: the password
//! is wiped from the stack buffer and never stored.

use std::fmt;

use crate::b64;

/// Longest request line accepted.
pub const MAX_REQUEST_LINE: usize = 8192;
/// Most header lines examined.
pub const MAX_HEADERS: usize = 128;
/// Longest user name returned by [`Authorization::basic_user`], in characters.
pub const MAX_USER_LEN: usize = 256;

/// Why a payload is not an HTTP request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The payload does not start with an HTTP/1.x request line.
    #[error("not an HTTP/1.x request")]
    NotHttp,
    /// The request line is not finished in this payload.
    #[error("HTTP request line incomplete")]
    Incomplete,
}

/// An HTTP/1.x request head, borrowed from the payload.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest<'a> {
    /// Method (`GET`, `POST`…).
    pub method: &'a str,
    /// Request target as sent (path and query, or an absolute URI for proxies).
    pub target: &'a str,
    /// Minor version: 0 or 1 for HTTP/1.0 or HTTP/1.1.
    pub version_minor: u8,
    /// Host header, trimmed.
    pub host: Option<&'a str>,
    /// User-Agent header, trimmed.
    pub user_agent: Option<&'a str>,
    /// Content-Length header, when it is a number.
    pub content_length: Option<u64>,
    /// The blank line ending the head was seen (all headers are present).
    pub complete: bool,
    /// Raw header lines (after the request line, up to the blank line or the data end).
    headers_raw: &'a [u8],
    /// Raw Authorization value (kept private: it holds credentials).
    authorization: Option<&'a [u8]>,
}

impl<'a> HttpRequest<'a> {
    /// The path: the target without query or fragment (and without scheme and authority
    /// for an absolute URI).
    pub fn path(&self) -> &'a str {
        let t = self.target;
        let t = match t.split_once("://") {
            Some((_, rest)) => rest.find('/').and_then(|j| rest.get(j..)).unwrap_or("/"),
            None => t,
        };
        let end = t.find(['?', '#']).unwrap_or(t.len());
        t.get(..end).unwrap_or(t)
    }

    /// Iterates the header lines as (name, value), value trimmed. Includes Authorization:
    /// callers must not log values blindly.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        header_lines(self.headers_raw)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The Authorization header, if any.
    pub fn authorization(&self) -> Option<Authorization<'a>> {
        let v = self.authorization?;
        let v = v.trim_ascii();
        let split = v.iter().position(|b| *b == b' ' || *b == b'\t').unwrap_or(v.len());
        let (scheme, creds) = v.split_at(split);
        Some(Authorization { scheme: std::str::from_utf8(scheme).unwrap_or(""), credentials: creds.trim_ascii() })
    }
}

impl fmt::Debug for HttpRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("version_minor", &self.version_minor)
            .field("host", &self.host)
            .field("authorization", &self.authorization())
            .field("complete", &self.complete)
            .finish()
    }
}

/// An Authorization header value. Its Debug form hides the credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// Scheme as sent (`Basic`, `Bearer`, `Digest`, `NTLM`…).
    pub scheme: &'a str,
    credentials: &'a [u8],
}

impl Authorization<'_> {
    /// True for the Basic scheme (any case).
    pub fn is_basic(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("basic")
    }

    /// For Basic: the user name (the part before the first `:`), at most
    /// [`MAX_USER_LEN`] characters, control characters removed. The password is never
    /// returned or kept. `None` for other schemes or undecodable credentials.
    pub fn basic_user(&self) -> Option<String> {
        if !self.is_basic() || self.credentials.len() > 1024 {
            return None;
        }
        let mut buf = [0u8; 768];
        let user = b64::decode_into(self.credentials, &mut buf).and_then(|decoded| {
            let colon = decoded.iter().position(|b| *b == b':')?;
            Some(b64::user_string(decoded.get(..colon)?, MAX_USER_LEN))
        });
        buf.fill(0); // the password was in there
        user
    }
}

impl fmt::Debug for Authorization<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization").field("scheme", &self.scheme).field("credentials", &"<redacted>").finish()
    }
}

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// Methods [`looks_like_request`] recognises (HTTP/1.1 and WebDAV).
const METHODS: [&[u8]; 18] = [
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"REPORT",
    b"SEARCH",
];

/// Length of the method token at the start (uppercase letters, `-`, `_`), when followed
/// by a space.
fn method_len(payload: &[u8]) -> Option<usize> {
    let n = payload.iter().take(21).position(|b| !is_method_byte(*b)).unwrap_or(payload.len().min(21));
    ((1..=20).contains(&n) && payload.get(n) == Some(&b' ')).then_some(n)
}

/// Cheap check: does the payload start with a well-known HTTP method and a space? (Any
/// uppercase token is accepted by [`parse_request`], which checks the `HTTP/1.x` version
/// instead; this check must also reject `USER x` and other text protocols.)
pub fn looks_like_request(payload: &[u8]) -> bool {
    // Every method in `METHODS` starts with one of these (checked by a test): most
    // payloads are rejected on their first byte.
    if !matches!(
        payload.first(),
        Some(b'G' | b'P' | b'H' | b'D' | b'O' | b'C' | b'T' | b'M' | b'L' | b'U' | b'R' | b'S')
    ) {
        return false;
    }
    method_len(payload).and_then(|n| payload.get(..n)).is_some_and(|m| METHODS.contains(&m))
}

/// Splits at the next `\n`; the line has a trailing `\r` removed.
fn next_line(data: &[u8]) -> Option<(&[u8], &[u8])> {
    // memchr scans a word (or a SIMD vector) at a time: header lines are most of a
    // request head, and a byte loop made this the slowest L7 parser.
    let i = memchr::memchr(b'\n', data)?;
    let (line, rest) = data.split_at(i);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, rest.get(1..).unwrap_or(&[])))
}

/// Splits one header line into (name, trimmed value); `None` for folded continuation
/// lines and lines without a colon or with a bad name.
fn header_line(line: &[u8]) -> Option<(&str, &[u8])> {
    if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return None;
    }
    let colon = memchr::memchr(b':', line)?;
    let (name, value) = line.split_at(colon);
    let name = std::str::from_utf8(name.trim_ascii_end()).ok()?;
    if name.is_empty() || name.contains(' ') {
        return None;
    }
    Some((name, value.get(1..).unwrap_or(&[]).trim_ascii()))
}

fn header_lines(raw: &[u8]) -> impl Iterator<Item = (&str, &[u8])> {
    let mut rest = raw;
    let mut count = 0;
    std::iter::from_fn(move || {
        loop {
            if count >= MAX_HEADERS {
                return None;
            }
            let (line, after) = next_line(rest)?;
            rest = after;
            count += 1;
            if line.is_empty() {
                return None;
            }
            if let Some(h) = header_line(line) {
                return Some(h);
            }
        }
    })
}

/// Parses the request head at the start of a TCP payload.
pub fn parse_request(payload: &[u8]) -> Result<HttpRequest<'_>, HttpError> {
    if method_len(payload).is_none() {
        return Err(if payload.len() < 4 && payload.iter().all(|b| is_method_byte(*b)) {
            HttpError::Incomplete
        } else {
            HttpError::NotHttp
        });
    }
    let Some((line, rest)) = next_line(payload) else {
        return Err(if payload.len() < MAX_REQUEST_LINE { HttpError::Incomplete } else { HttpError::NotHttp });
    };
    if line.len() > MAX_REQUEST_LINE {
        return Err(HttpError::NotHttp);
    }
    let line = std::str::from_utf8(line).map_err(|_| HttpError::NotHttp)?;
    let (method, after) = line.split_once(' ').ok_or(HttpError::NotHttp)?;
    let (target, version) = after.trim().rsplit_once(' ').ok_or(HttpError::NotHttp)?;
    let version_minor = match version.as_bytes() {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', d] if d.is_ascii_digit() => d - b'0',
        _ => return Err(HttpError::NotHttp),
    };
    let target = target.trim();
    if target.is_empty() || target.contains(' ') {
        return Err(HttpError::NotHttp);
    }
    let mut req = HttpRequest {
        method,
        target,
        version_minor,
        host: None,
        user_agent: None,
        content_length: None,
        complete: false,
        headers_raw: rest,
        authorization: None,
    };
    // One pass over the header lines: pick the headers we keep, find the blank line.
    let mut scan = rest;
    let mut consumed = 0;
    for _ in 0..MAX_HEADERS {
        let Some((line, after)) = next_line(scan) else {
            break;
        };
        consumed += scan.len() - after.len();
        scan = after;
        if line.is_empty() {
            req.complete = true;
            break;
        }
        let Some((name, value)) = header_line(line) else {
            continue;
        };
        let text = || std::str::from_utf8(value).ok();
        match name.len() {
            4 if name.eq_ignore_ascii_case("host") => req.host = req.host.or_else(text),
            13 if name.eq_ignore_ascii_case("authorization") => {
                req.authorization = req.authorization.or(Some(value));
            }
            10 if name.eq_ignore_ascii_case("user-agent") => req.user_agent = req.user_agent.or_else(text),
            14 if name.eq_ignore_ascii_case("content-length") => {
                req.content_length = req.content_length.or_else(|| text().and_then(|t| t.parse().ok()));
            }
            _ => {}
        }
    }
    req.headers_raw = rest.get(..consumed).unwrap_or(rest);
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_method_passes_the_first_byte_filter() {
        for m in METHODS {
            let mut line = m.to_vec();
            line.extend_from_slice(b" / HTTP/1.1\r\n");
            assert!(looks_like_request(&line), "{}", String::from_utf8_lossy(m));
        }
        assert!(!looks_like_request(b"ZZZ / HTTP/1.1\r\n"));
        assert!(!looks_like_request(b"GETX"));
        assert!(!looks_like_request(b""));
    }

    #[test]
    fn request_head_and_basic_user() {
        let raw = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.org \r\nAuthorization: Basic   dGVzdDpzM2NyM3Q=  \r\nUser-Agent: curl/8\r\nContent-Length: 12\r\n\r\nbody";
        let r = parse_request(raw).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/a/b?x=1");
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.version_minor, 1);
        assert_eq!(r.host, Some("example.org"));
        assert_eq!(r.user_agent, Some("curl/8"));
        assert_eq!(r.content_length, Some(12));
        assert!(r.complete);
        let auth = r.authorization().unwrap();
        assert!(auth.is_basic());
        assert_eq!(auth.basic_user().as_deref(), Some("test"));
        // Debug never shows the credentials.
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("dGVzdDpzM2NyM3Q"), "{dbg}");
        assert!(!dbg.contains("s3cr3t"));
        assert_eq!(r.headers().count(), 4);
        assert_eq!(r.header("HOST"), Some(&b"example.org"[..]));
    }

    #[test]
    fn partial_heads_and_non_http() {
        let r = parse_request(b"POST http://h/x/y?q HTTP/1.0\nHost: h\nX-Long: 1").unwrap();
        assert!(!r.complete);
        assert_eq!(r.path(), "/x/y");
        assert_eq!(r.host, Some("h"));
        assert_eq!(r.version_minor, 0);
        assert_eq!(parse_request(b"GET /inco"), Err(HttpError::Incomplete));
        assert_eq!(parse_request(b"GE"), Err(HttpError::Incomplete));
        assert_eq!(parse_request(b"USER csanders\r\n"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"get / HTTP/1.1\r\n"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"GET / HTTP/2\r\n"), Err(HttpError::NotHttp));
        assert_eq!(parse_request(b"\x16\x03\x01"), Err(HttpError::NotHttp));
        assert!(looks_like_request(b"PROPFIND / HTTP/1.1"));
        assert!(!looks_like_request(b"SSH-2.0"));
    }

    #[test]
    fn other_schemes_and_bad_basic() {
        let r = parse_request(b"GET / HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n").unwrap();
        assert_eq!(r.authorization().unwrap().scheme, "Bearer");
        assert_eq!(r.authorization().unwrap().basic_user(), None);
        let r = parse_request(b"GET / HTTP/1.1\r\nAuthorization: basic bm9jb2xvbg==\r\n\r\n").unwrap();
        // "nocolon": no user/password separator, nothing returned.
        assert_eq!(r.authorization().unwrap().basic_user(), None);
        let r = parse_request(b"GET / HTTP/1.1\r\nAuthorization: Basic !!!\r\n\r\n").unwrap();
        assert_eq!(r.authorization().unwrap().basic_user(), None);
    }
}
