//! nginx (Debian's package, or `NGINX`) running the production example,
//! `config/deploy/nginx/game-host.conf`, as written: only its upstream server line (now the
//! hosts given), its listen address and its folders are changed, in a temporary folder.
//! What the tests and the bench measure is therefore what ops deploy.

use anyhow::{bail, Context};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example's path below a config folder.
pub const EXAMPLE: &str = "deploy/nginx/game-host.conf";

/// How long nginx may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The nginx binary: `NGINX`, or the usual places; `None` if there is none.
pub fn find() -> Option<PathBuf> {
    std::env::var_os("NGINX")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/sbin/nginx", "/usr/local/sbin/nginx"].map(PathBuf::from))
        .find(|path| path.is_file())
}

/// What to say when [`find`] finds none.
pub const MISSING: &str = "no nginx (apt-get install nginx, or set NGINX=/path/to/nginx)";

/// nginx in a folder of its own in front of some hosts; stopped on drop.
pub struct Nginx {
    child: Child,
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts `binary` on the example in `config_dir`, its upstream the `hosts`, with
    /// `workers` worker processes; returns once it accepts connections.
    pub fn start(
        binary: &Path,
        config_dir: &Path,
        hosts: &[SocketAddr],
        workers: usize,
    ) -> anyhow::Result<Nginx> {
        let example = config_dir.join(EXAMPLE);
        let site = std::fs::read_to_string(&example)
            .with_context(|| format!("reading {}", example.display()))?;
        let dir = tempfile::tempdir()?;
        // nginx's workers run as an unprivileged user when the master is root: they must be
        // able to reach the folder.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        }
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("logs"))?;
        std::fs::create_dir_all(dir.path().join("www"))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let servers = hosts
            .iter()
            .map(|addr| format!("server {addr};"))
            .collect::<Vec<_>>()
            .join("\n    ");
        let mut site = site;
        for (from, to) in [
            ("server 127.0.0.1:8000;", servers.as_str()),
            ("listen 80;", &format!("listen 127.0.0.1:{port};")),
            ("listen [::]:80;", ""),
            ("root /srv/game-host/www;", &format!("root {d}/www;")),
            ("/var/log/nginx/", &format!("{d}/logs/")),
        ] {
            if !site.contains(from) {
                bail!(
                    "{} no longer says `{from}`: update testkit/src/nginx.rs",
                    example.display()
                );
            }
            site = site.replace(from, to);
        }
        std::fs::write(dir.path().join("site.conf"), site)?;
        let mime = Path::new("/etc/nginx/mime.types");
        let mime = if mime.is_file() {
            format!("include {};", mime.display())
        } else {
            String::new()
        };
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\n\
                 worker_processes {workers};\n\
                 pid {d}/nginx.pid;\n\
                 error_log {d}/logs/error.log;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n\
                 \x20   {mime}\n\
                 \x20   client_body_temp_path {d}/body;\n\
                 \x20   proxy_temp_path {d}/proxy;\n\
                 \x20   fastcgi_temp_path {d}/fastcgi;\n\
                 \x20   uwsgi_temp_path {d}/uwsgi;\n\
                 \x20   scgi_temp_path {d}/scgi;\n\
                 \x20   include {d}/site.conf;\n\
                 }}\n"
            ),
        )?;
        let stderr = std::fs::File::create(dir.path().join("logs/stderr.log"))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("logs/error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut nginx = Nginx {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            binary: binary.to_owned(),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = nginx.child.try_wait()? {
                bail!("nginx exited ({status}): {}", nginx.logs());
            }
            if TcpStream::connect(nginx.addr).is_ok() {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not listen on {} within {START_TIMEOUT:?}",
                    nginx.addr
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The master's pid; its workers are its children.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What nginx wrote to stderr and its error logs (its own, and the example site's): for a
    /// failed test's message.
    pub fn logs(&self) -> String {
        ["stderr.log", "error.log", "game-host.error.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.path().join("logs").join(name)))
            .filter_map(Result::ok)
            .collect::<Vec<_>>()
            .join("")
    }

    /// The lines of its access log (`$remote_addr - - [time] "request" status ...`).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/game-host.access.log"))
            .unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Killing the master would leave its workers: `-s stop` ends all (SIGTERM by the pid
        // file), and what is still there after a while is killed.
        let workers = std::fs::read_to_string(format!(
            "/proc/{pid}/task/{pid}/children",
            pid = self.child.id()
        ))
        .unwrap_or_default();
        let _ = Command::new(&self.binary)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.dir.path().join("nginx.conf"))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !workers.trim().is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(workers.split_whitespace())
                .stderr(Stdio::null())
                .status();
        }
    }
}
