//! Test support (feature `test-harness`): a throwaway SQLite file per test, and a
//! PostgreSQL server started on demand, one per test process, with a fresh database
//! per test. Used by this crate's contract tests and by the binary's end-to-end tests.
//!
//! PostgreSQL is found in `REFSYNC_POSTGRES_BIN` or `/usr/lib/postgresql/<version>/bin`.
//! It refuses to run as root, so when the tests run as root (as here and in CI) the
//! server runs as the `postgres` user via `runuser`. `REFSYNC_TEST_POSTGRES_URL` points
//! the tests at an existing server instead. Missing binaries fail the tests loudly,
//! unless `REFSYNC_SKIP_POSTGRES=1` says to skip PostgreSQL on purpose.
//!
//! A static cannot run a destructor at process exit, so the server is stopped by a
//! small watchdog shell process that waits for the test process to go away (however
//! it ends: success, panic or SIGKILL), then stops PostgreSQL and deletes its files.

#![allow(clippy::panic, clippy::expect_used)]

use sqlx::Connection;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A SQLite database in its own temporary directory, deleted when this is dropped.
pub struct TestSqlite {
    url: String,
    _dir: tempfile::TempDir,
}

impl TestSqlite {
    /// The `sqlite://` URL to open.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding the database file (and its WAL).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

/// A fresh SQLite database file for one test.
pub fn sqlite_url_for_test() -> TestSqlite {
    let dir = tempfile::tempdir().expect("create a temp dir for a test database");
    let url = format!("sqlite://{}", dir.path().join("refsync.db").display());
    TestSqlite { url, _dir: dir }
}

/// A URL to a fresh, empty PostgreSQL database for one test, starting this process's
/// server on first use. `None` only when `REFSYNC_SKIP_POSTGRES=1`; any failure panics
/// with what to do about it.
pub async fn postgres_url_for_test() -> Option<String> {
    if std::env::var("REFSYNC_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        return None;
    }
    static ADMIN_URL: OnceLock<Result<String, String>> = OnceLock::new();
    // Starting the server blocks this thread for a second or two, once per process.
    let admin = ADMIN_URL.get_or_init(|| match std::env::var("REFSYNC_TEST_POSTGRES_URL") {
        Ok(url) => Ok(url),
        Err(_) => start_server(),
    });
    let admin = match admin {
        Ok(url) => url.clone(),
        Err(e) => panic!(
            "PostgreSQL tests cannot run: {e}\n\
             Install PostgreSQL (e.g. apt-get install postgresql), point REFSYNC_POSTGRES_BIN \
             at its bin directory, set REFSYNC_TEST_POSTGRES_URL to an existing server, or set \
             REFSYNC_SKIP_POSTGRES=1 to skip these tests on purpose."
        ),
    };
    Some(create_database(&admin).await)
}

async fn create_database(admin_url: &str) -> String {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to the test PostgreSQL server: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("create test database {name}: {e}"));
    let _ = conn.close().await;
    let mut url = url::Url::parse(admin_url).expect("test PostgreSQL URL parses");
    url.set_path(&name);
    url.to_string()
}

fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("REFSYNC_POSTGRES_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|_| format!("no PostgreSQL installation under {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("pg_ctl").exists())
        .collect();
    // The newest installed version (directory names are major versions).
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .ok_or_else(|| format!("no pg_ctl found under {}/<version>/bin", root.display()))
}

/// The effective uid, read from procfs (std has no `geteuid`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// The `postgres` account's uid and gid, from /etc/passwd.
fn postgres_account() -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postgres") && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| "running as root but there is no `postgres` user to run the server".into())
}

/// A command for a PostgreSQL binary, run as `postgres` when we are root.
fn pg_command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    let exe = bin.join(program);
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn start_server() -> Result<String, String> {
    let bin = find_bin_dir()?;
    let as_postgres = running_as_root();
    let dir = std::env::temp_dir().join(format!(
        "refsync-pg-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    if as_postgres {
        let (uid, gid) = postgres_account()?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    // The watchdog goes first, so the directory is cleaned up even if start-up fails.
    spawn_watchdog(&bin, &dir, as_postgres)?;
    let data = dir.join("data");
    let mut initdb = pg_command(&bin, "initdb", as_postgres);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
    run(initdb, "initdb")?;
    // Another process can take the port between our probe and the server's bind; try a few.
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let mut ctl = pg_command(&bin, "pg_ctl", as_postgres);
        ctl.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
                dir.display()
            ))
            .arg("start");
        match run(ctl, "pg_ctl start") {
            Ok(()) => return Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres")),
            Err(e) => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                last_error = format!("{e}\nserver log:\n{log}");
            }
        }
    }
    Err(last_error)
}

/// Starts a shell in its own process group (so a Ctrl-C aimed at the tests does not
/// kill it first) that waits for this process to exit, then stops the server and
/// removes its directory.
fn spawn_watchdog(bin: &Path, dir: &Path, as_postgres: bool) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let runas = if as_postgres {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 0.2; done; \
         if [ -f '{dir}/data/postmaster.pid' ]; then \
           {runas}'{ctl}' -D '{dir}/data' -m immediate stop; fi; \
         rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display(),
        ctl = bin.join("pg_ctl").display(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("start the PostgreSQL watchdog: {e}"))
}
