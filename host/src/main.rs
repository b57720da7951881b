//! The `game-host` binary, a thin command line over the library: parse the arguments, load
//! the config (flags last), set up logging, then call it: `serve` is [`host::process::serve`]
//! (sockets, the restart path, signals), `check` is [`host::check::check`], `sign` and
//! `keygen` are [`host::plugins::trust::signature`]'s, `new-module` is
//! [`host::scaffold::new_module`].

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use host::clock::{Clock, SystemClock};
use host::config::Sources;
use host::{logging, Config, Deps};
use prometheus_client::metrics::counter::Counter;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
        /// Also check the library's saved-data migrations over this database's stored data of
        /// the module (`sqlite:PATH`, `postgres://…`, `mysql://…`), as a swap would.
        #[arg(long)]
        database_url: Option<String>,
        /// The module's data tables folder, if not `<module>.tables` beside FILE (a crate's
        /// `tables/` before it is installed).
        #[arg(long)]
        tables: Option<PathBuf>,
    },
    /// Print the effective configuration (every source applied, secrets redacted) as TOML.
    Config(ServeArgs),
    /// Publish module libraries to the fleet: each is checked as `check` does (over the
    /// database's saved data too), stored in the database with its .sig and data tables, and
    /// made its module's release for every host with plugins.source = "database".
    Publish {
        /// The libraries to publish (`.so` files), in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        fleet: FleetArgs,
        /// The module's data tables folder, if not `<module>.tables` beside the one FILE (a
        /// crate's `tables/`).
        #[arg(long)]
        tables: Option<PathBuf>,
        /// Publish as a canary for this percent of the players (chosen by a hash of their id,
        /// the same on every host), beside the release the others run; then `promote` or
        /// `rollback` it.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=99))]
        canary: Option<u8>,
    },
    /// Make a module's canary what every player runs, on the whole fleet.
    Promote {
        /// The module's name (`mall`).
        module: String,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Roll a module back on the whole fleet: its canary stops, or without one its previous
    /// published release becomes the one every host with plugins.source = "database" runs.
    Rollback {
        /// The module's name (`mall`).
        module: String,
        #[command(flatten)]
        fleet: FleetArgs,
    },
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
    /// Write a new module crate: one command (PREFIX01) with a typed request, a declared
    /// refusal, saved data and unit tests. Run in the host's workspace root, it goes to
    /// plugins/NAME and joins the workspace; with --dir, it is a crate of its own.
    NewModule {
        /// The module's name: a-z 0-9 _, starting with a letter.
        name: String,
        /// Its two-digit command prefix, not used by another module (the demo has 10, 11, 12).
        prefix: String,
        /// Make a crate of its own in this folder instead.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// With --dir: the plugin-api folder of the host's source [default: the one this
        /// binary was built from].
        #[arg(long)]
        plugin_api: Option<PathBuf>,
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

/// What the fleet's commands (`publish`, `promote`, `rollback`) take: the config, the database, and
/// who asks and why (for the audit log).
#[derive(Args)]
struct FleetArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The fleet's database (store.url; better given as GAME_HOST_DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,
    /// Why, for the audit log.
    #[arg(long, default_value = "from the command line")]
    reason: String,
    /// Who, for the audit log [default: $USER].
    #[arg(long)]
    operator: Option<String>,
}

impl FleetArgs {
    /// The config with `--database-url` applied, the database, and the audit note.
    fn resolve(self) -> anyhow::Result<(Config, host::store::DatabaseUrl, host::store::AuditNote)> {
        let mut config = load_config(&self.config)?;
        if let Some(url) = self.database_url {
            config.store.url = url;
        }
        config.validate()?;
        let database = config.database_url()?;
        let operator = self
            .operator
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "cli".to_owned());
        let note = host::store::AuditNote {
            operator,
            reason: self.reason,
            at_ms: SystemClock.now_millis(),
        };
        Ok((config, database, note))
    }
}

