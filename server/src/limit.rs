//! A bound on open connections. Each accepted connection holds a place
//! until it closes; past the bound the listener waits before accepting
//! more, so a flood of connects holds no more sockets than that.

use axum::serve::Listener;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections open at once, plain or TLS.
pub const MAX_CONNECTIONS: usize = 1024;

/// A connection holding its place among the open ones.
pub struct Counted<S> {
    stream: S,
    _place: OwnedSemaphorePermit,
}

impl<S> Counted<S> {
    /// `stream`, holding `place` until it is dropped.
    pub(crate) fn new(stream: S, place: OwnedSemaphorePermit) -> Self {
        Counted { stream, _place: place }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A plain TCP listener with at most `cap` connections open.
pub struct Limited {
    tcp: TcpListener,
    places: Arc<Semaphore>,
}

impl Limited {
    /// At most `cap` connections of `tcp` open at once.
    pub fn new(tcp: TcpListener, cap: usize) -> Limited {
        Limited {
            tcp,
            places: Arc::new(Semaphore::new(cap)),
        }
    }

    /// Places free now.
    pub fn free(&self) -> usize {
        self.places.available_permits()
    }
}

impl Listener for Limited {
    type Io = Counted<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let Ok(place) = self.places.clone().acquire_owned().await else {
            return std::future::pending().await;
        };
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => return (Counted::new(stream, place), peer),
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_place_is_held_while_a_connection_is_open() -> std::io::Result<()> {
        let tcp = TcpListener::bind("127.0.0.1:0").await?;
        let addr = tcp.local_addr()?;
        let mut limited = Limited::new(tcp, 2);
        let _a = TcpStream::connect(addr).await?;
        let _b = TcpStream::connect(addr).await?;
        let (first, _) = limited.accept().await;
        assert_eq!(limited.free(), 1);
        let (second, _) = limited.accept().await;
        assert_eq!(limited.free(), 0, "no place left: the next accept waits");
        drop(first);
        assert_eq!(limited.free(), 1, "a closed connection frees its place");
        drop(second);
        assert_eq!(limited.free(), 2);
        Ok(())
    }
}
