//! What the user can type (clap). Validation beyond shapes happens in the library crates.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vigil_config::HumanDuration;

/// The server's default data dir, also where `vigil certs` looks unless told otherwise.
const DEFAULT_DATA_DIR: &str = "/var/lib/vigil";

/// vigil: a distributed, secure network and host security monitor.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). VIGIL_LOG=<filter> overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the built-in PKI: CA, server certificate, agent credentials.
    #[command(subcommand)]
    Certs(CertsCmd),
    /// Run the server.
    Server(ServerArgs),
    /// Run an agent.
    Agent(AgentArgs),
    /// Run a server and three demo agents replaying a synthetic attack, for a first look.
    Demo(DemoArgs),
    /// Print an example configuration or check a configuration file.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Run the detection engine over capture files (pcap, pcapng, gzip): one JSON alert per
    /// line on stdout, a summary on stderr. Exit 0, 1 with --fail-on hit, 2 on bad input.
    Analyze(AnalyzeArgs),
    /// Manage API keys (works on the database directly; the server may be running).
    #[command(subcommand)]
    Apikey(ApikeyCmd),
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCmd {
    /// Create a key and print it (shown once; only its hash is stored).
    Create {
        /// Data dir of the server.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// What the key may do: viewer (read), operator (also ack, resolve, block, silence), admin (also keys, audit log).
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// A label, e.g. who or what uses it.
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List {
        /// Data dir of the server.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Revoke a key: refused from now on, and its dashboard sessions end.
    Revoke {
        /// Key id (the 16 hex digits after `vgl_`; see `vigil apikey list`).
        id: String,
        /// Data dir of the server.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CertsCmd {
    /// Create the CA and the server certificate.
    Init {
        /// Data dir of the server (the PKI goes into DIR/pki).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        dir: PathBuf,
        /// Name or IP address agents use to reach the server (repeatable). Default: localhost and 127.0.0.1.
        #[arg(long = "server-name")]
        server_name: Vec<String>,
        /// Replace an existing PKI (every issued agent credential stops working).
        #[arg(long)]
        force: bool,
    },
    /// Issue a credential file for one agent.
    Agent {
        /// Agent id: 1-64 characters of A-Z a-z 0-9 . _ -
        id: String,
        /// Data dir of the server.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        dir: PathBuf,
        /// Where to write the credential file (mode 0600).
        #[arg(long)]
        out: PathBuf,
        /// Server URL to store in the credential, e.g. https://vigil.example.org:8443
        #[arg(long)]
        server: Option<String>,
        /// Replace an existing credential for this id.
        #[arg(long)]
        force: bool,
    },
    /// Revoke an agent: refused at the handshake and at ingest from now on.
    Revoke {
        /// Agent id.
        id: String,
        /// Data dir of the server.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Configuration file (TOML; see `vigil config example server`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data dir (database, PKI). Default /var/lib/vigil.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen address, e.g. 0.0.0.0:8443.
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Credential file from `vigil certs agent`.
    #[arg(long)]
    pub credentials: Option<PathBuf>,
    /// Server URL (overrides the one in the credential file).
    #[arg(long)]
    pub server: Option<String>,
    /// Metrics interval, e.g. 5s.
    #[arg(long, value_parser = HumanDuration::parse)]
    pub interval: Option<HumanDuration>,
    /// Configuration file (TOML; see `vigil config example agent`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// State dir (boot epoch, spool). Default: <agent id>.state next to the credential file.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Capture on this interface (repeatable; `any` for all). Default: the default route's.
    #[arg(long = "interface", value_name = "IF")]
    pub interfaces: Vec<String>,
    /// Push this capture file (pcap, pcapng, .gz) through detection and shipping instead of
    /// capturing live, to check a deployment end to end.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Demo data dir (created if missing, reused if present).
    #[arg(long, default_value = "vigil-demo")]
    pub dir: PathBuf,
    /// Listen address of the demo server.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Metrics interval of the demo agents.
    #[arg(long, default_value = "2s", value_parser = HumanDuration::parse)]
    pub interval: HumanDuration,
    /// Replay the synthetic attack this often, with fresh timestamps (`0s`: only at start).
    #[arg(long, default_value = "5m", value_parser = HumanDuration::parse)]
    pub replay_every: HumanDuration,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print a fully commented example configuration.
    Example {
        /// Which component.
        #[arg(value_enum, default_value = "server")]
        kind: ConfigKind,
    },
    /// Validate a configuration file; errors name the line, the key and what is expected.
    Check {
        /// The file.
        file: PathBuf,
        /// Which component the file is for (guessed from its keys when omitted).
        #[arg(long, value_enum)]
        kind: Option<ConfigKind>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConfigKind {
    /// The server.
    Server,
    /// An agent.
    Agent,
}

impl ConfigKind {
    pub fn name(self) -> &'static str {
        match self {
            ConfigKind::Server => "server",
            ConfigKind::Agent => "agent",
        }
    }
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Capture files, read in order as one packet stream.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Detection settings (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output format: json (one alert per line) or table.
    #[arg(long, default_value = "json")]
    pub format: String,
    /// Detection threads, 1 to 3: the detector groups are split across them and each
    /// decodes every packet, so more only pays with idle cores (see BENCHMARKS.md). The
    /// output is identical for any value.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Blocklist file: one IP, CIDR or domain per line (repeatable).
    #[arg(long)]
    pub blocklist: Vec<PathBuf>,
    /// Exit 1 when an alert at or above this severity is found (info, low, medium, high, critical).
    #[arg(long)]
    pub fail_on: Option<String>,
}