/// A runtime for a command that talks to the database once and exits.
fn one_shot_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
    /// Where the modules come from: `directory` (the plugins directory, watched) or
    /// `database` (the releases `game-host publish` stores; the directory caches them).
    #[arg(long, value_parser = ["directory", "database"])]
    plugins_source: Option<String>,
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
        Command::Check {
            file,
            config,
            database_url,
            tables,
        } => check(&file, &config, database_url.as_deref(), tables.as_deref()),
        Command::Config(args) => print_config(&args),
        Command::Publish {
            files,
            fleet,
            tables,
            canary,
        } => publish(&files, fleet, tables.as_deref(), canary),
        Command::Promote { module, fleet } => {
            change_fleet(&module, fleet, host::store::fleet::FleetChange::Promote)
        }
        Command::Rollback { module, fleet } => change_fleet(
            &module,
            fleet,
            host::store::fleet::FleetChange::RollBack { expected: None },
        ),
        Command::Sign { key, files } => sign(&key, &files),
        Command::Keygen { key, public } => keygen(&key, public),
        Command::NewModule {
            name,
            prefix,
            dir,
            plugin_api,
        } => new_module(&name, &prefix, dir, plugin_api),
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
    match args.plugins_source.as_deref() {
        Some("database") => config.plugins.source = host::config::PluginsSource::Database,
        Some(_) => config.plugins.source = host::config::PluginsSource::Directory,
        None => {}
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
    let served = runtime.block_on(host::process::serve(config, deps));
    if let Err(e) = &served {
        slog::crit!(log, "the host stopped on an error"; "error" => format!("{e:#}"));
    }
    drop(runtime);
    drop(log);
    // Every line logged so far is written before the process exits.
    drop(flush_on_exit);
    Ok(served.map(|()| ExitCode::SUCCESS)?)
}

fn new_module(
    name: &str,
    prefix: &str,
    dir: Option<PathBuf>,
    plugin_api: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use host::scaffold::Place;
    let place = match dir {
        None => Place::Workspace {
            root: std::env::current_dir().context("cannot read the current folder")?,
        },
        Some(dir) => Place::Standalone {
            dir,
            plugin_api: plugin_api
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api")),
        },
    };
    let created = host::scaffold::new_module(name, prefix, &place)?;
    println!(
        "wrote the module `{name}` (prefix {prefix}) in {}",
        created.dir.display()
    );
    println!("next:");
    for step in &created.next_steps {
        println!("  {step}");
    }
    Ok(ExitCode::SUCCESS)
}

