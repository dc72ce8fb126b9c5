//! `prunelab data fetch cifar10|cifar100`: the official archive, downloaded
//! into `DIR/<archive>.part` (resumed with an HTTP range request when a
//! download stopped), checked against its pinned SHA-256, and unpacked into
//! `DIR/<folder>` only when whole: a folder that exists is always complete.
//! `prunelab data fetch resnet56-cifar10` (and the other published
//! checkpoints, `interop::pretrained`) the same way into `DIR/pretrained/`,
//! with the upstream licence beside it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use prunelab::base::error::{Error, Result};
use prunelab::data::cifar::{Archive, Variant};
use prunelab::interop::pretrained::{self, Checkpoint};
use sha2::{Digest, Sha256};

use crate::cli::FetchArgs;

/// Where fetched data goes unless `--dir` says otherwise: `$PRUNELAB_DATA`,
/// else `data/` under the current directory (what `prunelab serve` looks in).
pub fn default_dir() -> PathBuf {
    std::env::var_os("PRUNELAB_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// A fetched data set under `dir`, if one is there whole (CIFAR-10 first).
pub fn fetched(dir: &Path) -> Option<(Variant, PathBuf)> {
    [Variant::Cifar10, Variant::Cifar100]
        .into_iter()
        .map(|v| (v, dir.join(v.archive().folder)))
        .find(|(v, folder)| v.check_layout(folder).is_ok())
}

pub fn fetch(args: FetchArgs) -> Result<()> {
    if let Some(checkpoint) = pretrained::by_name(&args.dataset) {
        return fetch_checkpoint(&args, checkpoint);
    }
    let variant = Variant::from_name(&args.dataset).ok_or_else(|| {
        Error::config(
            "dataset",
            &args.dataset,
            format!(
                "choose cifar10 or cifar100, or a pretrained model: {}",
                pretrained::names().join(", ")
            ),
        )
    })?;
    let official = variant.archive();
    let (url, sha256) = source(&args, official.url.to_string(), official.sha256)?;
    let dir = args.dir.clone().unwrap_or_else(default_dir);

    let folder = dir.join(official.folder);
    if variant.check_layout(&folder).is_ok() {
        eprintln!(
            "{} is already in {} (delete that folder to fetch it again)",
            variant.name(),
            folder.display()
        );
        println!("{}", folder.display());
        return Ok(());
    }
    if folder.exists() {
        return Err(Error::config(
            "dir",
            folder.display(),
            "a folder of that name is there but incomplete; move it away, then fetch again",
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let part = dir.join(format!("{}.part", official.file));
    let _held = lock(&part)?;
    download(&url, &part)?;
    eprintln!("checking the SHA-256 of {}", part.display());
    let got = sha256_of(&part)?;
    if got != sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Execution(format!(
            "the archive from {url} has SHA-256 {got}, not the pinned {sha256}: it is damaged \
             or not the official {}. It was deleted; run the command again to download it afresh \
             (behind a proxy that rewrites downloads, fetch {} by hand and check it)",
            official.file, official.url
        )));
    }
    unpack(&part, &dir, official, variant)?;
    let _ = std::fs::remove_file(&part);
    eprintln!(
        "{} is ready in {} — use it with --data {} (prunelab serve offers it to the CIFAR lab)",
        variant.name(),
        folder.display(),
        folder.display()
    );
    println!("{}", folder.display());
    Ok(())
}

/// `part`, held by this process alone until the returned file is dropped:
/// two fetches into one folder appended to each other's download, and both
/// then failed and deleted it. The lock (`flock`) ends with the process,
/// however it ends, so a killed fetch never blocks the next one.
fn lock(part: &Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .map_err(|e| Error::io(part, e))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Execution(format!(
            "another `prunelab data fetch` is downloading into {} now; wait for it to finish, \
             or fetch into another --dir",
            part.display()
        )));
    }
    // The fetch that held it may have renamed or deleted the file between
    // our open and our lock: then the lock guards a file no one will use.
    match (file.metadata(), std::fs::metadata(part)) {
        (Ok(held), Ok(now)) if held.ino() == now.ino() && held.dev() == now.dev() => Ok(file),
        _ => Err(Error::Execution(format!(
            "another `prunelab data fetch` has just finished with {}; run the command again",
            part.display()
        ))),
    }
}

/// Redirects a download follows.
const MAX_REDIRECTS: u32 = 10;

/// Where a redirect from `from` to `location` leads, if it is an http(s)
/// address: absolute, or a path on the same server.
fn redirect_target(from: &str, location: &str) -> Option<String> {
    let lower = location.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Some(location.to_string());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let scheme_end = from.find("://")? + 3;
        let host_end = from[scheme_end..]
            .find('/')
            .map_or(from.len(), |i| scheme_end + i);
        return Some(format!("{}{location}", &from[..host_end]));
    }
    None
}

