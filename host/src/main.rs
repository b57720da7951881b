//! The `game-host` binary: parse the command line, load config, set up logging, take or bind
//! the listening sockets, serve; restart into a successor on `SIGUSR2`.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use host::clock::{Clock, SystemClock};
use host::config::Sources;
use host::handover::{self, Handover, RestartRequests};
use host::store::sole_user::SoleUser;
use host::{logging, Config, Deps, Host};
use prometheus_client::metrics::counter::Counter;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc rather than glibc's malloc: under load the request path spent about 15% of its
/// time in malloc and free (bench/RESULTS.md). Module libraries keep their own allocator; what
/// crosses the boundary is freed through abi_stable's vtables by the side that allocated it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "game-host",
    version,
    about = "HTTP game server with hot-swappable game modules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the client protocol with the modules in the plugins directory.
    Serve(ServeArgs),
    /// Load and check one module library without serving; exit 0 if the host would load it.
    Check {
        /// The library to check (a `.so` file).
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the effective configuration (every source applied, secrets redacted) as TOML.
    Config(ServeArgs),
    /// Sign module libraries: writes FILE.so.sig (Ed25519 over the file's bytes), which a host
    /// with trust.require_signature needs beside the library.
    Sign {
        /// The private key (PEM, mode 0600), as `game-host keygen` writes it.
        #[arg(long)]
        key: PathBuf,
        /// The libraries to sign.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Make a signing key pair: the private key (mode 0600) for `game-host sign`, and the
    /// public key for trust.public_keys.
    Keygen {
        /// Where to write the private key; it must not exist yet.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the public key [default: KEY with the extension .pub].
        #[arg(long)]
        public: Option<PathBuf>,
    },
}

#[derive(Args)]
struct ConfigArgs {
    /// A config file, applied over the profile.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A profile: the file config/<NAME>.toml (dev, prod).
    #[arg(long)]
    profile: Option<String>,
    /// Where profile files live.
    #[arg(long, default_value = "config")]
    config_dir: PathBuf,
}

/// The config sources, and the flags that override them all.
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of module libraries (`*.so`).
    #[arg(long)]
    plugins_dir: Option<PathBuf>,
    /// Directory for the database.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Directory for log files.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Folder of files to serve beside the API (the demo page: `client`).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// Address of the admin API; off loopback it needs admin.token (or GAME_HOST_ADMIN_TOKEN).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// The database: sqlite://PATH, postgres://USER:PASSWORD@HOST/DB or mysql://… (store.url;
    /// better given as GAME_HOST_DATABASE_URL, which other users cannot see in `ps`).
    #[arg(long)]
    database_url: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check { file, config } => check(&file, &config),
        Command::Config(args) => print_config(&args),
        Command::Sign { key, files } => sign(&key, &files),
        Command::Keygen { key, public } => keygen(&key, public),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("game-host: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &ConfigArgs) -> anyhow::Result<Config> {
    Ok(Config::load(Sources {
        config_dir: &args.config_dir,
        profile: args.profile.as_deref(),
        file: args.config.as_deref(),
        env: std::env::vars().collect(),
    })?)
}

/// Every source, flags last.
fn effective_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = load_config(&args.config)?;
    let paths = &mut config.paths;
    for (flag, field) in [
        (&args.plugins_dir, &mut paths.plugins_dir),
        (&args.data_dir, &mut paths.data_dir),
        (&args.log_dir, &mut paths.log_dir),
    ] {
        if let Some(value) = flag {
            field.clone_from(value);
        }
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = &args.static_dir {
        config.paths.static_dir = Some(dir.clone());
    }
    if let Some(admin) = args.admin_listen {
        config.admin.listen = Some(admin);
    }
    if let Some(url) = &args.database_url {
        config.store.url.clone_from(url);
    }
    config.validate()?;
    Ok(config)
}

fn print_config(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config = effective_config(args)?;
    println!("# effective configuration: defaults < profile < --config < GAME_HOST_* < flags");
    print!("{}", config.to_toml_redacted());
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = effective_config(&args)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let log_dropped = Counter::default();
    let (log, flush_on_exit) = logging::init(
        &config.log,
        &config.paths.log_dir,
        clock.clone(),
        log_dropped.clone(),
    )?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let deps = Deps {
        clock,
        log_dropped,
        ..Deps::new(log.clone())
    };
    let served = runtime.block_on(serve_until_stopped(config, deps));
    if let Err(e) = &served {
        slog::crit!(log, "the host stopped on an error"; "error" => format!("{e:#}"));
    }
    drop(runtime);
    drop(log);
    // Every line logged so far is written before the process exits.
    drop(flush_on_exit);
    served.map(|()| ExitCode::SUCCESS)
}

async fn serve_until_stopped(config: Config, mut deps: Deps) -> anyhow::Result<()> {
    let log = deps.log.clone();
    let (client, admin) = listeners(&config)?;
    let address = client.local_addr()?;
    let handover = Handover::new(
        client.try_clone()?,
        admin
            .as_ref()
            .map(std::net::TcpListener::try_clone)
            .transpose()?,
        Duration::from_secs(config.server.handover_timeout_secs),
    );
    let (restart, requests) = RestartRequests::channel();
    deps.admin_listener = admin;
    deps.restart = Some(restart.clone());
    let host = Host::start(config, deps).await?;
    let sole_user = Arc::new(SoleUser::new(host.state().store.clone()));
    if let Some(predecessor) = handover::predecessor() {
        // The predecessor still serves its last requests on the same database.
        sole_user.predecessor_running(true).await;
        tokio::spawn(sole_user_once_exited(
            predecessor,
            sole_user.clone(),
            log.clone(),
        ));
    }
    let handed_over = Arc::new(tokio::sync::Notify::new());
    let (stop_restarts, restarts_stopped) = tokio::sync::oneshot::channel();
    let restarter = tokio::spawn(restart_on_request(
        handover,
        requests,
        restarts_stopped,
        handed_over.clone(),
        host.state(),
        sole_user,
    ));
    tokio::spawn(restart_on_user2(restart, log.clone()));
    announce(&format!("listening on {address}"));
    if let Some(admin) = host.admin_addr() {
        announce(&format!("admin listening on {admin}"));
        slog::info!(log, "admin API listening"; "address" => %admin);
    }
    slog::info!(log, "serving"; "address" => %address, "modules" => host.scan.loaded.join(","), "pid" => std::process::id());
    if let Err(e) = handover::notify_ready() {
        slog::warn!(log, "cannot tell the predecessor that this host is ready"; "error" => %e);
    }
    client.set_nonblocking(true)?;
    let client = tokio::net::TcpListener::from_std(client)?;
    let stop = async {
        tokio::select! {
            () = shutdown_signal() => {}
            () = handed_over.notified() => {}
        }
        // The copies of the listening sockets kept for a successor close before the host's
        // own: while one is open the kernel goes on queueing connections that nobody accepts,
        // and resets them, requests and all, when the process exits.
        let _ = stop_restarts.send(());
        let _ = restarter.await;
    };
    host.serve(client, stop).await;
    Ok(())
}

/// The client and admin listeners: inherited (systemd, or a predecessor), else bound.
fn listeners(
    config: &Config,
) -> anyhow::Result<(std::net::TcpListener, Option<std::net::TcpListener>)> {
    if let Some(inherited) =
        handover::inherited_listeners().context("cannot take the inherited sockets (LISTEN_FDS)")?
    {
        return Ok((inherited.client, inherited.admin));
    }
    let bind = |address: SocketAddr| {
        std::net::TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))
    };
    let client = bind(config.server.listen)?;
    let admin = config.admin.listen.map(bind).transpose()?;
    Ok((client, admin))
}

