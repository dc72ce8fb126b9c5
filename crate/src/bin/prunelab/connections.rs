//! The playground server's connection slots (issue 33, H2): a client that
//! holds a connection without moving a byte must not keep others out.
//!
//! - every connection's socket records when it last moved a byte either way
//!   ([`Tracked`]);
//! - one that moves nothing for [`STALL_TIMEOUT`] is closed (a client that
//!   stopped reading a streamed file, or went quiet mid-request);
//! - when every slot is taken and a new client is waiting, the connection
//!   idle longest (at least [`EVICTABLE_AFTER`]) gives its slot up — a slow
//!   header or a parked keep-alive, never a transfer that is moving.
//!
//! On a loopback-only server every client has the same address, so a cap
//! per address would cap the user with the attacker: idleness, not the
//! address, decides who goes.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A connection that moves no byte for this long is closed.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection idle this long gives its slot to a waiting client.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// One open connection, as the slot table sees it.
struct Entry {
    id: u64,
    last: Arc<AtomicU64>,
    evict: Arc<Notify>,
}

/// The slots and who holds them.
pub struct Slots {
    permits: Arc<Semaphore>,
    open: Mutex<Vec<Entry>>,
    next: AtomicU64,
    start: Instant,
}

/// What a connection holds while it is open: its slot, its progress clock,
/// and the signal that takes the slot back. Dropping it frees the slot.
pub struct Held {
    _permit: OwnedSemaphorePermit,
    slots: Arc<Slots>,
    id: u64,
    pub last: Arc<AtomicU64>,
    pub evict: Arc<Notify>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().expect("no panics while locked");
        open.retain(|e| e.id != self.id);
    }
}

impl Slots {
    pub fn new(count: usize) -> Arc<Slots> {
        Arc::new(Slots {
            permits: Arc::new(Semaphore::new(count)),
            open: Mutex::new(Vec::new()),
            next: AtomicU64::new(0),
            start: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A slot for a client that has connected: a free one, else the one of
    /// the connection idle longest, else (every connection busy) the first
    /// to close.
    pub async fn take(self: &Arc<Self>) -> Held {
        let permit = loop {
            if let Ok(p) = self.permits.clone().try_acquire_owned() {
                break p;
            }
            self.evict_idlest();
            let freed = self.permits.clone().acquire_owned();
            if let Ok(p) = tokio::time::timeout(Duration::from_millis(100), freed).await {
                break p.expect("never closed");
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let last = Arc::new(AtomicU64::new(self.now_ms()));
        let evict = Arc::new(Notify::new());
        self.open
            .lock()
            .expect("no panics while locked")
            .push(Entry {
                id,
                last: last.clone(),
                evict: evict.clone(),
            });
        Held {
            _permit: permit,
            slots: self.clone(),
            id,
            last,
            evict,
        }
    }

    /// Signals the connection idle longest, if any has been idle for
    /// [`EVICTABLE_AFTER`].
    fn evict_idlest(&self) {
        let now = self.now_ms();
        let open = self.open.lock().expect("no panics while locked");
        let idlest = open
            .iter()
            .map(|e| (now.saturating_sub(e.last.load(Ordering::Relaxed)), e))
            .filter(|(idle, _)| *idle >= EVICTABLE_AFTER.as_millis() as u64)
            .max_by_key(|(idle, _)| *idle);
        if let Some((_, e)) = idlest {
            e.evict.notify_one();
        }
    }

    /// Resolves once `held`'s connection has moved no byte for
    /// [`STALL_TIMEOUT`].
    pub async fn stalled(&self, held: &Held) {
        loop {
            let idle = self
                .now_ms()
                .saturating_sub(held.last.load(Ordering::Relaxed));
            let limit = STALL_TIMEOUT.as_millis() as u64;
            if idle >= limit {
                return;
            }
            tokio::time::sleep(Duration::from_millis(limit - idle)).await;
        }
    }

    /// The socket of `held`'s connection, recording its progress.
    pub fn track<S>(&self, inner: S, held: &Held) -> Tracked<S> {
        Tracked {
            inner,
            last: held.last.clone(),
            start: self.start,
        }
    }
}

/// A socket that records when it last moved a byte.
pub struct Tracked<S> {
    inner: S,
    last: Arc<AtomicU64>,
    start: Instant,
}

impl<S> Tracked<S> {
    fn moved(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
