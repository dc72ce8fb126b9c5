//! `prunelab data fetch` against a local HTTP server serving a small
//! generated archive in the official layout: download, checksum, unpack,
//! resume after a cut connection, and the refusals.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::{fails, ok};
use sha2::Digest;

/// A `.tar.gz` holding `cifar-10-batches-bin/` with two records per file,
/// plus `extra` entries (name, bytes) written verbatim.
fn archive(extra: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        // Written raw: `append_data` would refuse the hostile names below.
        let raw = name.as_bytes();
        header.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        header.set_cksum();
        tar.append(&header, bytes).unwrap();
    };
    // Pixels from an LCG: gzip cannot shrink them, so the archive is large
    // enough (~37 kB) to cut mid-way.
    let mut state = 12345u32;
    for (k, name) in files.iter().enumerate() {
        let mut records = Vec::new();
        for r in 0..2u8 {
            records.push(r);
            let value = k as u8 * 10 + r;
            records.push(value);
            records.extend((1..3072).map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            }));
        }
        add(&format!("cifar-10-batches-bin/{name}"), &records);
    }
    for (name, bytes) in extra {
        add(name, bytes);
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `body` at `/a.tar.gz` (404 elsewhere), honouring `Range:
/// bytes=N-`; the first response is cut after `cut` bytes when given.
/// `/moved` redirects to it, `/to-file` to `file:///etc/passwd`, `/loop`
/// to itself.
/// Returns the base URL and the Range headers it saw, in order.
fn serve(body: Vec<u8>, cut: Option<usize>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        let mut first = true;
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let mut range = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').to_string();
                }
            }
            seen.lock().unwrap().push(range.clone());
            let redirect = [
                ("GET /moved ", "/a.tar.gz"),
                ("GET /to-file ", "file:///etc/passwd"),
                ("GET /loop ", "/loop"),
            ]
            .into_iter()
            .find(|(from, _)| request.starts_with(from));
            if let Some((_, to)) = redirect {
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                );
                continue;
            }
            if !request.starts_with("GET /a.tar.gz ") {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let start: usize = range.parse().unwrap_or(0);
            let head = if start > 0 {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
                    body.len() - start,
                    body.len() - 1,
                    body.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            };
            let _ = stream.write_all(head.as_bytes());
            let rest = &body[start..];
            let sent = match (first, cut) {
                (true, Some(n)) => &rest[..n.min(rest.len())],
                _ => rest,
            };
            first = false;
            let _ = stream.write_all(sent);
            let _ = stream.flush();
        }
    });
    (url, ranges)
}

fn fetch_args<'a>(dir: &'a Path, url: &'a str, sha: &'a str) -> Vec<&'a str> {
    vec![
        "data",
        "fetch",
        "cifar10",
        "--dir",
        dir.to_str().unwrap(),
        "--url",
        url,
        "--sha256",
        sha,
    ]
}