/// Serves restart requests one at a time until a successor has taken over, or until `stop`
/// (a restart under way is finished first). `handover`, and its copies of the sockets, are
/// dropped on return.
async fn restart_on_request(
    handover: Handover,
    mut requests: tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<Result<u32, String>>>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    handed_over: Arc<tokio::sync::Notify>,
    state: host::state::AppState,
    sole_user: Arc<SoleUser>,
) {
    let log = &state.log;
    loop {
        let reply = tokio::select! {
            // A stop that comes with a restart request wins: no successor starts after it.
            biased;
            _ = &mut stop => return,
            request = requests.recv() => match request {
                Some(reply) => reply,
                None => return,
            },
        };
        slog::info!(
            log,
            "restart: starting a successor with this host's sockets"
        );
        // From now on the successor may write the database too.
        sole_user.successor_running(true).await;
        let outcome = handover.start_successor().await;
        let taken_over = outcome.is_ok();
        if !taken_over {
            sole_user.successor_running(false).await;
        }
        match &outcome {
            Ok(pid) => {
                slog::info!(log, "restart: the successor serves; this host drains and exits"; "successor_pid" => pid);
                announce(&format!("successor {pid} ready"));
            }
            Err(e) => slog::error!(log, "restart failed; this host keeps serving"; "error" => %e),
        }
        let _ = reply.send(outcome.map_err(|e| e.to_string()));
        if taken_over {
            handed_over.notify_one();
            return;
        }
    }
}

