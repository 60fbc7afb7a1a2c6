//! A PostgreSQL cluster of the test's own, which it may stop and start
//! again (the machine's server on :5432 is shared and must never be). The
//! server runs as the `postgres` user when the test runs as root (initdb
//! refuses root), on a free port, with its data and socket in a temporary
//! directory; dropped, it is stopped at once and its files removed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private PostgreSQL cluster on 127.0.0.1.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// Creates and starts a cluster, or `None`, saying why, when no
    /// PostgreSQL server binaries (`initdb`) are installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = server_binaries() else {
            eprintln!("no PostgreSQL server binaries (initdb) found: skipped");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
        };
        if as_root() {
            // The server's user must own its data directory.
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres")
                .arg(cluster.dir.path()));
        }
        let data = cluster.data_dir();
        run(cluster.as_server_user("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]));
        cluster.start_again();
        Some(cluster)
    }

    /// The URL of `database` on this cluster (`postgres` exists from the start).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server the fast way: sessions are ended, as in a restart.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Starts the stopped server again, on the same port and data; returns
    /// once it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let log = log.to_string_lossy().into_owned();
        self.pg_ctl(&["start", "-w", "-l", &log, "-o", &options]);
    }

    /// Freezes the server (SIGSTOP to it and its backends): its connections
    /// stay open and its kernel still accepts and acknowledges, but nothing
    /// answers, as with a hung host.
    pub fn pause(&self) {
        let postmaster = self.postmaster();
        signal("STOP", postmaster);
        for backend in children_of(postmaster) {
            signal("STOP", backend);
        }
    }

    /// Lets a [`PrivatePostgres::pause`]d server run again.
    pub fn resume(&self) {
        let postmaster = self.postmaster();
        for backend in children_of(postmaster) {
            signal("CONT", backend);
        }
        signal("CONT", postmaster);
    }

    /// The server's process id, from its pid file.
    fn postmaster(&self) -> u32 {
        let pid_file = std::fs::read_to_string(self.data_dir().join("postmaster.pid"));
        let pid_file = pid_file.expect("the server's pid file");
        let first = pid_file.lines().next().unwrap_or_default();
        first.trim().parse().expect("a pid")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data_dir();
        run(self
            .as_server_user("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(args));
    }

    /// `program` of the server binaries, run as the server's user.
    fn as_server_user(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .as_server_user("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["stop", "-m", "immediate"])
            .output();
    }
}

/// The directory holding `initdb` and `pg_ctl`: on the PATH, or the newest
/// of Debian's `/usr/lib/postgresql/<version>/bin`.
fn server_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>());
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin"));
    let mut candidates: Vec<PathBuf> = debian.collect();
    // Newest version first: "15" before "13" (as numbers).
    candidates.sort_by_key(|dir| std::cmp::Reverse(version_of(dir)));
    on_path
        .chain(candidates)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn version_of(bin: &Path) -> u32 {
    let version = bin.parent().and_then(Path::file_name);
    version.and_then(|v| v.to_str()?.parse().ok()).unwrap_or(0)
}

/// The processes whose parent is `pid` (the server's backends).
fn children_of(pid: u32) -> Vec<u32> {
    let listed = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
    let listed = listed.expect("the server's children");
    listed
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn signal(name: &str, pid: u32) {
    run(Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string()));
}

fn as_root() -> bool {
    let id = Command::new("id").arg("-u").output();
    id.is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run a PostgreSQL tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
