//! The demo's HTTP side: the domain server on a loopback port, and requests
//! to it as one person or another (each with their own bearer token).

use anyhow::{Context, Result, anyhow};
use inland_runtime::{IssuedToken, Runtime};
use serde_json::Value;
use std::time::Duration;

/// The server the demo started, and a client for it.
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// An answer: the status, and the body as JSON (a problem document on refusals).
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Reply {
    /// The problem's detail, for a refusal.
    pub fn detail(&self) -> String {
        self.body["detail"].as_str().unwrap_or("").to_string()
    }
}

impl Api {
    /// Starts the domain server over `runtime` on a free loopback port; it
    /// serves until the process ends.
    pub fn start(runtime: Runtime) -> Result<Api> {
        let base = inland_server::spawn_on_loopback(runtime).context("starting the demo server")?;
        Ok(Api {
            base,
            http: reqwest::Client::new(),
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request as `who`.
    pub async fn call(
        &self,
        who: &IssuedToken,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Reply> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&who.secret);
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.with_context(|| format!("calling {path}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.with_context(|| format!("reading {path}"))?;
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Ok(Reply { status, body })
    }

    /// GETs `path` as `who`.
    pub async fn get(&self, who: &IssuedToken, path: &str) -> Result<Reply> {
        self.call(who, reqwest::Method::GET, path, None).await
    }

    /// POSTs `body` as JSON to `path` as `who`.
    pub async fn post_json(&self, who: &IssuedToken, path: &str, body: &Value) -> Result<Reply> {
        let bytes = serde_json::to_vec(body)?;
        self.call(who, reqwest::Method::POST, path, Some(("application/json", bytes)))
            .await
    }

    /// Submits `wasm` under `grant` with `params` as the operator `who`, and
    /// waits for the job to end; returns the operator's view of it (a
    /// submission refused before it was queued reads as a refused job).
    pub async fn run_job(
        &self,
        who: &IssuedToken,
        grant: &str,
        wasm: Vec<u8>,
        params: &[(&str, &str)],
    ) -> Result<Value> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("grant", grant);
        for (k, v) in params {
            query.append_pair("param", &format!("{k}={v}"));
        }
        let path = format!("/api/jobs?{}", query.finish());
        let submitted = self
            .call(who, reqwest::Method::POST, &path, Some(("application/wasm", wasm)))
            .await?;
        if (400..500).contains(&submitted.status) {
            // Refused before it was queued (the wrong world, a denied import):
            // no job exists; the operator reads why.
            return Ok(serde_json::json!({
                "id": "not queued",
                "state": "refused",
                "refusal": format!("{} {}", submitted.status, submitted.detail()),
            }));
        }
        if submitted.status != 202 {
            return Err(anyhow!(
                "submission failed ({}): {}",
                submitted.status,
                submitted.detail()
            ));
        }
        let id = submitted.body["job_id"]
            .as_str()
            .ok_or_else(|| anyhow!("the server gave no job id"))?
            .to_string();
        loop {
            let view = self.get(who, &format!("/api/jobs/{id}")).await?;
            let state = view.body["state"].as_str().unwrap_or("");
            if !matches!(state, "queued" | "running") {
                return Ok(view.body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