/// GETs `url` into `part`, continuing after the bytes already there when the
/// server takes a range request (206); a server that answers 200 sends the
/// whole file again, so it starts over.
fn download(url: &str, part: &Path) -> Result<()> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            // A server that takes the connection and never answers.
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // No whole-body limit (170 MB over a slow link); a stalled
            // connection still ends after this long without a byte.
            .timeout_recv_body(Some(Duration::from_secs(6 * 3600)))
            .http_status_as_error(false)
            .max_redirects(0)
            .build(),
    );
    if have > 0 {
        eprintln!(
            "resuming the download of {url} after {} already in {}",
            mb(have),
            part.display()
        );
    } else {
        eprintln!("downloading {url}");
    }
    // Redirects are followed here, not by ureq, so that one it cannot
    // follow (to file://, say) is named as such, not as "too many".
    let mut at = url.to_string();
    let mut hops = 0;
    let response = loop {
        let mut request = agent.get(&at);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request.call().map_err(|e| {
            Error::Execution(format!(
                "cannot download {at}: {e} (check the network or a proxy; \
                 run the same command again to retry)"
            ))
        })?;
        if !response.status().is_redirection() {
            break response;
        }
        let to = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("nowhere (no Location header)")
            .to_string();
        hops += 1;
        match redirect_target(&at, &to) {
            Some(next) if hops <= MAX_REDIRECTS => at = next,
            _ => {
                return Err(Error::Execution(format!(
                    "{at} redirects to {to}, which `data fetch` does not follow (it follows up \
                     to {MAX_REDIRECTS} redirects, to http and https addresses only); give the \
                     file's own address with --url"
                )));
            }
        }
    };
    let status = response.status().as_u16();
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let (start, append) = match status {
        206 => (have, true),
        200 => (0, false),
        // The range starts at the end: the file is already whole.
        416 if have > 0 => return Ok(()),
        other => {
            return Err(Error::Execution(format!(
                "{url} answered HTTP {other}; check the address (or the mirror given with --url)"
            )));
        }
    };
    let total = length.map(|n| n.saturating_add(start));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(|e| Error::io(part, e))?;
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bytes:>10} of {total_bytes} {wide_bar} {bytes_per_sec} {eta}",
        )
        .expect("a valid template"),
    );
    bar.set_position(start);
    let mut body = response.into_body().into_reader();
    let mut buffer = vec![0u8; 1 << 16];
    let mut done = start;
    let stopped = |e: std::io::Error, done: u64| {
        Error::Execution(format!(
            "the download stopped after {} of {}: {e}. {} keeps what arrived; run the same \
             command again to resume",
            mb(done),
            total.map_or("?".into(), mb),
            part.display()
        ))
    };
    loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(stopped(e, done));
            }
        };
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io(part, e))?;
        done += n as u64;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    if let Some(total) = total
        && done < total
    {
        return Err(stopped(
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection closed"),
            done,
        ));
    }
    file.sync_all().map_err(|e| Error::io(part, e))?;
    Ok(())
}