#[test]
fn fetch_resumes_a_cut_download_checks_it_and_unpacks_the_layout() {
    let body = archive(&[]);
    let sha = sha256(&body);
    assert!(body.len() > 20_000, "{} bytes", body.len());
    let (base, ranges) = serve(body.clone(), Some(5000));
    let url = format!("{base}/a.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let args = fetch_args(dir.path(), &url, &sha);

    let err = fails(&args);
    assert!(
        err.contains("stopped after") && err.contains("run the same command again to resume"),
        "{err}"
    );
    let part = dir.path().join("cifar-10-binary.tar.gz.part");
    assert_eq!(
        std::fs::metadata(&part).unwrap().len(),
        5000,
        "kept what arrived"
    );
    assert!(!dir.path().join("cifar-10-batches-bin").exists());

    let (stdout, err) = ok(&args);
    assert!(err.contains("resuming the download"), "{err}");
    assert_eq!(
        *ranges.lock().unwrap(),
        vec![String::new(), "5000".to_string()],
        "the second request asks only for the rest"
    );
    let folder = dir.path().join("cifar-10-batches-bin");
    assert_eq!(stdout.trim(), folder.display().to_string());
    let test_batch = std::fs::read(folder.join("test_batch.bin")).unwrap();
    assert_eq!(test_batch.len(), 2 * 3073);
    assert_eq!(test_batch[3073], 1, "the second record's label");
    assert_eq!(
        test_batch[1], 50,
        "the test batch's first pixel, as written"
    );
    assert!(!part.exists(), "the archive is gone once unpacked");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "only the data folder: {leftovers:?}");

    // The unpacked files are data prunelab trains on.
    let (_, err) = ok(&[
        "train",
        "--data",
        folder.to_str().unwrap(),
        "--model",
        "cnn",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]);
    assert!(
        err.contains("10 classes") && err.contains("test accuracy"),
        "{err}"
    );

    // Fetching again does nothing and says where it is.
    let (stdout, err) = ok(&args);
    assert!(err.contains("already in"), "{err}");
    assert_eq!(stdout.trim(), folder.display().to_string());
}

