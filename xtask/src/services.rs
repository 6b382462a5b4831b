//! Throwaway PostgreSQL, Redis and S3-compatible servers for the tests: installed from Debian when
//! missing (as root), started on free loopback ports in a temp directory, stopped when
//! dropped, tests failed or not.
//!
//! Tests find them through environment variables:
//! - `FLOWSTORE_TEST_POSTGRES_URL`, `FLOWSTORE_TEST_POSTGRES_RESTART` (a script that
//!   restarts the server the way a crash would: immediate shutdown, then start);
//! - `FLOWSTORE_TEST_REDIS_URL`, `FLOWSTORE_TEST_REDIS_RESTART` (SHUTDOWN, then start),
//!   `FLOWSTORE_TEST_REDIS_KILL` (SIGKILL, then start: what a crash leaves);
//! - `DBUS_SESSION_BUS_ADDRESS`: a private D-Bus session bus with an unlocked
//!   gnome-keyring answering as the Secret Service (its data in the temp directory,
//!   never the user's keyring);
//! - `FLOWSTORE_TEST_S3_ENDPOINT`, `FLOWSTORE_TEST_S3_BUCKET`: moto's S3-compatible
//!   server (from PyPI, in a virtualenv under `target/test-servers`) and a bucket on it;
//! - `FLOWSTORE_TEST_CHROMIUM`, `FLOWSTORE_TEST_CHROMEDRIVER`: Debian's Chromium and
//!   its WebDriver server, for the console's browser tests.
//!
//! A variable already set is respected: point the tests at your own server with it.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub const POSTGRES_URL: &str = "FLOWSTORE_TEST_POSTGRES_URL";
pub const POSTGRES_RESTART: &str = "FLOWSTORE_TEST_POSTGRES_RESTART";
pub const REDIS_URL: &str = "FLOWSTORE_TEST_REDIS_URL";
pub const REDIS_RESTART: &str = "FLOWSTORE_TEST_REDIS_RESTART";
pub const REDIS_KILL: &str = "FLOWSTORE_TEST_REDIS_KILL";
pub const DBUS_ADDRESS: &str = "DBUS_SESSION_BUS_ADDRESS";
pub const S3_ENDPOINT: &str = "FLOWSTORE_TEST_S3_ENDPOINT";
pub const S3_BUCKET: &str = "FLOWSTORE_TEST_S3_BUCKET";
pub const CHROMIUM: &str = "FLOWSTORE_TEST_CHROMIUM";
pub const CHROMEDRIVER: &str = "FLOWSTORE_TEST_CHROMEDRIVER";

/// moto's S3 server, pinned: its `If-Match` and `If-None-Match` on PutObject are what
/// the object-storage tests rely on (docs/dependencies.md says why moto).
const MOTO: &str = "moto[server]==5.2.5";
/// moto's S3 app on loopback, serving one request at a time (see `start_s3`).
const MOTO_ONE_AT_A_TIME: &str = "import sys\n\
from werkzeug.serving import run_simple\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app\n\
run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False, request_handler=MotoRequestHandler)\n";

/// The bucket the object-storage tests use (created when the server starts).
const TEST_BUCKET: &str = "flowstore-test";

/// How the servers keep what they are told.
#[derive(Debug, Clone, Copy)]
enum Durability {
    /// `fsync=off` on PostgreSQL: the tests kill processes, never the machine.
    Tests,
    /// Every commit fsynced, as in production.
    Production,
}

/// Running servers; dropping it stops them and removes their files.
pub struct Services {
    dir: PathBuf,
    env: Vec<(String, String)>,
    stops: Vec<(String, Command)>,
    /// Processes started here and killed on drop (the bus and the keyring daemon).
    children: Vec<(String, std::process::Child)>,
    /// The port of the Redis server started here, for the key-space check.
    redis_port: Option<u16>,
}

impl Services {
    /// Starts what the environment does not already provide, the keyring daemon
    /// included.
    ///
    /// # Errors
    /// A package that cannot be installed, or a server that does not start; the error
    /// says what to run by hand.
    pub fn start() -> Result<Self> {
        Self::start_with(true, Durability::Tests)
    }

