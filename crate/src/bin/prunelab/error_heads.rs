//! The page's headers on hyper's own error answers (issue 33, L3).
//!
//! hyper answers a request it cannot parse — a malformed header, a head over
//! the size cap, HTTP/0.9, TLS bytes — itself (400, 414 or 431), before the
//! server's handler runs and with a bare head, and offers no hook to change
//! it. This socket wrapper adds the page's headers (CSP, nosniff, COOP/COEP,
//! Cache-Control) to such a head as it is written, so that every response,
//! errors included, carries them, as docs/operations.md says.
//!
//! A head is hyper's when it starts a write (hyper writes a head and its
//! body as one flat buffer, this socket not being vectored), is a 4xx or
//! 5xx, and lacks the Content-Security-Policy every handler answer carries.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket that adds `lines` (`name: value\r\n` each) to hyper's bare
/// error heads.
pub struct WithHeaders<S> {
    inner: S,
    lines: &'static [u8],
    /// An amended head not yet fully written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<S> WithHeaders<S> {
    pub fn new(inner: S, lines: &'static [u8]) -> Self {
        WithHeaders {
            inner,
            lines,
            pending: Vec::new(),
            written: 0,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `data` with `lines` after its status line when it begins with a bare
/// error head (4xx or 5xx, no Content-Security-Policy); `None` otherwise.
pub fn amended(data: &[u8], lines: &[u8]) -> Option<Vec<u8>> {
    let error = data.starts_with(b"HTTP/1.") && matches!(data.get(9), Some(b'4' | b'5'));
    if !error {
        return None;
    }
    let head_end = find(data, b"\r\n\r\n")?;
    let head = data[..head_end].to_ascii_lowercase();
    if find(&head, b"\r\ncontent-security-policy:").is_some() {
        return None;
    }
    let status_end = find(data, b"\r\n")? + 2;
    let mut out = Vec::with_capacity(data.len() + lines.len());
    out.extend_from_slice(&data[..status_end]);
    out.extend_from_slice(lines);
    out.extend_from_slice(&data[status_end..]);
    Some(out)
}

impl<S: AsyncWrite + Unpin> WithHeaders<S> {
    /// Writes what is left of an amended head.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WithHeaders<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WithHeaders<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        match amended(data, self.lines) {
            Some(head) => {
                // Taken whole: the rest goes out on the next write or flush.
                self.pending = head;
                if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(data.len()))
            }
            None => Pin::new(&mut self.inner).poll_write(cx, data),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &[u8] = b"x-content-type-options: nosniff\r\n";

    #[test]
    fn only_bare_error_heads_are_amended() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        let got = amended(bare, LINES).expect("a bare 431 is amended");
        assert_eq!(
            got,
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nx-content-type-options: nosniff\r\ncontent-length: 0\r\n\r\n"
        );
        // The handler's own answers (they carry the policy), successes,
        // informational heads and body bytes pass as they are.
        for data in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-security-policy: x\r\n\r\nnot found\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 400 half a head",
            b"some body bytes",
        ] {
            assert_eq!(
                amended(data, LINES),
                None,
                "{}",
                String::from_utf8_lossy(data)
            );
        }
    }
}