#[test]
fn fetch_refuses_a_bad_checksum_a_missing_file_and_entries_outside_the_folder() {
    let body = archive(&[("../escaped.txt", b"x"), ("/tmp/absolute.txt", b"y")]);
    let sha = sha256(&body);
    let (base, _) = serve(body.clone(), None);
    let url = format!("{base}/a.tar.gz");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");

    let wrong = "0".repeat(64);
    let err = fails(&fetch_args(&dir, &url, &wrong));
    assert!(
        err.contains("SHA-256") && err.contains(&sha) && err.contains("deleted"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left");

    let missing = format!("{base}/nothing.tar.gz");
    let err = fails(&fetch_args(&dir, &missing, &sha));
    assert!(err.contains("HTTP 404"), "{err}");

    let err = fails(&["data", "fetch", "cifar10", "--url", &url]);
    assert!(err.contains("--sha256"), "{err}");
    let err = fails(&["data", "fetch", "mnist"]);
    assert!(err.contains("cifar10 or cifar100"), "{err}");

    // A redirect it will not follow is named (probe 2, L4: "too many redirects").
    let to_file = format!("{base}/to-file");
    let err = fails(&fetch_args(&dir, &to_file, &sha));
    assert!(
        err.contains("redirects to file:///etc/passwd") && err.contains("does not follow"),
        "{err}"
    );
    let looping = format!("{base}/loop");
    let err = fails(&fetch_args(&dir, &looping, &sha));
    assert!(
        err.contains("redirects to /loop") && err.contains("up to 10 redirects"),
        "{err}"
    );

    // A hostile archive, through a redirect, unpacks its data folder and
    // nothing outside it.
    let moved = format!("{base}/moved");
    ok(&fetch_args(&dir, &moved, &sha));
    assert!(dir.join("cifar-10-batches-bin/test_batch.bin").is_file());
    assert!(!root.path().join("escaped.txt").exists());
    assert!(!Path::new("/tmp/absolute.txt").exists());
}

/// A published checkpoint (`interop::pretrained`) lands in `DIR/pretrained/`
/// under its upstream name, with the upstream licence beside it; a second
/// fetch finds it; a wrong hash is refused and leaves nothing; an unknown
/// name lists the checkpoints.
#[test]
fn fetch_puts_a_pretrained_checkpoint_and_its_licence_in_place() {
    let body: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha = sha256(&body);
    let (base, _) = serve(body.clone(), Some(9000));
    let url = format!("{base}/a.tar.gz");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = [
        "data",
        "fetch",
        "resnet56-cifar10",
        "--dir",
        d,
        "--url",
        &url,
        "--sha256",
        &sha,
    ];
    // The first answer is cut: nothing is in place, the part is kept.
    let err = fails(&args);
    assert!(
        err.contains("run the same command again to resume"),
        "{err}"
    );
    let path = dir.path().join("pretrained/resnet56-4bfd9763.th");
    assert!(!path.exists());
    let (out, _) = ok(&args);
    assert_eq!(std::fs::read(&path).unwrap(), body, "resumed and whole");
    assert!(out.contains("resnet56-4bfd9763.th"), "{out}");
    let licence =
        std::fs::read_to_string(dir.path().join("pretrained/LICENSE-pytorch_resnet_cifar10"))
            .unwrap();
    assert!(licence.contains("Yerlan Idelbayev"), "{licence}");
    let (_, again) = ok(&args);
    assert!(again.contains("already in"), "{again}");

    let other = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let err = fails(&[
        "data",
        "fetch",
        "resnet20-cifar10",
        "--dir",
        other.path().to_str().unwrap(),
        "--url",
        &url,
        "--sha256",
        &wrong,
    ]);
    assert!(
        err.contains("SHA-256") && err.contains("resnet20-12fca82f.th"),
        "{err}"
    );
    assert!(
        !other
            .path()
            .join("pretrained/resnet20-12fca82f.th")
            .exists()
    );
    assert!(
        !other
            .path()
            .join("pretrained/resnet20-12fca82f.th.part")
            .exists()
    );

    let err = fails(&["data", "fetch", "resnet57-cifar10"]);
    assert!(
        err.contains("resnet56-cifar10") && err.contains("cifar10 or cifar100"),
        "{err}"
    );
}

/// Two fetches into one folder: the second is refused at once, by name, and
/// the first one's download is left alone (probe 2, L5: they appended to
/// each other's `.part`, then both failed and deleted it).
#[test]
fn a_second_fetch_into_the_same_folder_is_refused_while_the_first_runs() {
    // A server that accepts and never answers keeps the first fetch going.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    let dir = tempfile::tempdir().unwrap();
    let sha = "0".repeat(64);
    let mut first = crate::support::bin()
        .args(fetch_args(dir.path(), &url, &sha))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let part = dir.path().join("cifar-10-binary.tar.gz.part");
    let since = std::time::Instant::now();
    while !part.exists() && since.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(part.exists(), "the first fetch never started its download");
    let e = fails(&fetch_args(dir.path(), &url, &sha));
    let _ = first.kill();
    let _ = first.wait();
    assert!(
        e.contains("another `prunelab data fetch` is downloading"),
        "{e}"
    );
    assert!(part.exists(), "the first fetch's download was deleted");
}

/// The official archive with a link added at `name`, pointing at `target`.
fn archive_with_link(name: &str, target: &str) -> Vec<u8> {
    use std::io::Read;
    let plain = archive(&[]);
    let mut source = tar::Archive::new(flate2::read::GzDecoder::new(&plain[..]));
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut out = tar::Builder::new(gz);
    for entry in source.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.append(&header, &data[..]).unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    out.append_link(&mut header, name, target).unwrap();
    out.into_inner().unwrap().finish().unwrap()
}

/// An archive from `--url` that puts a link in the data folder (to a file
/// anywhere on the machine) is refused, and neither the folder nor the
/// staging folder is left (probe 2, L4: accepted as "ready").
#[test]
fn fetch_refuses_an_archive_that_holds_a_link() {
    let body = archive_with_link("cifar-10-batches-bin/readme.html", "/etc/hostname");
    let sha = sha256(&body);
    let (base, _) = serve(body, None);
    let url = format!("{base}/a.tar.gz");
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let err = fails(&fetch_args(&dir, &url, &sha));
    assert!(err.contains("as a link"), "{err}");
    assert!(
        !dir.join("cifar-10-batches-bin").exists(),
        "the folder was installed"
    );
    assert!(
        !dir.join(".unpack-cifar-10-batches-bin").exists(),
        "the staging folder was left"
    );
}
