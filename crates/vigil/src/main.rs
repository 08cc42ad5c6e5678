//! The `vigil` binary: parses the command line, loads configuration, sets up logging and
//! calls into the library crates. Nothing else lives here.

mod cli;
mod demo_capture;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::{ApikeyCmd, CertsCmd, Cli, Command, ConfigCmd, ConfigKind};
use demo_capture::DemoHost;
use vigil_agent::{AgentOverrides, AgentSettings};
use vigil_model::AgentId;
use vigil_pki::{InitOptions, Pki};
use vigil_server::{ServerOverrides, ServerSettings};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Certs(c) => certs(c),
        Command::Server(a) => {
            let ov = ServerOverrides { listen: a.listen, data_dir: a.data_dir };
            let settings = ServerSettings::load(a.config.as_deref(), &ov)?;
            runtime()?.block_on(vigil_server::run(settings, shutdown_signal()))?;
            Ok(())
        }
        Command::Agent(a) => {
            let ov = AgentOverrides {
                credentials: a.credentials,
                server_url: a.server,
                interval: a.interval.map(|d| d.0),
                state_dir: a.state_dir,
                interfaces: a.interfaces,
                pcap: a.pcap,
            };
            let settings = AgentSettings::load(a.config.as_deref(), &ov)?;
            runtime()?.block_on(vigil_agent::run(settings, shutdown_signal()))?;
            Ok(())
        }
        Command::Demo(d) => runtime()?.block_on(demo(d)),
        Command::Config(c) => config(c),
        Command::Analyze(a) => analyze(a),
        Command::Apikey(c) => runtime()?.block_on(apikey(c)),
    }
}

async fn apikey(c: ApikeyCmd) -> Result<()> {
    let open = |dir: &Path| {
        let db = dir.join(vigil_server::DATABASE_FILE);
        let dir = dir.to_owned();
        async move {
            if !db.exists() {
                bail!("no database at {}: start the server once with --data-dir {}", db.display(), dir.display());
            }
            Ok(vigil_store::Store::open(&db).await?)
        }
    };
    match c {
        ApikeyCmd::Create { data_dir, role, name } => {
            let role =
                vigil_server::apikey::Role::parse(&role).context("--role: expected viewer, operator or admin")?;
            let store = open(&data_dir).await?;
            let (row, text) = vigil_server::admin::make_key(&store, name.trim(), role)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create the key: {}", e.message))?;
            store.close().await;
            eprintln!("Created {} key {:?} (id {}). It is shown once; store it now:", row.role, row.name, row.id);
            println!("{text}");
        }
        ApikeyCmd::List { data_dir } => {
            let store = open(&data_dir).await?;
            let keys = store.list_api_keys().await?;
            store.close().await;
            println!("{:<16}  {:<8}  {:<20}  {:<25}  name", "id", "role", "created", "revoked");
            for k in keys {
                println!(
                    "{:<16}  {:<8}  {:<20}  {:<25}  {}",
                    k.id,
                    k.role,
                    k.created_at.format("%Y-%m-%d %H:%M:%S"),
                    k.revoked_at.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
                    k.name
                );
            }
        }
        ApikeyCmd::Revoke { id, data_dir } => {
            let store = open(&data_dir).await?;
            let Some(row) = store.api_key(&id).await? else {
                store.close().await;
                bail!("no API key with id {id:?}; see `vigil apikey list --data-dir {}`", data_dir.display());
            };
            let revoked = store.revoke_api_key(&id, chrono::Utc::now()).await?;
            let ended = store.delete_sessions_of_key(&id).await?;
            store.close().await;
            if revoked {
                println!("Key {id} ({:?}) revoked; {ended} dashboard session(s) ended.", row.name);
            } else {
                println!("Key {id} ({:?}) was already revoked.", row.name);
            }
        }
    }
    Ok(())
}

