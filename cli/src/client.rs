//! The CLI's side of the domain server: one authenticated HTTP client whose
//! refusals (RFC 9457 problem documents) become errors a person reads.
//! Everything people do goes through it; only bootstrap and recovery open
//! the domain directory.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::path::Path;

/// Where the token comes from when no `--token-file` is given. Not a flag:
/// a token on the command line would be visible to every user of the host.
pub const TOKEN_ENV: &str = "INLAND_TOKEN";

/// An authenticated connection to one domain server.
pub struct Client {
    base: Url,
    token: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// A refusal from the server: its status and the problem's own words.
#[derive(Debug, thiserror::Error)]
#[error("the server answered {status}: {title}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
pub struct Refusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The problem's title.
    pub title: String,
    /// The problem's detail.
    pub detail: String,
}

impl Client {
    /// Connects to `server` (an `http://` or `https://` URL) with the token
    /// from `token_file` or `INLAND_TOKEN`, trusting `ca_cert` (PEM) beside
    /// the system's roots for a server with its own certificate authority.
    pub fn connect(server: &str, token_file: Option<&Path>, ca_cert: Option<&Path>) -> Result<Client> {
        let base = Url::parse(server).with_context(|| format!("--server `{server}` is not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            bail!("--server `{server}` is not an http:// or https:// URL");
        }
        let token = match token_file {
            Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading the token from {}", f.display()))?,
            None => std::env::var(TOKEN_ENV)
                .map_err(|_| anyhow!("no token: put yours in {TOKEN_ENV} or pass --token-file FILE"))?,
        };
        let token = token.trim().to_string();
        if token.is_empty() || token.contains(char::is_whitespace) {
            bail!("the token is empty or has spaces in it; it is one word, as `inland token issue` printed it");
        }
        if base.scheme() == "http" && !loopback(&base) {
            bail!(
                "{server} is plain HTTP beyond this host: your token would cross the network in clear text; \
                 use the server's https:// address (or an SSH tunnel to its loopback port)"
            );
        }
        let mut http = reqwest::Client::builder().user_agent(concat!("inland-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_cert {
            let bytes = std::fs::read(pem).with_context(|| format!("reading {}", pem.display()))?;
            let cert = reqwest::Certificate::from_pem(&bytes)
                .with_context(|| format!("{} is not a PEM certificate", pem.display()))?;
            http = http.add_root_certificate(cert);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Client {
            base,
            token,
            http: http.build().context("setting up the HTTP client")?,
            runtime,
        })
    }

    /// The URL of `segments` under the server, each segment escaped (an
    /// output name may hold any character).
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| anyhow!("--server cannot hold a path"))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request and returns the body of a 2xx answer.
    fn send(&self, method: Method, url: Url, body: Option<(&str, Vec<u8>)>) -> Result<Vec<u8>> {
        let what = format!("{method} {}", url.path());
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some((content_type, bytes)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .with_context(|| format!("{what}: the server did not answer"))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .with_context(|| format!("{what}: reading the answer"))?;
            if status.is_success() {
                return Ok(bytes.to_vec());
            }
            let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let text = |k: &str| problem.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let title = match text("title") {
                t if t.is_empty() => status.canonical_reason().unwrap_or("error").to_string(),
                t => t,
            };
            Err(anyhow::Error::new(Refusal {
                status,
                title,
                detail: text("detail"),
            }))
        })
    }

    /// GETs `segments` with `query` and parses the JSON answer.
    pub fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Value> {
        let bytes = self.send(Method::GET, self.url(segments, query)?, None)?;
        serde_json::from_slice(&bytes).context("the server's answer is not JSON")
    }

    /// GETs `segments` and returns the body as it came.
    pub fn get_bytes(&self, segments: &[&str]) -> Result<Vec<u8>> {
        self.send(Method::GET, self.url(segments, &[])?, None)
    }

    /// Sends `body` as JSON with `method` and parses the JSON answer.
    pub fn send_json(&self, method: Method, segments: &[&str], body: &Value) -> Result<Value> {
        let bytes = serde_json::to_vec(body)?;
        let answer = self.send(method, self.url(segments, &[])?, Some(("application/json", bytes)))?;
        serde_json::from_slice(&answer).context("the server's answer is not JSON")
    }

    /// Sends raw `bytes` of `content_type` with `method` and parses the JSON answer.
    pub fn post_like(&self, method: Method, segments: &[&str], content_type: &str, bytes: Vec<u8>) -> Result<Value> {
        let answer = self.send(method, self.url(segments, &[])?, Some((content_type, bytes)))?;
        serde_json::from_slice(&answer).context("the server's answer is not JSON")
    }

    /// POSTs raw `bytes` of `content_type` and parses the JSON answer.
    pub fn post_bytes(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Value> {
        let answer = self.send(Method::POST, self.url(segments, query)?, Some((content_type, bytes)))?;
        serde_json::from_slice(&answer).context("the server's answer is not JSON")
    }

    /// Sends a request without a body and parses the JSON answer.
    pub fn call(&self, method: Method, segments: &[&str]) -> Result<Value> {
        let answer = self.send(method, self.url(segments, &[])?, None)?;
        serde_json::from_slice(&answer).context("the server's answer is not JSON")
    }

    /// Waits `ms` milliseconds (between polls of a running job).
    pub fn pause(&self, ms: u64) {
        // The timer is made inside the runtime: it needs the runtime's clock.
        self.runtime
            .block_on(async { tokio::time::sleep(std::time::Duration::from_millis(ms)).await });
    }
}

/// Whether `url` names this host (where plain HTTP keeps the token local).
fn loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// A string field of a JSON answer, or `-` when it is absent.
pub fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped_and_queries_encoded() -> Result<()> {
        let c = Client {
            base: Url::parse("http://127.0.0.1:7878/")?,
            token: "t".into(),
            http: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread().build()?,
        };
        let u = c.url(&["api", "outputs", "j", "a b/c"], &[("param", "k=v&x")])?;
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:7878/api/outputs/j/a%20b%2Fc?param=k%3Dv%26x"
        );
        Ok(())
    }

    #[test]
    fn plain_http_is_local_only_on_loopback() -> Result<()> {
        assert!(loopback(&Url::parse("http://127.0.0.1:1")?));
        assert!(loopback(&Url::parse("http://[::1]:1")?));
        assert!(loopback(&Url::parse("http://localhost:1")?));
        assert!(!loopback(&Url::parse("http://10.0.0.1:1")?));
        Ok(())
    }
}