    /// Starts PostgreSQL and Redis only (the reliability runs keep no credentials),
    /// PostgreSQL with `fsync=off` as for the tests.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_servers() -> Result<Self> {
        Self::start_with(false, Durability::Tests)
    }

    /// Starts PostgreSQL and Redis for the benchmarks, as a production deployment
    /// runs them: PostgreSQL with its defaults (`fsync` and `synchronous_commit` on),
    /// Redis with `appendfsync everysec`.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn start_durable_servers() -> Result<Self> {
        Self::start_with(false, Durability::Production)
    }

    fn start_with(keyring: bool, durability: Durability) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("flowstore-services-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut me = Self {
            dir,
            env: Vec::new(),
            stops: Vec::new(),
            children: Vec::new(),
            redis_port: None,
        };
        if std::env::var_os(POSTGRES_URL).is_none() {
            me.start_postgres(durability)?;
        }
        if std::env::var_os(REDIS_URL).is_none() {
            me.start_redis()?;
        }
        if keyring && std::env::var_os(S3_ENDPOINT).is_none() {
            me.start_s3()?;
        }
        if keyring && std::env::var_os(CHROMIUM).is_none() {
            me.find_chromium()?;
        }
        // Always a private bus: the tests must never write into the user's keyring.
        if keyring {
            me.start_keyring()?;
            me.find_faketime()?;
        }
        Ok(me)
    }

    /// The variables to give the tests.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    fn start_postgres(&mut self, durability: Durability) -> Result<()> {
        let bin = postgres_bin()?;
        let data = self.dir.join("postgres");
        fs::create_dir_all(&data)?;
        let root = is_root();
        if root {
            // initdb refuses to run as root; the cluster belongs to `postgres`.
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.dir))?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755))?;
        }
        let as_owner = |program: &Path| -> Command {
            if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c.current_dir("/");
                c
            } else {
                Command::new(program)
            }
        };
        run(as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .args(["--no-sync"])
            .stdout(std::process::Stdio::null()))?;
        let port = free_port()?;
        // For the tests, fsync=off: they kill the server process, never the machine,
        // so the OS cache keeps what was written; synchronous_commit stays on, so an
        // acknowledged commit has reached the WAL before the client hears of it. The
        // benchmarks keep PostgreSQL's defaults: every commit is fsynced.
        let fsync = match durability {
            Durability::Tests => "-c fsync=off",
            Durability::Production => "-c fsync=on -c synchronous_commit=on",
        };
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} {fsync} -c max_connections=300",
            data.display()
        );
        let log = data.join("server.log");
        let pg_ctl = bin.join("pg_ctl");
        let started = Instant::now();
        run(as_owner(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-o", &opts, "start"])
            .stdout(std::process::Stdio::null()))
        .with_context(|| format!("starting PostgreSQL; its log is {}", log.display()))?;
        let restart = self.dir.join("restart-postgres.sh");
        let runuser = if root { "runuser -u postgres -- " } else { "" };
        write_script(
            &restart,
            &format!(
                "cd / && {runuser}'{ctl}' -D '{d}' -w -m immediate stop >/dev/null && {runuser}'{ctl}' -D '{d}' -l '{l}' -w -o '{opts}' start >/dev/null\n",
                ctl = pg_ctl.display(),
                d = data.display(),
                l = log.display(),
            ),
        )?;
        let mut stop = as_owner(&pg_ctl);
        stop.arg("-D")
            .arg(&data)
            .args(["-w", "-m", "fast", "stop"])
            .stdout(std::process::Stdio::null());
        self.stops.push(("PostgreSQL".into(), stop));
        self.env.push((
            POSTGRES_URL.into(),
            format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        ));
        self.env
            .push((POSTGRES_RESTART.into(), restart.display().to_string()));
        eprintln!(
            "xtask: PostgreSQL ({}) on 127.0.0.1:{port}, started in {:.1}s",
            bin.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn start_redis(&mut self) -> Result<()> {
        let server = which("redis-server").or_else(|_| {
            install(&["redis-server", "redis-tools"])?;
            which("redis-server")
        })?;
        let data = self.dir.join("redis");
        fs::create_dir_all(&data)?;
        let port = free_port()?;
        let args = format!(
            "--port {port} --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --dir '{d}' --daemonize yes --pidfile '{d}/redis.pid' --logfile '{d}/redis.log'",
            d = data.display()
        );
        let start = format!("'{}' {args}", server.display());
        run(Command::new("sh").args(["-c", &start]))?;
        let url = format!("redis://127.0.0.1:{port}");
        wait_for_redis(port)?;
        // SHUTDOWN writes the append-only file; the restart starts from it.
        let restart = self.dir.join("restart-redis.sh");
        let cli = which("redis-cli")?;
        write_script(
            &restart,
            &format!(
                "'{cli}' -p {port} shutdown >/dev/null 2>&1; while '{cli}' -p {port} ping >/dev/null 2>&1; do sleep 0.05; done; {start}\nfor i in $(seq 600); do '{cli}' -p {port} ping >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1\n",
                cli = cli.display()
            ),
        )?;
        // SIGKILL leaves what a crash of the process leaves: every acknowledged write
        // reached the kernel. With an argument N, the script also cuts the last N bytes
        // of the append-only file, as a crash of the machine under `appendfsync
        // everysec` would (up to a second of writes not yet fsynced); Redis loads the
        // file up to its last whole command (`aof-load-truncated yes`, the default).
        let kill = self.dir.join("kill-redis.sh");
        write_script(
            &kill,
            &format!(
                "kill -9 \"$(cat '{d}/redis.pid')\"; while '{cli}' -p {port} ping >/dev/null 2>&1; do sleep 0.05; done\n\
                 if [ -n \"$1\" ]; then f=$(ls -t '{d}'/appendonlydir/*.incr.aof | head -1); s=$(stat -c %s \"$f\"); n=$((s > $1 ? s - $1 : 0)); truncate -s \"$n\" \"$f\"; fi\n\
                 {start}\nfor i in $(seq 600); do '{cli}' -p {port} ping 2>/dev/null | grep -q PONG && exit 0; sleep 0.05; done; exit 1\n",
                cli = cli.display(),
                d = data.display()
            ),
        )?;
        self.env
            .push((REDIS_KILL.into(), kill.display().to_string()));
        let mut stop = Command::new(&cli);
        stop.args(["-p", &port.to_string(), "shutdown", "nosave"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        self.stops.push(("Redis".into(), stop));
        self.env.push((REDIS_URL.into(), url));
        self.redis_port = Some(port);
        self.env
            .push((REDIS_RESTART.into(), restart.display().to_string()));
        eprintln!("xtask: Redis on 127.0.0.1:{port}");
        Ok(())
    }
}

impl Services {
    /// Debian's Chromium and chromedriver for the console's browser tests, installed
    /// when either is missing.
    fn find_chromium(&mut self) -> Result<()> {
        if which("chromium").is_err() || which("chromedriver").is_err() {
            install(&["chromium", "chromium-driver"])?;
        }
        let chromium = which("chromium")?;
        let driver = which("chromedriver")?;
        self.env
            .push((CHROMIUM.into(), chromium.display().to_string()));
        self.env
            .push((CHROMEDRIVER.into(), driver.display().to_string()));
        eprintln!(
            "xtask: Chromium at {}, chromedriver at {}",
            chromium.display(),
            driver.display()
        );
        Ok(())
    }

    /// moto's S3-compatible server on a free loopback port, from a virtualenv under
    /// `target/test-servers` (made on first use with PyPI's pinned `moto[server]`),
    /// with the test bucket created.
    fn start_s3(&mut self) -> Result<()> {
        let venv = std::env::current_dir()?.join("target/test-servers/moto-venv");
        let server = venv.join("bin/moto_server");
        if !server.is_file() {
            eprintln!("xtask: installing {MOTO} into {}", venv.display());
            if run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).is_err() {
                install(&["python3-venv"])?;
                run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
            }
            run(Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "--disable-pip-version-check", MOTO])
                .stdout(std::process::Stdio::null()))
            .context("installing moto's S3 server from PyPI (pip install 'moto[server]')")?;
        }
        let port = free_port()?;
        let log = fs::File::create(self.dir.join("moto.log"))?;
        // moto's own `moto_server` serves requests on threads, and checks a PutObject's
        // `If-Match` / `If-None-Match` and then writes without a lock between: two
        // racing conditional puts can both succeed, which S3 never allows (seen as a
        // lost build in the 8-process test). One request at a time makes each check
        // and write atomic, as on S3.
        let child = Command::new(venv.join("bin/python"))
            .args(["-c", MOTO_ONE_AT_A_TIME, &port.to_string()])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        self.children.push(("moto S3 server".into(), child));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match create_bucket(port, TEST_BUCKET) {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    bail!("moto's S3 server did not answer on port {port} within 30 s: {e} (its log is {})", self.dir.join("moto.log").display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        self.env
            .push((S3_ENDPOINT.into(), format!("http://127.0.0.1:{port}")));
        self.env.push((S3_BUCKET.into(), TEST_BUCKET.into()));
        eprintln!("xtask: S3-compatible server (moto) on 127.0.0.1:{port}, bucket {TEST_BUCKET}");
        Ok(())
    }

    /// After the suite: every key on the Redis server started here is tenant-prefixed
    /// (`flowstore:{<tenant>}:`), read with `redis-cli --scan` as an operator would.
    ///
    /// # Errors
    /// A key outside any tenant, or `redis-cli` failing.
    pub fn check_redis_keys(&self) -> Result<()> {
        let Some(port) = self.redis_port else {
            return Ok(());
        };
        let out = Command::new(which("redis-cli")?)
            .args(["-p", &port.to_string(), "--scan"])
            .output()
            .context("running redis-cli --scan")?;
        if !out.status.success() {
            bail!(
                "redis-cli --scan failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let tenant_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        let bad: Vec<&str> = text
            .lines()
            .filter(|k| {
                !k.strip_prefix("flowstore:{")
                    .and_then(|r| r.split_once("}:"))
                    .is_some_and(|(t, _)| tenant_ok(t))
            })
            .take(10)
            .collect();
        if !bad.is_empty() {
            bail!("keys outside any tenant on the Redis server after the suite: {bad:?}");
        }
        eprintln!(
            "xtask: redis-cli --scan after the suite: {} keys, all tenant-prefixed",
            text.lines().count()
        );
        Ok(())
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            if let Err(e) = child.kill().and_then(|()| child.wait().map(|_| ())) {
                eprintln!("xtask: stopping {name}: {e}");
            }
        }
        for (name, cmd) in &mut self.stops {
            match cmd.status() {
                Ok(s) if s.success() => {}
                other => eprintln!("xtask: stopping {name} did not succeed: {other:?}"),
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Services {
    /// libfaketime, for the clock-skew tests that run one engine node with its wall
    /// clock minutes off: installs Debian's `faketime` when missing and exports
    /// `FLOWSTORE_TEST_FAKETIME_LIB`.
    fn find_faketime(&mut self) -> Result<()> {
        let find = || {
            fs::read_dir("/usr/lib").ok()?.flatten().find_map(|d| {
                let lib = d.path().join("faketime/libfaketime.so.1");
                lib.exists().then_some(lib)
            })
        };
        let lib = match find() {
            Some(lib) => lib,
            None => {
                install(&["faketime"])?;
                find().context(
                    "faketime is installed but libfaketime.so.1 is not under /usr/lib/*/faketime",
                )?
            }
        };
        self.env.push((
            "FLOWSTORE_TEST_FAKETIME_LIB".into(),
            lib.display().to_string(),
        ));
        Ok(())
    }

    /// A private D-Bus session bus and an unlocked gnome-keyring on it, with the
    /// keyring's files in the temp directory; also makes sure `keyctl` exists for the
    /// keyutils tests. A keyring that does not answer is started again, up to three
    /// times: once in a while on a loaded machine, a fresh daemon answered at once
    /// where the first had not within 30 s.
    fn start_keyring(&mut self) -> Result<()> {
        let mut attempt = 1;
        loop {
            let before = self.children.len();
            match self.start_keyring_once() {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    eprintln!("xtask: {e:#}; starting D-Bus and gnome-keyring again");
                    for (_, mut child) in self.children.drain(before..) {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn start_keyring_once(&mut self) -> Result<()> {
        let need = [
            ("gnome-keyring-daemon", "gnome-keyring"),
            ("dbus-daemon", "dbus"),
            ("secret-tool", "libsecret-tools"),
            ("keyctl", "keyutils"),
        ];
        let missing: Vec<&str> = need
            .iter()
            .filter(|(bin, _)| which(bin).is_err())
            .map(|(_, pkg)| *pkg)
            .collect();
        if !missing.is_empty() {
            install(&missing)?;
        }
        let home = self.dir.join("keyring-home");
        let runtime = self.dir.join("keyring-run");
        for d in [&home, &runtime] {
            let _ = fs::remove_dir_all(d);
            fs::create_dir_all(d)?;
            fs::set_permissions(d, fs::Permissions::from_mode(0o700))?;
        }
        let mut bus = Command::new(which("dbus-daemon")?)
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting dbus-daemon")?;
        let address = {
            use std::io::BufRead;
            let out = bus.stdout.take().context("dbus-daemon has no stdout")?;
            let mut line = String::new();
            std::io::BufReader::new(out).read_line(&mut line)?;
            line.trim().to_owned()
        };
        self.children.push(("D-Bus".into(), bus));
        if address.is_empty() {
            bail!("dbus-daemon did not print its address");
        }
        let mut daemon = Command::new(which("gnome-keyring-daemon")?)
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env(DBUS_ADDRESS, &address)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting gnome-keyring-daemon")?;
        {
            use std::io::Write;
            // The password of the throwaway login keyring, then end of input.
            let mut stdin = daemon
                .stdin
                .take()
                .context("gnome-keyring-daemon has no stdin")?;
            stdin.write_all(b"flowstore-test")?;
        }
        self.children.push(("gnome-keyring".into(), daemon));
        // Ready when a store and a clear through the Secret Service succeed. Usually
        // well under a second; once, on a loaded machine, more than 10 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stored = Command::new(which("secret-tool")?)
                .args([
                    "store",
                    "--label=flowstore probe",
                    "service",
                    "flowstore-probe",
                ])
                .env(DBUS_ADDRESS, &address)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    if let Some(mut i) = c.stdin.take() {
                        i.write_all(b"probe")?;
                    }
                    c.wait()
                });
            if stored.is_ok_and(|s| s.success()) {
                let _ = Command::new(which("secret-tool")?)
                    .args(["clear", "service", "flowstore-probe"])
                    .env(DBUS_ADDRESS, &address)
                    .status();
                break;
            }
            if Instant::now() > deadline {
                bail!("gnome-keyring did not answer on the private D-Bus session within 30 s (is `secret-tool store` working? run `cargo xtask services` to retry)");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.env.push((DBUS_ADDRESS.into(), address));
        eprintln!("xtask: D-Bus session with an unlocked gnome-keyring (Secret Service)");
        Ok(())
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs Debian packages when running as root; otherwise says what to run.
fn install(packages: &[&str]) -> Result<()> {
    if !is_root() {
        bail!(
            "the tests need {packages:?}; install them with: sudo apt-get install -y --no-install-recommends {}",
            packages.join(" ")
        );
    }
    eprintln!("xtask: installing {packages:?}");
    let apt = || {
        let mut c = Command::new("apt-get");
        c.args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null());
        c
    };
    if run(&mut apt()).is_ok() {
        return Ok(());
    }
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(&mut apt())
}

/// The newest installed PostgreSQL's binaries, installing Debian's when none is.
fn postgres_bin() -> Result<PathBuf> {
    let newest = || -> Option<PathBuf> {
        let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(std::result::Result::ok)
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((major, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|f| f.1)
    };
    if let Some(b) = newest() {
        return Ok(b);
    }
    install(&["postgresql"])?;
    newest()
        .context("PostgreSQL was installed but no /usr/lib/postgresql/<major>/bin/initdb exists")
}

fn which(program: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("{program} is not installed"))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_redis(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("Redis did not accept connections on port {port} within 10 s")
}

/// Creates `bucket` with a plain `PUT /<bucket>` (moto does not check signatures).
fn create_bucket(port: u16, bucket: &str) -> Result<()> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!(
            "creating bucket {bucket} answered {:?}",
            answer.lines().next()
        );
    }
    Ok(())
}

fn write_script(path: &Path, body: &str) -> Result<()> {
    fs::write(path, format!("#!/bin/sh\nset -e\n{body}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stderr(std::process::Stdio::piped())
        .output()
        .with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
