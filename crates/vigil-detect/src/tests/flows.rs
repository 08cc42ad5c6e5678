//! session_hijack, insecure_protocol, unencrypted_http, plaintext_credentials, weak_tls,
//! tls_certificate_change.

use vigil_model::{Category, Severity};

use super::*;
use crate::testutil::{TcpPacket, flags, mac, tls_certificate, tls_client_hello, tls_server_hello, udp};

/// A conversation on one TCP connection: (from client?, payload) with sequence numbers
/// kept right, after a handshake.
fn conversation(client: &str, cport: u16, server: &str, sport: u16, msgs: &[(bool, &[u8])]) -> Trace {
    let mut t = Trace::new();
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    t.push((0.0, TcpPacket::new(client, cport, server, sport).flags(flags::SYN).seq(cseq - 1).build()));
    t.push((
        0.001,
        TcpPacket::new(server, sport, client, cport)
            .macs(mac(2), mac(1))
            .flags(flags::SYN_ACK)
            .seq(sseq - 1)
            .ack(cseq)
            .build(),
    ));
    let mut ts = 0.002;
    for (from_client, payload) in msgs {
        let p = if *from_client {
            let p =
                TcpPacket::new(client, cport, server, sport).flags(flags::PSH_ACK).seq(cseq).ack(sseq).payload(payload);
            cseq = cseq.wrapping_add(payload.len() as u32);
            p
        } else {
            let p = TcpPacket::new(server, sport, client, cport)
                .macs(mac(2), mac(1))
                .flags(flags::PSH_ACK)
                .seq(sseq)
                .ack(cseq)
                .payload(payload);
            sseq = sseq.wrapping_add(payload.len() as u32);
            p
        };
        t.push((ts, p.build()));
        ts += 0.01;
    }
    t
}

#[test]
fn ftp_login_gives_credentials_and_insecure_protocol_without_the_password() {
    let t = conversation(
        "10.0.0.5",
        40000,
        "10.0.0.21",
        21,
        &[
            (false, b"220 FTP ready\r\n"),
            (true, b"USER alice\r\n"),
            (false, b"331 Password\r\n"),
            (true, b"PASS s3cret-pw\r\n"),
            (false, b"230 OK\r\n"),
        ],
    );
    let a = run(&t);
    let c = one(&a, Category::PlaintextCredentials, ip("10.0.0.5"), ip("10.0.0.21"));
    assert_eq!(c.evidence["protocol"], "ftp");
    assert_eq!(c.evidence["user"], "alice");
    assert_eq!(c.dst_port, Some(21));
    let i = one(&a, Category::InsecureProtocol, ip("10.0.0.5"), ip("10.0.0.21"));
    assert_eq!(i.evidence["protocol"], "ftp");
    assert_eq!(a.len(), 2, "{a:#?}");
    let json = serde_json::to_string(&a).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
    // USER without PASS is not a credential; AUTH TLS is not insecure.
    let t = conversation("10.0.0.5", 40000, "10.0.0.21", 21, &[(true, b"AUTH TLS\r\n"), (false, b"234 go\r\n")]);
    assert!(run(&t).is_empty());
    let t = conversation("10.0.0.5", 40000, "10.0.0.21", 21, &[(true, b"USER alice\r\n")]);
    none(&run(&t), Category::PlaintextCredentials);
}

