//! The playground's static server, on hyper (HTTP/1.1) and tokio: correct
//! MIME types (browsers refuse wasm served as anything else), a strict
//! Content-Security-Policy, loopback only, and limits so that no client —
//! careless or hostile — can stop it or take the machine's memory:
//!
//! - at most [`MAX_CONNECTIONS`] connections at once, each with a header
//!   deadline ([`HEADER_TIMEOUT`]), a header size cap ([`MAX_HEADER_BYTES`])
//!   and a lifetime cap; one that moves no byte for 30 s is closed, and a
//!   waiting client takes the slot of the connection idle longest, so idle
//!   or non-reading clients cannot starve others (`connections`);
//! - files are streamed in 64 KiB chunks, never read whole;
//! - a failed `accept()` (too many open files, say) is logged and retried;
//!   only a listener that keeps failing for a minute ends the server, with
//!   an error and a non-zero exit;
//! - GET and HEAD only; the `Host` header must name this server (DNS
//!   rebinding), `--allow-host` adds names;
//! - no dotfiles, no symlinks that lead out of the served folders, and under
//!   `/data/` only the CIFAR files `index.json` lists (scanned off the
//!   runtime's threads, the listing reused: `site`);
//! - every answer carries the page's headers, hyper's own parse-error
//!   answers included (`error_heads`).
//!
//! docs/operations.md states this security model.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select;
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::io::ReaderStream;

use prunelab::base::error::{Error, Result};

use crate::cli::ServeArgs;
use crate::connections::Slots;
use crate::error_heads::WithHeaders;
use crate::site::{Site, percent_decode, resolve};

/// The page's response headers — its Content-Security-Policy, cross-origin
/// isolation, nosniff — from the one file that defines them for every host:
/// `static/_headers`, which Netlify and Cloudflare Pages read as it is and
/// this server compiles in. (Hosts that send no headers get the policy from
/// the pages' `<meta>` tags, which tests/e2e/serve.rs holds equal to it.)
const HEADERS_FILE: &str = include_str!("../../../../static/_headers");

/// `HEADERS_FILE`'s `Name: value` lines under `/*`, parsed once.
fn page_headers() -> &'static [(header::HeaderName, HeaderValue)] {
    static PARSED: std::sync::OnceLock<Vec<(header::HeaderName, HeaderValue)>> =
        std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        HEADERS_FILE
            .lines()
            .filter(|l| l.starts_with(char::is_whitespace))
            .filter_map(|l| l.trim().split_once(": "))
            .map(|(name, value)| {
                (
                    header::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .expect("static/_headers: a valid header name"),
                    HeaderValue::from_str(value).expect("static/_headers: a valid header value"),
                )
            })
            .collect()
    })
}

/// The headers every response carries (the page's, and Cache-Control) as
/// `name: value\r\n` lines: what `error_heads` adds to hyper's own answers.
fn header_lines() -> &'static [u8] {
    static LINES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        let mut out = Vec::new();
        for (name, value) in page_headers() {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"cache-control: no-cache\r\n");
        out
    })
}

/// Connections served at once; more wait until one closes.
pub const MAX_CONNECTIONS: usize = 256;
/// Time a client has to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Request line plus headers (hyper answers 431 beyond it).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest a connection may live (the 40 MB wasm at 100 KB/s takes ~7 min).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// How long the listener may keep failing before the server gives up.
const LISTENER_GIVE_UP: Duration = Duration::from_secs(60);

type Body = BoxBody<Bytes, std::io::Error>;