/// Tells the store once the predecessor has exited: this process, its child until then, has
/// been re-parented.
async fn sole_user_once_exited(predecessor: u32, sole_user: Arc<SoleUser>, log: slog::Logger) {
    let mut check = tokio::time::interval(Duration::from_millis(100));
    while std::os::unix::process::parent_id() == predecessor {
        check.tick().await;
    }
    if sole_user.predecessor_running(false).await {
        slog::info!(log, "restart: the predecessor has exited; this host is the database's only user"; "predecessor_pid" => predecessor);
    } else {
        slog::info!(log, "restart: the predecessor has exited; a successor shares the database"; "predecessor_pid" => predecessor);
    }
}

/// `SIGUSR2` asks for a restart, as `POST /admin/restart` does.
async fn restart_on_user2(restart: RestartRequests, log: slog::Logger) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut user2) = signal(SignalKind::user_defined2()) else {
        return;
    };
    while user2.recv().await.is_some() {
        slog::info!(log, "SIGUSR2: restarting the host binary");
        if restart.request().await.is_ok() {
            return;
        }
    }
}

/// A line for whoever started the host (scripts, tests) on stdout. A serving host's stdout may
/// be closed by then; that must not stop it, so errors are ignored (`println!` would panic).
fn announce(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn check(file: &Path, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let checked = runtime.block_on(host::check::check(file, &config, &logging::discard()));
    match checked {
        Ok(checked) => {
            let meta = &checked.meta;
            println!("ok: {} would be loaded", file.display());
            println!("name: {}", meta.name);
            println!("prefix: {}", meta.prefix);
            println!("version: {}", meta.version);
            println!("commands: {}", meta.commands.join(", "));
            println!("sha256: {}", meta.sha256);
            if let Some(key) = &checked.signed_by {
                println!("signed by: {key}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(host::check::CheckError::Refused(refused)) => {
            println!("refused: {refused}");
            Ok(ExitCode::FAILURE)
        }
        Err(cannot) => Err(cannot.into()),
    }
}

fn sign(key: &Path, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    for file in files {
        let sig = host::plugins::trust::signature::sign_file(key, file)?;
        println!("signed {}: {}", file.display(), sig.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn keygen(key: &Path, public: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let public = public.unwrap_or_else(|| key.with_extension("pub"));
    let pem = host::plugins::trust::signature::generate(key, &public)?;
    println!(
        "private key: {} (mode 0600; keep it off the servers that run modules)",
        key.display()
    );
    println!(
        "public key: {} (list it in trust.public_keys)",
        public.display()
    );
    print!("{pem}");
    Ok(ExitCode::SUCCESS)
}