#[test]
fn telnet_login_user_is_kept_password_keystrokes_are_not() {
    let mut msgs: Vec<(bool, &[u8])> =
        vec![(false, b"\xff\xfd\x18\xff\xfd\x20"), (false, b"\r\nOpenBSD (oof)\r\n\r\nlogin: ")];
    for c in [b"f", b"a", b"k", b"e", b"\r"] {
        msgs.push((true, c));
        msgs.push((false, c)); // echo
    }
    msgs.push((false, b"\r\nPassword:"));
    for c in [b"u", b"s", b"e", b"r", b"\r"] {
        msgs.push((true, c));
    }
    msgs.push((false, b"\r\nLast login: Sat Nov 27 20:11:43 on ttyp2 from bam.zing.org\r\n$ "));
    let a = run(&conversation("192.168.0.2", 1550, "192.168.0.1", 23, &msgs));
    let c = one(&a, Category::PlaintextCredentials, ip("192.168.0.2"), ip("192.168.0.1"));
    assert_eq!(c.evidence["protocol"], "telnet");
    assert_eq!(c.evidence["user"], "fake");
    one(&a, Category::InsecureProtocol, ip("192.168.0.2"), ip("192.168.0.1"));
    // A prompt never answered with a password is no credential.
    let a = run(&conversation("192.168.0.2", 1550, "192.168.0.1", 23, &msgs[..8]));
    none(&a, Category::PlaintextCredentials);
}

#[test]
fn http_basic_pop3_imap_smtp_and_redis_credentials() {
    let cases: Vec<(u16, Vec<(bool, &[u8])>, &str, Option<&str>)> = vec![
        (
            8000,
            vec![(true, b"GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dGVzdDp0ZXN0\r\n\r\n")],
            "http_basic",
            Some("test"),
        ),
        (110, vec![(false, b"+OK\r\n"), (true, b"USER bob\r\n"), (true, b"PASS hunter2\r\n")], "pop3", Some("bob")),
        (143, vec![(false, b"* OK\r\n"), (true, b"a001 LOGIN carol hunter2\r\n")], "imap", Some("carol")),
        // AUTH PLAIN with the initial response: \0dave\0hunter2
        (587, vec![(true, b"EHLO x\r\n"), (true, b"AUTH PLAIN AGRhdmUAaHVudGVyMg==\r\n")], "smtp", Some("dave")),
        // AUTH LOGIN: user and password on the next two lines.
        (587, vec![(true, b"AUTH LOGIN\r\n"), (true, b"ZXZl\r\n"), (true, b"aHVudGVyMg==\r\n")], "smtp", Some("eve")),
        (6379, vec![(true, b"*2\r\n$4\r\nAUTH\r\n$7\r\nhunter2\r\n")], "redis", Some("default")),
    ];
    for (port, msgs, proto, user) in cases {
        let a = run(&conversation("10.0.0.5", 40000, "10.0.0.9", port, &msgs));
        let c = one(&a, Category::PlaintextCredentials, ip("10.0.0.5"), ip("10.0.0.9"));
        assert_eq!(c.evidence["protocol"], proto, "{c:#?}");
        assert_eq!(c.evidence["user"].as_str(), user, "{c:#?}");
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("hunter2") && !json.contains("dGVzdDp0ZXN0"), "{json}");
    }
    // STARTTLS before any login: nothing in clear.
    let a = run(&conversation("10.0.0.5", 40000, "10.0.0.9", 143, &[(true, b"a001 STARTTLS\r\n")]));
    none(&a, Category::PlaintextCredentials);
    none(&a, Category::InsecureProtocol);
}

