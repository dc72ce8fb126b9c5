//! A small static server for the playground: correct MIME types (browsers
//! refuse wasm served as anything but `application/wasm`), a strict
//! Content-Security-Policy, loopback only.

use std::path::{Component, Path, PathBuf};

use prunelab::error::{Error, Result};

use crate::ServeArgs;

/// Scripts and wasm from this origin only; no network access elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    worker-src 'self' blob:; style-src 'self'; img-src 'self' data: blob:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors *";

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "csv" => "text/csv; charset=utf-8",
        "bin" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

/// Maps a URL path onto a file under `root`, refusing anything that would
/// leave it (`..`, absolute paths).
pub fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let mut out = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    Some(out)
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
    let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| {
        Error::config(
            "port",
            port,
            format!("cannot listen on 127.0.0.1:{port}: {e}"),
        )
    })?;
    println!("prunelab playground: http://127.0.0.1:{port}/");
    let (dir, web, data) = (args.dir.clone(), args.web.clone(), args.data.clone());
    for request in server.incoming_requests() {
        // One thread per request: a large response (the 40 MB wasm module)
        // to a slow reader must not hold up the page's other requests.
        let (dir, web, data) = (dir.clone(), web.clone(), data.clone());
        std::thread::spawn(move || respond(request, &dir, &web, data.as_deref()));
    }
    Ok(())
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

/// The `.bin` files of the data directory, for the page's CIFAR lab (`[]` when
/// no directory is exposed).
fn data_index(data: Option<&Path>) -> Vec<u8> {
    let mut names: Vec<String> = data
        .and_then(|d| std::fs::read_dir(d).ok())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".bin"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    serde_json::to_vec(&names).expect("plain data")
}

fn respond(request: tiny_http::Request, dir: &Path, web: &Path, data: Option<&Path>) {
    let url = request.url().to_string();
    if url == "/data/index.json" {
        let response = tiny_http::Response::from_data(data_index(data))
            .with_header(header("Content-Type", "application/json"))
            .with_header(header("Content-Security-Policy", CSP));
        let _ = request.respond(response);
        return;
    }
    let file = if let (Some(rest), Some(data)) = (url.strip_prefix("/data/"), data) {
        resolve(data, rest)
    } else if let Some(rest) = url.strip_prefix("/web/") {
        resolve(web, rest)
    } else {
        resolve(dir, &url)
    };
    let response = match file.and_then(|f| std::fs::read(&f).ok().map(|b| (f, b))) {
        Some((file, body)) => tiny_http::Response::from_data(body)
            .with_header(header("Content-Type", mime(&file)))
            .with_status_code(200),
        None => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
    };
    let response = response
        .with_header(header("Content-Security-Policy", CSP))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Cache-Control", "no-cache"));
    let _ = request.respond(response);
}