fn check(
    file: &Path,
    args: &ConfigArgs,
    database_url: Option<&str>,
    tables: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = load_config(args)?;
    let database = database_url
        .map(|url| host::store::DatabaseUrl::parse(url, &config.paths.data_dir))
        .transpose()
        .context("--database-url")?;
    let runtime = one_shot_runtime()?;
    let checked = runtime.block_on(host::check::check(
        file,
        &config,
        &logging::discard(),
        database.as_ref(),
        tables,
    ));
    match checked {
        Ok(checked) => {
            let meta = &checked.meta;
            println!("ok: {} would be loaded", file.display());
            println!("name: {}", meta.name);
            println!("prefix: {}", meta.prefix);
            println!("version: {}", meta.version);
            println!("commands: {}", meta.commands.join(", "));
            let refusals: Vec<String> = meta
                .refusals
                .iter()
                .map(|r| format!("{} {}", r.code, r.name))
                .collect();
            if refusals.is_empty() {
                println!("refusals: none");
            } else {
                println!("refusals: {}", refusals.join(", "));
            }
            println!("saved-data schema: {}", meta.schema);
            if let Some(tables) = &checked.tables {
                println!(
                    "data tables: {} ({}.tables, sha256 {})",
                    tables.files.join(", "),
                    meta.name,
                    tables.sha256
                );
            }
            if let Some(report) = &checked.data_check {
                println!(
                    "stored saved data: {} players checked up to schema {} and back{}",
                    report.checked,
                    meta.schema,
                    report.sample_note()
                );
            }
            println!("sha256: {}", meta.sha256);
            if let Some(key) = &checked.signed_by {
                println!("signed by: {key}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(host::check::CheckError::Refused(refused)) => {
            println!("refused: {refused}");
            // Tables refused because none lie beside a build: say where else they can come from.
            if let (None, host::plugins::Refused::Tables { name, .. }) = (tables, &refused) {
                let dir = file.parent().unwrap_or(Path::new("."));
                if !host::plugins::tables::folder(dir, name).is_dir() {
                    println!(
                        "(check reads a module's tables beside the library; for a crate's tables, give them: --tables plugins/<crate>/tables)"
                    );
                }
            }
            Ok(ExitCode::FAILURE)
        }
        Err(cannot) => Err(cannot.into()),
    }
}

fn publish(
    files: &[PathBuf],
    fleet: FleetArgs,
    tables: Option<&Path>,
    canary: Option<u8>,
) -> anyhow::Result<ExitCode> {
    let (config, database, note) = fleet.resolve()?;
    let runtime = one_shot_runtime()?;
    let options = host::fleet::publish::PublishOptions {
        note: &note,
        tables,
        canary,
    };
    let published = runtime.block_on(host::fleet::publish::publish(
        files,
        &config,
        &database,
        &options,
        &logging::discard(),
    ));
    // What went out before an error stays published: say so either way.
    let (published, failed) = match published {
        Ok(published) => (published, None),
        Err(e) => (e.published, Some(e.error)),
    };
    for release in &published {
        println!(
            "published {}: module {} {} (release {}): {}",
            release.file.display(),
            release.module,
            release.version,
            release.release,
            said(&release.outcome)
        );
    }
    match failed {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(e.into()),
    }
}

/// What a change of the fleet's desired releases did, in a few words.
fn said(outcome: &host::store::fleet::FleetOutcome) -> String {
    use host::store::fleet::FleetOutcome;
    match outcome {
        FleetOutcome::Changed { before, after } => {
            let was = before.as_ref().map(|b| &b.release_id);
            match (&after.canary_id, was) {
                (Some(canary), _) => format!(
                    "canary {canary} serves {}% of players, beside {}",
                    after.canary_percent, after.release_id
                ),
                (None, Some(was)) if *was != after.release_id => {
                    format!(
                        "{} now desired (was {was}); every host follows",
                        after.release_id
                    )
                }
                (None, _) if before.as_ref().is_some_and(|b| b.canary_id.is_some()) => {
                    format!("canary stopped; {} serves every player", after.release_id)
                }
                (None, _) => format!("{} now desired; every host follows", after.release_id),
            }
        }
        FleetOutcome::Unchanged(why) => format!("unchanged: {why}"),
        FleetOutcome::Refused(why) => format!("refused: {why}"),
    }
}

/// `game-host promote` and `game-host rollback`: `change` to `module`'s desired releases.
fn change_fleet(
    module: &str,
    fleet: FleetArgs,
    change: host::store::fleet::FleetChange,
) -> anyhow::Result<ExitCode> {
    use host::store::fleet::FleetOutcome;
    let (config, database, note) = fleet.resolve()?;
    let runtime = one_shot_runtime()?;
    let outcome = runtime.block_on(async {
        let store = host::store::open(&database, &config.pool_settings(), config.sqlite_options())
            .await
            .context("cannot open the fleet's database")?;
        let outcome = store
            .fleet()
            .change(module, &change, None, &note, config.fleet.retention())
            .await;
        let _ = store.close().await;
        Ok::<_, anyhow::Error>(outcome?)
    })?;
    println!("{module}: {}", said(&outcome));
    Ok(match outcome {
        FleetOutcome::Changed { .. } => ExitCode::SUCCESS,
        FleetOutcome::Unchanged(_) | FleetOutcome::Refused(_) => ExitCode::FAILURE,
    })
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