#[test]
fn unencrypted_http_once_per_cooldown_with_count() {
    let req = |i: u32| {
        TcpPacket::new("10.0.0.5", 40000, "93.184.216.34", 80)
            .flags(flags::PSH_ACK)
            .seq(1 + i * 100)
            .payload(b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n")
            .build()
    };
    let mut t: Trace = (0..10).map(|i| (f64::from(i), req(i))).collect();
    t.push((70.0, req(11)));
    let a = run(&t);
    let h = of(&a, Category::UnencryptedHttp);
    assert_eq!(h.len(), 2, "{a:#?}");
    assert_eq!(h[0].evidence["host"], "example.com");
    assert_eq!(h[0].evidence["path"], "/index.html");
    assert_eq!(h[0].severity, Severity::Info);
    assert_eq!(h[1].evidence["suppressed_since_last"], 9);
    assert_eq!(h[1].evidence["occurrences"], 11);
    // Responses and TLS are not requests.
    let resp = TcpPacket::new("93.184.216.34", 80, "10.0.0.5", 40000)
        .flags(flags::PSH_ACK)
        .payload(b"HTTP/1.1 200 OK\r\n\r\n")
        .build();
    let tls = TcpPacket::new("10.0.0.5", 40001, "93.184.216.34", 443)
        .flags(flags::PSH_ACK)
        .payload(&tls_client_hello("example.com"))
        .build();
    none(&run(&vec![(0.0, resp), (1.0, tls)]), Category::UnencryptedHttp);
}

#[test]
fn insecure_protocols_by_content() {
    let smb1 = conversation("10.0.0.5", 40000, "10.0.0.9", 445, &[(true, b"\x00\x00\x00\x2f\xffSMBr\x00\x00\x00\x00")]);
    assert_eq!(
        one(&run(&smb1), Category::InsecureProtocol, ip("10.0.0.5"), ip("10.0.0.9")).evidence["protocol"],
        "smbv1"
    );
    let smb2 = conversation("10.0.0.5", 40000, "10.0.0.9", 445, &[(true, b"\x00\x00\x00\x2f\xfeSMB@\x00\x00\x00\x00")]);
    none(&run(&smb2), Category::InsecureProtocol);
    let snmp = udp(
        "10.0.0.5",
        40000,
        "10.0.0.9",
        161,
        &[0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c'],
    );
    assert_eq!(
        one(&run(&vec![(0.0, snmp)]), Category::InsecureProtocol, ip("10.0.0.5"), ip("10.0.0.9")).evidence["protocol"],
        "snmpv2c"
    );
    let snmp3 = udp("10.0.0.5", 40000, "10.0.0.9", 161, &[0x30, 0x29, 0x02, 0x01, 0x03, 0x30]);
    none(&run(&vec![(0.0, snmp3)]), Category::InsecureProtocol);
    let vnc = conversation("10.0.0.5", 40000, "10.0.0.9", 5900, &[(false, b"RFB 003.008\n")]);
    assert_eq!(one(&run(&vnc), Category::InsecureProtocol, ip("10.0.0.5"), ip("10.0.0.9")).evidence["protocol"], "vnc");
    // A SYN to telnet with no conversation is not use of telnet.
    let syn = TcpPacket::new("10.0.0.5", 40000, "10.0.0.9", 23).flags(flags::SYN).build();
    none(&run(&vec![(0.0, syn)]), Category::InsecureProtocol);
}

fn tls_session(server: &str, version: u16, sni: &str, cert: Option<&[u8]>, port_offset: u16) -> Trace {
    let mut server_msg = tls_server_hello(version, 0x0005);
    if let Some(c) = cert {
        server_msg.extend(tls_certificate(&[c]));
    }
    conversation("10.0.0.5", 40000 + port_offset, server, 443, &[(true, &tls_client_hello(sni)), (false, &server_msg)])
}

#[test]
fn weak_tls_versions() {
    let a = run(&tls_session("198.51.100.1", 0x0301, "old.example", None, 0));
    let w = one(&a, Category::WeakTls, ip("10.0.0.5"), ip("198.51.100.1"));
    assert_eq!(w.evidence["version"], "TLS 1.0");
    assert_eq!(w.evidence["sni"], "old.example");
    assert_eq!(w.severity, Severity::Medium);
    let a = run(&tls_session("198.51.100.1", 0x0302, "old.example", None, 0));
    assert_eq!(one(&a, Category::WeakTls, ip("10.0.0.5"), ip("198.51.100.1")).evidence["version"], "TLS 1.1");
    let a = run(&tls_session("198.51.100.1", 0x0300, "old.example", None, 0));
    assert_eq!(one(&a, Category::WeakTls, ip("10.0.0.5"), ip("198.51.100.1")).severity, Severity::High);
    assert!(run(&tls_session("198.51.100.1", 0x0303, "ok.example", None, 0)).is_empty());
    assert!(run(&tls_session("198.51.100.1", 0x0304, "ok.example", None, 0)).is_empty());
}

fn cert(name: &str) -> Vec<u8> {
    rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap().cert.der().to_vec()
}

#[test]
fn certificate_change_for_one_name() {
    let (c1, c2) = (cert("shop.example"), cert("shop.example"));
    let mut t = tls_session("198.51.100.1", 0x0303, "shop.example", Some(&c1), 0);
    t.extend(
        tls_session("198.51.100.1", 0x0303, "shop.example", Some(&c1), 1).into_iter().map(|(ts, f)| (ts + 10.0, f)),
    );
    assert!(run(&t).is_empty(), "same certificate twice");
    t.extend(
        tls_session("198.51.100.2", 0x0303, "shop.example", Some(&c2), 2).into_iter().map(|(ts, f)| (ts + 20.0, f)),
    );
    let a = run(&t);
    let c = one(&a, Category::TlsCertificateChange, ip("198.51.100.2"), None);
    assert_eq!(c.evidence["name"], "shop.example");
    assert_ne!(c.evidence["old_sha256"], c.evidence["new_sha256"]);
    assert_eq!(a.len(), 1, "{a:#?}");
    // Another name with its own certificate is not a change.
    let mut t = tls_session("198.51.100.1", 0x0303, "a.example", Some(&c1), 0);
    t.extend(tls_session("198.51.100.1", 0x0303, "b.example", Some(&c2), 1).into_iter().map(|(ts, f)| (ts + 10.0, f)));
    assert!(run(&t).is_empty());
}

#[test]
fn session_hijack_by_mac_and_by_sequence() {
    // A connection, then a segment of the client's direction from another MAC.
    let mut t = conversation("10.0.0.5", 40000, "10.0.0.9", 8080, &[(true, b"hello"), (false, b"world")]);
    let injected = TcpPacket::new("10.0.0.5", 40000, "10.0.0.9", 8080)
        .macs(mac(66), mac(2))
        .flags(flags::PSH_ACK)
        .seq(1005)
        .payload(b"rm -rf")
        .build();
    t.push((1.0, injected));
    let a = run(&t);
    let h = one(&a, Category::SessionHijack, ip("10.0.0.5"), ip("10.0.0.9"));
    assert_eq!(h.evidence["kind"], "mac_conflict");
    assert_eq!(h.src_mac.as_deref(), Some("02:00:00:00:00:42"));
    // Three data segments 5 MB off the expected sequence number.
    let desync = |n: u32| {
        let mut t = conversation("10.0.0.5", 40000, "10.0.0.9", 8080, &[(true, b"hello")]);
        for i in 0..n {
            let seq = if i % 2 == 0 { 1005 + 5_000_000 } else { 1005 };
            t.push((
                1.0 + f64::from(i),
                TcpPacket::new("10.0.0.5", 40000, "10.0.0.9", 8080)
                    .flags(flags::PSH_ACK)
                    .seq(seq)
                    .payload(b"x")
                    .build(),
            ));
        }
        t
    };
    let a = run(&desync(3));
    assert_eq!(one(&a, Category::SessionHijack, ip("10.0.0.5"), ip("10.0.0.9")).evidence["kind"], "sequence_desync");
    none(&run(&desync(2)), Category::SessionHijack);
    // Retransmissions and a long ordinary transfer are fine.
    let mut msgs: Vec<(bool, &[u8])> = Vec::new();
    let chunk = [7u8; 1400];
    for _ in 0..2000 {
        msgs.push((false, &chunk));
    }
    let mut t = conversation("10.0.0.5", 40000, "10.0.0.9", 8080, &msgs);
    let again = t[10].clone();
    t.push((100.0, again.1));
    none(&run(&t), Category::SessionHijack);
}
