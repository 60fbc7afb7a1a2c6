//! The embedded mode's data directory: the SQLite files, the generated JWT
//! secret, and a lock that keeps a second process out.
//!
//! `events.db` holds password and refresh-token hashes, so the directory is
//! its owner's alone (0700) and so is every file in it (0600), whatever the
//! umask: files from before are narrowed when the directory is opened, and
//! the process's umask becomes 077, which covers what SQLite creates later
//! (`-wal`, `-shm`, `-journal`; SQLite gives those its database's mode too).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::RngCore;

const LOCK: &str = "LOCK";
const SECRET: &str = "jwt-secret";

/// A data directory this process owns until the value is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the exclusive lock; the OS releases it when the process dies,
    /// so a crash never leaves the directory locked.
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed and locks it. Fails with a message
    /// naming the other process when one already uses it: two writers on the
    /// same files would each believe they own the log.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(path)
            .with_context(|| format!("creating the data directory {}", path.display()))?;
        #[cfg(unix)]
        owner_only(path)?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK))
            .with_context(|| format!("opening {}", path.join(LOCK).display()))?;
        if lock.try_lock().is_err() {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            bail!(
                "the data directory {} is in use by another ticketflow process{}; \
                 stop it, or give this one its own --data-dir",
                path.display(),
                match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                }
            );
        }
        lock.set_len(0)
            .and_then(|()| lock.write_all(std::process::id().to_string().as_bytes()))
            .with_context(|| format!("writing {}", path.join(LOCK).display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// The event log, accounts and idempotency records.
    pub const EVENTS_DB: &str = "events.db";
    /// The read models, their checkpoints and the notification read marks.
    pub const READS_DB: &str = "reads.db";

    pub fn events_db(&self) -> PathBuf {
        self.path.join(Self::EVENTS_DB)
    }

    pub fn reads_db(&self) -> PathBuf {
        self.path.join(Self::READS_DB)
    }

    /// The JWT secret kept in the directory, generated on first use, so
    /// tokens outlive a restart without anyone configuring a secret.
    pub fn jwt_secret(&self) -> anyhow::Result<Vec<u8>> {
        let path = self.path.join(SECRET);
        match fs::read(&path) {
            Ok(secret) if !secret.is_empty() => return Ok(secret),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&path, secret.as_bytes())?;
        tracing::info!(path = %path.display(), "generated a JWT secret");
        Ok(secret.into_bytes())
    }
}

/// Makes `dir` and every file in it its owner's alone, and what this
/// process creates from now on too.
#[cfg(unix)]
fn owner_only(dir: &Path) -> anyhow::Result<()> {
    use rustix::fs::Mode;
    use std::os::unix::fs::PermissionsExt;

    rustix::process::umask(Mode::from_raw_mode(0o077));
    let narrow = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} private", path.display()))
    };
    narrow(dir, 0o700)?;
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            narrow(&entry.path(), 0o600)?;
        }
    }
    Ok(())
}

/// Writes a file only its owner can read, whole or not at all (a crash
/// mid-write must not leave an empty secret that the next start trusts).
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    fs::rename(&partial, path).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open(dir.path()).expect("first");
        let refused = DataDir::open(dir.path()).expect_err("second");
        let message = refused.to_string();
        assert!(
            message.contains("in use by another ticketflow process"),
            "{message}"
        );
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        DataDir::open(dir.path()).expect("free again");
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_directory_and_its_files_become_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;

        let parent = tempfile::tempdir().expect("tempdir");
        let path = parent.path().join("data");
        fs::create_dir(&path).expect("mkdir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).expect("chmod");
        let old = path.join(DataDir::EVENTS_DB);
        fs::write(&old, b"").expect("a file from before");
        fs::set_permissions(&old, fs::Permissions::from_mode(0o666)).expect("chmod");

        let dir = DataDir::open(&path).expect("open");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o700);
        assert_eq!(mode(&old), 0o600);
        assert_eq!(mode(&path.join(LOCK)), 0o600);
        // Created later, as SQLite creates its -wal file.
        let later = path.join("reads.db-wal");
        File::create(&later).expect("create");
        assert_eq!(mode(&later), 0o600);
        drop(dir);
    }

    #[test]
    fn the_secret_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open(dir.path()).expect("open");
        let secret = first.jwt_secret().expect("generate");
        assert_eq!(secret.len(), 64);
        assert_eq!(first.jwt_secret().expect("again"), secret);
        drop(first);
        let reopened = DataDir::open(dir.path()).expect("reopen");
        assert_eq!(reopened.jwt_secret().expect("kept"), secret);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SECRET))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
