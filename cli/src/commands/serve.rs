//! `inland serve`: run the domain server on the open domain until Ctrl-C,
//! over TLS when given a certificate and key.

use super::{async_runtime, open};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Opens the domain and serves its API on `listen`, over TLS with `tls`
/// (certificate chain, key); plain HTTP beyond loopback only with `insecure_http`.
pub fn run(domain: &Path, listen: SocketAddr, tls: Option<(PathBuf, PathBuf)>, insecure_http: bool) -> Result<()> {
    let loopback = match listen.ip() {
        std::net::IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        v4 => v4.is_loopback(),
    };
    if tls.is_none() && !loopback {
        if !insecure_http {
            anyhow::bail!(
                "{listen} is beyond loopback: bearer tokens would cross the network in clear text; \
                 give --tls-cert and --tls-key (or --insecure-http to accept that)"
            );
        }
        eprintln!("warning: no TLS: bearer tokens sent to {listen} cross the network in clear text");
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