fn certs(c: CertsCmd) -> Result<()> {
    match c {
        CertsCmd::Init { dir, server_name, force } => {
            let names = if server_name.is_empty() { vec!["localhost".into(), "127.0.0.1".into()] } else { server_name };
            let report = Pki::at(&dir).init(&InitOptions { server_names: names.clone(), force })?;
            println!("PKI created in {}", Pki::at(&dir).pki_dir().display());
            println!("{report}");
            println!("Server certificate names: {}", names.join(", "));
            println!(
                "Next: vigil certs agent AGENT-ID --dir {} --out AGENT-ID.cred --server https://HOST:8443",
                dir.display()
            );
            Ok(())
        }
        CertsCmd::Agent { id, dir, out, server, force } => {
            let id = AgentId::new(id.clone()).with_context(|| format!("agent id {id:?}"))?;
            if let Some(url) = &server {
                vigil_agent::check_url(url).map_err(anyhow::Error::msg).context("--server")?;
            }
            let pki = Pki::at(&dir);
            if !pki.is_initialized() {
                bail!("no PKI in {}: run `vigil certs init --dir {}` first", pki.pki_dir().display(), dir.display());
            }
            if out.exists() && !force {
                bail!("{} already exists; pass --force to replace it", out.display());
            }
            let cred = pki.issue_agent(&id, server.as_deref(), force)?;
            cred.write(&out, force)?;
            println!("Credential for agent {id} written to {} (mode 0600; keep it secret).", out.display());
            println!("Copy it to the agent host and run: vigil agent --credentials {}", out.display());
            Ok(())
        }
        CertsCmd::Revoke { id, dir } => {
            let id = AgentId::new(id.clone()).with_context(|| format!("agent id {id:?}"))?;
            Pki::at(&dir).revoke(&id)?;
            println!("Agent {id} revoked: the server refuses its connections and messages from now on.");
            Ok(())
        }
    }
}

fn analyze(a: cli::AnalyzeArgs) -> Result<()> {
    let format = a.format.parse().map_err(|_| anyhow::anyhow!("--format {:?}: expected json or table", a.format))?;
    let fail_on = a.fail_on.as_deref().map(str::parse::<vigil_model::Severity>).transpose().context("--fail-on")?;
    let opts = vigil_analyze::AnalyzeOptions {
        files: a.files,
        config: a.config,
        blocklists: a.blocklist,
        threads: a.threads,
        format,
        fail_on,
        ..Default::default()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut progress = vigil_analyze::stderr_progress();
    let result = vigil_analyze::analyze(&opts, &mut out, progress.as_mut());
    match &result {
        Ok(s) => eprintln!("{s}"),
        Err(e) => eprintln!("error: {e}"),
    }
    drop(out);
    std::process::exit(vigil_analyze::exit_code(&result));
}

fn config(c: ConfigCmd) -> Result<()> {
    match c {
        ConfigCmd::Example { kind } => {
            match kind {
                ConfigKind::Server => print!("{}", vigil_server::EXAMPLE),
                ConfigKind::Agent => print!("{}", vigil_agent::EXAMPLE),
            }
            Ok(())
        }
        ConfigCmd::Check { file, kind } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let kind = match kind {
                Some(k) => k,
                None => guess_kind(&file, &text)?,
            };
            match kind {
                ConfigKind::Server => {
                    ServerSettings::parse(&file, &text, &ServerOverrides::default())?;
                }
                ConfigKind::Agent => {
                    AgentSettings::parse(&file, &text, &AgentOverrides::default())?;
                }
            }
            println!("{}: valid {} configuration", file.display(), kind.name());
            Ok(())
        }
    }
}

/// Agent files have keys a server file never has; anything else is checked as a server file.
fn guess_kind(file: &Path, text: &str) -> Result<ConfigKind> {
    let table: toml::Table = vigil_config::parse(file, text)?;
    let agent_keys =
        ["credentials", "server_url", "interval", "state_dir", "thresholds", "spool", "shipping", "capture", "detect"];
    Ok(if table.keys().any(|k| agent_keys.contains(&k.as_str())) { ConfigKind::Agent } else { ConfigKind::Server })
}