fn mime(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn check_dir(flag: &str, dir: &Path, fix: &str) -> Result<PathBuf> {
    dir.canonicalize()
        .ok()
        .filter(|d| d.is_dir())
        .ok_or_else(|| Error::config(flag, dir.display(), fix))
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let port = match args.port {
        Some(p) => p,
        None => match std::env::var("PORT") {
            Ok(p) => p
                .parse()
                .map_err(|_| Error::config("PORT", &p, "use a port number 1-65535"))?,
            Err(_) => 8080,
        },
    };
    if !args.dir.join("index.html").is_file() {
        return Err(Error::config(
            "dir",
            args.dir.display(),
            "no index.html there; run ./build.sh serve from the repository root",
        ));
    }
    let dir = check_dir("dir", &args.dir, "give the folder holding index.html")?;
    let data = args
        .data
        .as_deref()
        .map(|d| {
            check_dir(
                "data",
                d,
                "give an existing CIFAR directory, or leave --data out",
            )
        })
        .transpose()?
        // Without --data: what `prunelab data fetch` put in its default place.
        .or_else(|| {
            let (variant, folder) = crate::fetch::fetched(&crate::fetch::default_dir())?;
            eprintln!(
                "offering {} from {} to the CIFAR lab (--data DIR to choose another)",
                variant.name(),
                folder.display()
            );
            folder.canonicalize().ok()
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Execution(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| {
                Error::config(
                    "port",
                    port,
                    format!("cannot listen on 127.0.0.1:{port}: {e}"),
                )
            })?;
        // `--port 0` asks the system for a free port: say which one it gave.
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect();
        for h in &args.allow_host {
            hosts.push(h.to_ascii_lowercase());
            if !h.contains(':') {
                hosts.push(format!("{}:{port}", h.to_ascii_lowercase()));
            }
        }
        let site = Arc::new(Site {
            dir,
            data,
            hosts,
            listing: tokio::sync::Mutex::new(None),
        });
        println!("prunelab playground: http://127.0.0.1:{port}/");
        accept_loop(listener, site).await
    })
}

async fn accept_loop(listener: tokio::net::TcpListener, site: Arc<Site>) -> Result<()> {
    let slots = Slots::new(MAX_CONNECTIONS);
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        // One client accepted at a time; it waits here for a slot (a free
        // one, or an idle connection's), the rest in the kernel's backlog.
        let (stream, peer) = match listener.accept().await {
            Ok(c) => {
                failing_since = None;
                c
            }
            Err(e) => {
                // EMFILE and friends pass when connections close: keep serving.
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > LISTENER_GIVE_UP {
                    return Err(Error::Execution(format!(
                        "the server stopped: accepting connections failed for {} s ({e}); \
                         raise the open-file limit (ulimit -n) or the number of clients",
                        LISTENER_GIVE_UP.as_secs()
                    )));
                }
                if since.elapsed() < Duration::from_millis(50) {
                    eprintln!("warning: accepting a connection failed ({e}); retrying");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let held = slots.take().await;
        let site = site.clone();
        let slots = slots.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let site = site.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(site, req, peer).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .serve_connection(
                    TokioIo::new(WithHeaders::new(slots.track(stream, &held), header_lines())),
                    service,
                );
            // Ends at its end, or its lifetime, or after moving nothing for
            // a while, or when a waiting client takes its idle slot.
            let served = pin!(tokio::time::timeout(CONNECTION_LIFETIME, connection));
            let (stalled, evicted) = (pin!(slots.stalled(&held)), pin!(held.evict.notified()));
            let cut = select(stalled, evicted);
            let _ = select(served, cut).await;
        });
    }
}

fn full(text: &'static str) -> Body {
    Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed()
}

/// A plain-text answer with every header a file gets.
fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    finish(
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(full(text))
            .expect("valid response"),
    )
}

/// The headers every response carries.
fn finish(mut response: Response<Body>) -> Response<Body> {
    let h = response.headers_mut();
    for (name, value) in page_headers() {
        h.insert(name.clone(), value.clone());
    }
    // A development server: the browser asks again for every file.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn respond(site: Arc<Site>, req: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
    };
    // Two Host headers make the request ambiguous (RFC 9112, 3.2: answer 400).
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let (host, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return plain(StatusCode::BAD_REQUEST, "more than one Host header\n");
    }
    // A page on another name that rebinds its DNS to 127.0.0.1 must not read our files.
    let host = host
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    if !host.is_some_and(|h| site.hosts.contains(&h)) {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only to 127.0.0.1, localhost and [::1] with its port; \
             start it with --allow-host NAME to add a name\n",
        );
    }
    let path = req.uri().path();
    let (file, content_type) = if path == "/data/index.json" {
        let body = serde_json::to_vec(&*site.listing().await).expect("plain data");
        let len = body.len();
        let body = if head {
            Empty::new().map_err(|never| match never {}).boxed()
        } else {
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed()
        };
        return finish(
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, len)
                .body(body)
                .expect("valid response"),
        );
    } else if let Some(rest) = path.strip_prefix("/data/") {
        // Only the files index.json lists: never anything else under --data.
        let (site, rest) = (site.clone(), rest.to_string());
        let file = tokio::task::spawn_blocking(move || {
            let listed = percent_decode(&rest).is_some_and(|n| site.is_data_file(&n));
            match (&site.data, listed) {
                (Some(d), true) => resolve(d, &rest),
                _ => None,
            }
        })
        .await
        .ok()
        .flatten();
        (file, None)
    } else {
        (resolve(&site.dir, path), None::<&str>)
    };
    let Some(file) = file else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let opened = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(_) => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let len = match opened.metadata().await {
        Ok(m) => m.len(),
        Err(_) => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    let body = if head {
        Empty::new().map_err(|never| match never {}).boxed()
    } else {
        // Streamed: a slow reader holds one 64 KiB chunk, not the whole file.
        let stream = ReaderStream::with_capacity(opened, 64 * 1024);
        StreamBody::new(futures_map(stream)).boxed()
    };
    finish(
        Response::builder()
            .header(
                header::CONTENT_TYPE,
                content_type.unwrap_or_else(|| mime(&file)),
            )
            .header(header::CONTENT_LENGTH, len)
            .body(body)
            .expect("valid response"),
    )
}

/// Chunks of a file as body frames.
fn futures_map(
    stream: ReaderStream<tokio::fs::File>,
) -> impl futures_core::Stream<Item = std::result::Result<Frame<Bytes>, std::io::Error>> {
    use futures_util::StreamExt;
    stream.map(|chunk| chunk.map(Frame::data))
}
