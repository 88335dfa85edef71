//! `inland serve`: run the domain server on the open domain until Ctrl-C.

use super::{async_runtime, open};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::Path;

/// Opens the domain and serves its API on `listen`.
pub fn run(domain: &Path, listen: SocketAddr) -> Result<()> {
    if !listen.ip().is_loopback() {
        // TLS is not built yet (#19): say plainly what listening beyond loopback means.
        eprintln!("warning: no TLS: bearer tokens sent to {listen} cross the network in clear text");
    }
    let runtime = open(domain)?;
    async_runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        eprintln!("serving the domain at http://{}", listener.local_addr()?);
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        inland_server::serve(runtime, listener, shutdown)
            .await
            .context("serving the domain")
    })
}