async fn demo(d: cli::DemoArgs) -> Result<()> {
    let dir = d.dir;
    let pki = Pki::at(&dir);
    if !pki.is_initialized() {
        pki.init(&InitOptions { server_names: vec!["localhost".into(), "127.0.0.1".into()], force: false })?;
        println!("Created a demo PKI in {}", pki.pki_dir().display());
    }
    let host = if d.listen.ip().is_unspecified() { "localhost".to_string() } else { d.listen.ip().to_string() };
    let url = format!("https://{host}:{}", d.listen.port());
    for watcher in DemoHost::ALL {
        let agent_id = AgentId::new(watcher.agent_id())?;
        let cred_path = dir.join(format!("{agent_id}.cred"));
        if !cred_path.exists() || pki.agent_record(&agent_id)?.is_none() {
            let cred = pki.issue_agent(&agent_id, Some(&url), true)?;
            cred.write(&cred_path, true)?;
        }
    }
    let settings = ServerSettings { listen: d.listen, data_dir: dir.clone(), ..ServerSettings::default() };
    let server = vigil_server::start(settings).await.context("starting the demo server")?;
    let key = match &server.initial_admin_key {
        Some(k) => k.clone(),
        None => std::fs::read_to_string(dir.join(vigil_server::INITIAL_ADMIN_KEY_FILE))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "(see the key printed when this demo dir was first used)".into()),
    };
    let base = format!("https://{host}:{}", server.local_addr.port());
    let mut agents = start_demo_agents(&dir, &base, d.interval.0).await?;
    let ca = pki.pki_dir().join("ca.crt");
    println!();
    println!("vigil demo is running (Ctrl-C to stop). Data dir: {}", abs(&dir).display());
    println!("  Server:   {base}");
    println!("  API key:  {key}");
    for watcher in DemoHost::ALL {
        println!("  Agent:    {:<11} replays a synthetic capture: {}", watcher.agent_id(), watcher.story());
    }
    let replay = d.replay_every.0;
    if replay.is_zero() {
        println!("  Metrics every {}; the attack is replayed once.", d.interval);
    } else {
        println!(
            "  Metrics every {}; the attack is replayed every {} with fresh timestamps.",
            d.interval, d.replay_every
        );
    }
    println!("Open {base}/ in a browser (trust {}) and sign in with the key, or try:", abs(&ca).display());
    let curl = format!("curl -s --cacert {} -H 'X-API-Key: {key}'", abs(&ca).display());
    println!("  {curl} {base}/api/v1/agents");
    println!("  {curl} '{base}/api/v1/agents/demo-agent/metrics?limit=5'");
    println!("  {curl} {base}/api/v1/alerts");
    println!("  {curl} {base}/api/v1/incidents");
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        let next_replay = async {
            if replay.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(replay).await;
        };
        tokio::select! {
            _ = &mut signal => break,
            _ = next_replay => {
                for agent in agents.drain(..) {
                    agent.shutdown().await;
                }
                match start_demo_agents(&dir, &base, d.interval.0).await {
                    Ok(a) => {
                        agents = a;
                        tracing::info!("demo attack replayed");
                    }
                    Err(e) => tracing::error!("cannot restart the demo agents: {e:#}"),
                }
            }
        }
    }
    // Not `println!`: with stdout piped to a reader that has gone (`vigil demo | head`), it
    // would panic here and skip the clean shutdown below.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), "Stopping…\n".as_bytes());
    for agent in agents {
        agent.shutdown().await;
    }
    server.shutdown().await;
    Ok(())
}

/// Writes each demo watcher's attack capture, stamped to end about now, into the demo dir
/// and starts its agent on it (host metrics as usual, packets from the file).
async fn start_demo_agents(
    dir: &Path,
    server_url: &str,
    interval: std::time::Duration,
) -> Result<Vec<vigil_agent::RunningAgent>> {
    // The captures span six seconds: stamp them to have just happened.
    let t0 = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - 6_000_000_000;
    let mut agents = Vec::new();
    for watcher in DemoHost::ALL {
        let id = watcher.agent_id();
        let pcap = dir.join(format!("{id}-attack.pcap"));
        watcher.write_pcap(&pcap, t0).with_context(|| format!("cannot write {}", pcap.display()))?;
        let mut settings = AgentSettings {
            credentials: Some(dir.join(format!("{id}.cred"))),
            server_url: Some(server_url.to_owned()),
            interval,
            ..AgentSettings::default()
        };
        settings.capture.pcap = Some(pcap);
        agents.push(vigil_agent::start(settings).await.with_context(|| format!("starting demo agent {id}"))?);
    }
    Ok(agents)
}

fn abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}