fn sha256_of(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Unpacks `archive` into a fresh folder beside the destination, checks the
/// layout there, then renames its one data folder into place.
fn unpack(archive: &Path, dir: &Path, official: Archive, variant: Variant) -> Result<()> {
    eprintln!("unpacking {}", archive.display());
    let staging = dir.join(format!(".unpack-{}", official.folder));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let file = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    // `unpack` keeps every entry inside `staging` (no `..`, no absolute paths).
    if let Err(e) = tar.unpack(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::Execution(format!(
            "cannot unpack {}: {e} (an entry that leads out of the folder, or a full disk; \
             nothing was kept)",
            archive.display()
        )));
    }
    let inner = staging.join(official.folder);
    let checked = no_links(&inner).and_then(|()| variant.check_layout(&inner));
    if let Err(e) = checked {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let folder = dir.join(official.folder);
    std::fs::rename(&inner, &folder).map_err(|e| Error::io(&folder, e))?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

/// The unpacked folder and everything in it must be plain folders and files:
/// an archive from `--url` could otherwise install the folder, or a batch
/// file, as a link to anywhere on the machine.
fn no_links(folder: &Path) -> Result<()> {
    let refuse = |path: &Path| {
        Err(Error::Execution(format!(
            "the archive holds {} as a link; a data folder must hold plain files, so it was not kept",
            path.display()
        )))
    };
    let meta = std::fs::symlink_metadata(folder).map_err(|e| Error::io(folder, e))?;
    if meta.file_type().is_symlink() {
        return refuse(folder);
    }
    if !meta.is_dir() {
        return Ok(()); // check_layout says what is missing
    }
    for entry in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let path = entry.map_err(|e| Error::io(folder, e))?.path();
        let kind = std::fs::symlink_metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .file_type();
        if kind.is_symlink() {
            return refuse(&path);
        }
        if kind.is_dir() {
            no_links(&path)?;
        }
    }
    Ok(())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The official URL and hash, or a mirror's (`--url` with `--sha256`).
fn source(args: &FetchArgs, url: String, sha256: &str) -> Result<(String, String)> {
    let (url, sha256) = match (&args.url, &args.sha256) {
        (None, None) => (url, sha256.to_string()),
        (Some(url), Some(sha)) => (url.clone(), sha.to_ascii_lowercase()),
        _ => {
            return Err(Error::config(
                "url",
                args.url.as_deref().unwrap_or("(none)"),
                "give --url and --sha256 together (a mirror and its file's checksum), or neither",
            ));
        }
    };
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::config(
            "sha256",
            &sha256,
            "give the file's SHA-256 as 64 hex digits",
        ));
    }
    Ok((url, sha256))
}

/// A published checkpoint into `DIR/pretrained/<file>`: downloaded beside
/// it as `.part` (resumed), checked, renamed into place only when whole,
/// with the upstream licence written next to it.
fn fetch_checkpoint(args: &FetchArgs, checkpoint: &Checkpoint) -> Result<()> {
    let official = format!("{}{}", pretrained::BASE_URL, checkpoint.file);
    let (url, sha256) = source(args, official, checkpoint.sha256)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(default_dir)
        .join("pretrained");
    let path = dir.join(checkpoint.file);
    let license = dir.join("LICENSE-pytorch_resnet_cifar10");
    if path.is_file() && sha256_of(&path)? == sha256 {
        std::fs::write(&license, pretrained::LICENSE).map_err(|e| Error::io(&license, e))?;
        eprintln!("{} is already in {}", checkpoint.name, path.display());
        println!("{}", path.display());
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let part = dir.join(format!("{}.part", checkpoint.file));
    let _held = lock(&part)?;
    download(&url, &part)?;
    let got = sha256_of(&part)?;
    if got != sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(Error::Execution(format!(
            "the file from {url} has SHA-256 {got}, not the pinned {sha256}: it is damaged \
             or not {} (the download was deleted; run the command again)",
            checkpoint.file
        )));
    }
    std::fs::write(&license, pretrained::LICENSE).map_err(|e| Error::io(&license, e))?;
    std::fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
    eprintln!(
        "{}: {} ({}, {:.2}% on the CIFAR-10 test set as published; BSD-2-Clause, licence in {})",
        checkpoint.name,
        path.display(),
        checkpoint.model,
        100.0 * checkpoint.accuracy,
        license.display()
    );
    println!("{}", path.display());
    Ok(())
}
