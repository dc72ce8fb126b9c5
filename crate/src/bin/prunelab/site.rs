//! What the playground server serves (issue 33's limits on it): URL paths
//! mapped onto files inside a root, and the CIFAR files under `/data/`
//! (listed off the runtime's threads, the listing reused for
//! [`LISTING_FRESH`]).

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `%XX` decoded (so `my%20file.csv` is reachable); `None` for a malformed
/// escape or a result that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Maps a URL path onto a regular file under `root`: `None` for anything
/// that would leave it (`..`, absolute paths, a symlink pointing out), for
/// dotfiles and dot-folders, and for NUL or backslashes.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = percent_decode(url_path.split(['?', '#']).next().unwrap_or("/"))?;
    if path.contains(['\0', '\\']) {
        return None;
    }
    let mut out = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) if !p.to_string_lossy().starts_with('.') => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    // Symlinks inside the root are fine; ones that lead out of it, or to a
    // dotfile or into a dot-folder inside it, are not.
    let real = out.canonicalize().ok()?;
    let root = root.canonicalize().ok()?;
    let hidden = real
        .strip_prefix(&root)
        .ok()?
        .components()
        .any(|c| matches!(c, Component::Normal(p) if p.to_string_lossy().starts_with('.')));
    (!hidden && real.is_file()).then_some(real)
}

/// What the server serves, fixed at start.
pub struct Site {
    pub dir: PathBuf,
    pub data: Option<PathBuf>,
    /// The `Host` values this server answers to.
    pub hosts: Vec<String>,
    /// The last listing of the data folder and when it was made: a burst
    /// of requests scans the folder once, off the runtime's threads.
    pub listing: tokio::sync::Mutex<Option<(tokio::time::Instant, Arc<Vec<String>>)>>,
}

/// How long a listing of the data folder is reused.
pub const LISTING_FRESH: Duration = Duration::from_secs(2);

impl Site {
    /// The CIFAR files the page may read: regular top-level `*.bin` files
    /// of the data directory (not symlinks out of it).
    fn data_files(&self) -> Vec<String> {
        let Some(dir) = &self.data else {
            return Vec::new();
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| self.is_data_file(n))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Whether the listing holds `name`, from that one name: a top-level
    /// `*.bin` whose file is a `.bin` too (not a link named like one to
    /// notes or a key, not a folder).
    pub fn is_data_file(&self, name: &str) -> bool {
        let Some(dir) = &self.data else {
            return false;
        };
        !name.contains('/')
            && name.ends_with(".bin")
            && resolve(dir, name).is_some_and(|real| real.extension().is_some_and(|e| e == "bin"))
    }

    /// [`Site::data_files`], at most [`LISTING_FRESH`] old, scanned on a
    /// blocking thread (a 30,000-file folder takes a third of a second).
    pub async fn listing(self: &Arc<Self>) -> Arc<Vec<String>> {
        let mut cached = self.listing.lock().await;
        if let Some((made, names)) = &*cached
            && made.elapsed() < LISTING_FRESH
        {
            return names.clone();
        }
        let site = self.clone();
        let names = Arc::new(
            tokio::task::spawn_blocking(move || site.data_files())
                .await
                .unwrap_or_default(),
        );
        *cached = Some((tokio::time::Instant::now(), names.clone()));
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root_and_skip_dotfiles() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::write(r.join("index.html"), "x").unwrap();
        std::fs::write(r.join("my file.txt"), "x").unwrap();
        std::fs::write(r.join(".env"), "secret").unwrap();
        std::fs::create_dir(r.join("sub")).unwrap();
        std::fs::write(r.join("sub/a.js"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", r.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(r.join("sub/a.js"), r.join("in.js")).unwrap();
        assert!(resolve(r, "/").is_some());
        assert!(resolve(r, "/sub/a.js").is_some());
        assert!(resolve(r, "/in.js").is_some(), "a symlink inside the root");
        assert!(resolve(r, "/my%20file.txt").is_some(), "percent-decoded");
        for bad in [
            "/.env",
            "/%2eenv",
            "/out.txt",
            "/../etc/passwd",
            "/sub/../../x",
            "/%2e%2e/x",
            "/sub%5ca.js",
            "/a%00b",
            "/%zz",
            "/nope",
        ] {
            assert!(resolve(r, bad).is_none(), "{bad} must be refused");
        }
    }
}
