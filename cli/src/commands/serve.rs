//! `inland serve`: run the domain server on the open domain until Ctrl-C,
//! over TLS when given a certificate and key.

use super::{async_runtime, open};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Opens the domain and serves its API on `listen`, over TLS with `tls`
/// (certificate chain, key).
pub fn run(domain: &Path, listen: SocketAddr, tls: Option<(PathBuf, PathBuf)>) -> Result<()> {
    if tls.is_none() && !listen.ip().is_loopback() {
        eprintln!(
            "warning: no TLS: bearer tokens sent to {listen} cross the network in clear text; \
             give --tls-cert and --tls-key"
        );
    }
    let acceptor = match &tls {
        Some((cert, key)) => Some(inland_server::tls::acceptor(cert, key).context("setting up TLS")?),
        None => None,
    };
    let runtime = open(domain)?;
    async_runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match acceptor {
            Some(acceptor) => {
                eprintln!("serving the domain at https://{}", listener.local_addr()?);
                inland_server::serve_tls(runtime, listener, acceptor, shutdown).await
            }
            None => {
                eprintln!("serving the domain at http://{}", listener.local_addr()?);
                inland_server::serve(runtime, listener, shutdown).await
            }
        }
        .context("serving the domain")
    })
}
