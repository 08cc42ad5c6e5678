//! Unit tests of the runner: formats, errors, thread-count invariance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

use vigil_detect::testutil::{TcpPacket, flags, icmp_echo, pcap_bytes};

use super::*;

fn write_pcap(dir: &Path, name: &str, packets: &[(i64, Vec<u8>)]) -> PathBuf {
    let path = dir.join(name);
    let bytes = pcap_bytes(1, packets.iter().map(|(t, p)| (*t, p.as_slice())));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn attack_trace() -> Vec<(i64, Vec<u8>)> {
    let mut t = Vec::new();
    for i in 0..40u16 {
        t.push((
            1_000_000_000 + i64::from(i) * 10_000_000,
            TcpPacket::new("10.0.0.66", 50000, "10.0.0.1", 1 + i).flags(flags::SYN).build(),
        ));
    }
    for i in 0..120u16 {
        t.push((2_000_000_000 + i64::from(i) * 5_000_000, icmp_echo("10.0.0.70", "10.0.0.1", 1, i, b"ping")));
    }
    for i in 0..3u16 {
        t.push((
            3_000_000_000 + i64::from(i),
            TcpPacket::new("10.0.0.5", 40000 + i, "93.184.216.34", 80)
                .flags(flags::PSH_ACK)
                .payload(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                .build(),
        ));
    }
    t
}

fn run(opts: &AnalyzeOptions) -> (String, Summary) {
    let mut out = Vec::new();
    let s = analyze(opts, &mut out, &mut NoProgress).unwrap();
    (String::from_utf8(out).unwrap(), s)
}

#[test]
fn json_lines_summary_and_thread_invariance() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_pcap(dir.path(), "a.pcap", &attack_trace());
    let mut opts = AnalyzeOptions { files: vec![f.clone(), f], ..AnalyzeOptions::default() };
    let (one, s) = run(&opts);
    assert_eq!(s.packets, 2 * 163);
    assert_eq!(s.files.len(), 2);
    let lines: Vec<serde_json::Value> = one.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|v| v["category"] == "port_scan"));
    assert!(lines.iter().any(|v| v["category"] == "icmp_flood"));
    assert!(lines.iter().any(|v| v["category"] == "unencrypted_http"));
    for v in &lines {
        for k in [
            "id",
            "timestamp",
            "category",
            "severity",
            "agent",
            "src_ip",
            "dst_ip",
            "src_port",
            "dst_port",
            "src_mac",
            "summary",
            "evidence",
            "mitre",
        ] {
            assert!(v.get(k).is_some(), "missing {k} in {v}");
        }
    }
    assert_eq!(s.alerts_total as usize, lines.len());
    assert!(s.to_string().contains("analyzed 326 packets"), "{s}");
    for threads in [2, 3, 4] {
        opts.threads = threads;
        let (n, s2) = run(&opts);
        assert_eq!(n, one, "threads = {threads}");
        assert_eq!(s2.alerts, s.alerts);
        assert_eq!(s2.packets, s.packets);
    }
}

#[test]
fn fail_on_and_table_format() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_pcap(dir.path(), "a.pcap", &attack_trace());
    let opts = AnalyzeOptions { files: vec![f.clone()], fail_on: Some(Severity::High), ..AnalyzeOptions::default() };
    let r = analyze(&opts, &mut Vec::new(), &mut NoProgress);
    assert_eq!(exit_code(&r), 1); // icmp_flood is high
    let opts =
        AnalyzeOptions { files: vec![f.clone()], fail_on: Some(Severity::Critical), ..AnalyzeOptions::default() };
    assert_eq!(exit_code(&analyze(&opts, &mut Vec::new(), &mut NoProgress)), 0);
    let opts = AnalyzeOptions { files: vec![f], format: OutputFormat::Table, ..AnalyzeOptions::default() };
    let (text, _) = run(&opts);
    assert!(text.starts_with("TIME"), "{text}");
    assert!(text.contains("icmp_flood") && text.contains("10.0.0.70 -> 10.0.0.1"), "{text}");
    assert_eq!("table".parse::<OutputFormat>(), Ok(OutputFormat::Table));
    assert!("xml".parse::<OutputFormat>().is_err());
}

#[test]
fn errors_name_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pcap");
    let e = analyze(
        &AnalyzeOptions { files: vec![missing], ..AnalyzeOptions::default() },
        &mut Vec::new(),
        &mut NoProgress,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope.pcap"), "{e}");
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let r =
        analyze(&AnalyzeOptions { files: vec![junk], ..AnalyzeOptions::default() }, &mut Vec::new(), &mut NoProgress);
    assert_eq!(exit_code(&r), 2);
    assert!(r.unwrap_err().to_string().contains("junk.pcap"));
    // An unsupported link type.
    let odd = dir.path().join("odd.pcap");
    let mut bytes = vigil_detect::testutil::pcap_header(147).to_vec();
    bytes.extend_from_slice(&vigil_detect::testutil::pcap_record_header(0, 4, 4));
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    std::fs::write(&odd, bytes).unwrap();
    let e =
        analyze(&AnalyzeOptions { files: vec![odd], ..AnalyzeOptions::default() }, &mut Vec::new(), &mut NoProgress)
            .unwrap_err();
    assert!(matches!(e, AnalyzeError::UnsupportedLinkType { link_type: 147, .. }), "{e}");
    assert!(matches!(
        analyze(&AnalyzeOptions::default(), &mut Vec::new(), &mut NoProgress),
        Err(AnalyzeError::NoInput)
    ));
}

#[test]
fn config_and_blocklist_files() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_pcap(dir.path(), "a.pcap", &attack_trace());
    let cfg = dir.path().join("detect.toml");
    std::fs::write(&cfg, "[icmp_flood]\nthreshold = 1000\n").unwrap();
    let bl = dir.path().join("bad.txt");
    let mut h = std::fs::File::create(&bl).unwrap();
    writeln!(h, "# test list\n93.184.216.0/24 # example\nevil.example").unwrap();
    let opts = AnalyzeOptions {
        files: vec![f.clone()],
        config: Some(cfg.clone()),
        blocklists: vec![bl.clone()],
        ..AnalyzeOptions::default()
    };
    let (text, s) = run(&opts);
    assert!(!s.alerts.contains_key(&Category::IcmpFlood), "{text}");
    assert!(s.alerts.contains_key(&Category::ThreatIntelMatch), "{text}");
    // Errors name file and line or key.
    std::fs::write(&cfg, "[icmp_flood]\nthreshhold = 1000\n").unwrap();
    let e = analyze(&opts, &mut Vec::new(), &mut NoProgress).unwrap_err();
    assert!(e.to_string().contains("detect.toml:2"), "{e}");
    std::fs::write(&cfg, "[icmp_flood]\nthreshold = 0\n").unwrap();
    let e = analyze(&opts, &mut Vec::new(), &mut NoProgress).unwrap_err();
    assert!(e.to_string().contains("icmp_flood.threshold"), "{e}");
    std::fs::write(&cfg, "").unwrap();
    std::fs::write(&bl, "10.0.0.1\n\n10.0.0.0/99\n").unwrap();
    let e = analyze(&opts, &mut Vec::new(), &mut NoProgress).unwrap_err();
    assert!(e.to_string().contains("bad.txt:3"), "{e}");
}
