//! The `game-host` binary: parse the command line, set up logging, load config, bind, serve.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use host::{logging, Config, Deps, Host};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    /// Address of the admin API; off loopback it needs admin.token (or GAME_HOST_ADMIN_TOKEN).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check { file, config } => check(&file, &config),
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
    Ok(Config::load(
        &args.config_dir,
        args.profile.as_deref(),
        args.config.as_deref(),
    )?)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(&args.config)?;
    let paths = &mut config.paths;
    for (flag, field) in [
        (args.plugins_dir, &mut paths.plugins_dir),
        (args.data_dir, &mut paths.data_dir),
        (args.log_dir, &mut paths.log_dir),
    ] {
        if let Some(value) = flag {
            *field = value;
        }
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(admin) = args.admin_listen {
        config.admin.listen = Some(admin);
    }
    if let Ok(token) = std::env::var("GAME_HOST_ADMIN_TOKEN") {
        config.admin.token = Some(token);
    }
    config.validate()?;
    let (log, _flush_on_exit) = logging::init(&config.paths.log_dir, &config.log.level)
        .with_context(|| {
            format!(
                "cannot open the log directory {}",
                config.paths.log_dir.display()
            )
        })?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let address = listener.local_addr()?;
        let host = Host::start(config, Deps::new(log.clone())).await?;
        println!("listening on {address}");
        if let Some(admin) = host.admin_addr() {
            slog::info!(log, "admin API listening"; "address" => %admin);
        }
        slog::info!(log, "serving"; "address" => %address, "modules" => host.scan.loaded.join(","));
        host.serve(listener, shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
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
    match host::check::check(file, &config, &logging::discard()) {
        Ok(meta) => {
            println!("ok: {} would be loaded", file.display());
            println!("name: {}", meta.name);
            println!("prefix: {}", meta.prefix);
            println!("version: {}", meta.version);
            println!("commands: {}", meta.commands.join(", "));
            println!("sha256: {}", meta.sha256);
            Ok(ExitCode::SUCCESS)
        }
        Err(refused) => {
            println!("refused: {refused}");
            Ok(ExitCode::FAILURE)
        }
    }
}
