//! Atomic private file writes, the one implementation the issuer (signing
//! keys, `admin-client.json`, §9.1.4) and the client shim (DPoP key files)
//! use. The bytes go to a temporary file in the same directory created with
//! mode 0600 (never readable by others, not even briefly), which is synced,
//! renamed (or linked) over the target, and the directory is synced: a reader
//! sees the old file or the whole new one, never a partial one, and a failed
//! write leaves the old file as it was. The core crates do no I/O; this crate
//! is the I/O.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The permission bits of every file written here (owner read/write only).
pub const PRIVATE_MODE: u32 = 0o600;

/// Writes `bytes` to `path` atomically with mode 0600, replacing any file
/// there.
///
/// # Errors
///
/// Any I/O error; the target is then unchanged and the temporary file removed.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_via_temp(path, bytes, |tmp| fs::rename(tmp, path))
}

/// Writes `bytes` to `path` atomically with mode 0600, only if `path` does not
/// exist yet (an existing file is never overwritten).
///
/// # Errors
///
/// [`io::ErrorKind::AlreadyExists`] when `path` exists; any other I/O error.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_via_temp(path, bytes, |tmp| {
        // A hard link fails if the target exists: atomic create-if-absent.
        fs::hard_link(tmp, path)?;
        fs::remove_file(tmp)
    })
}

fn write_via_temp(
    path: &Path,
    bytes: &[u8],
    publish: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        unique()
    ));
    let result = (|| {
        let mut file = private_options().open(&tmp)?;
        #[cfg(unix)]
        {
            // The umask may have narrowed the mode; never widened it, but make it exact.
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(PRIVATE_MODE))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        publish(&tmp)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(&dir)
}

fn private_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(PRIVATE_MODE);
    }
    options
}

/// Makes the rename durable (POSIX: the directory entry lives in the directory).
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn unique() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    COUNTER
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(1_000_000_007)
        ^ nanos
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn tempdir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ajwt-fs-{tag}-{}-{}", std::process::id(), unique()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn written_file_is_0600_and_replaces_an_old_one_with_mode_0600() {
        let d = tempdir("mode");
        let p = d.join("key.json");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(mode(&p), 0o600);
        assert_eq!(entries(&d), ["key.json"], "no temporary file left");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failed_write_leaves_the_old_file() {
        let d = tempdir("fail");
        let p = d.join("admin-client.json");
        fs::write(&p, b"old").unwrap();
        // The rename cannot replace a non-empty directory: the publish step fails.
        let blocker = d.join("blocked");
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), b"x").unwrap();
        assert!(write_private(&blocker, b"new").is_err());
        assert_eq!(fs::read(blocker.join("x")).unwrap(), b"x");
        // A missing directory fails before anything is written.
        assert!(write_private(&d.join("missing/f.json"), b"new").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(&d), ["admin-client.json", "blocked"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn write_private_new_never_overwrites() {
        let d = tempdir("new");
        let p = d.join("dpop.pem");
        write_private_new(&p, b"first").unwrap();
        assert_eq!(mode(&p), 0o600);
        let e = write_private_new(&p, b"second").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"first");
        assert_eq!(entries(&d), ["dpop.pem"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        assert!(write_private(Path::new(""), b"x").is_err());
    }
}
