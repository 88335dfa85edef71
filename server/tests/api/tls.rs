//! The server over TLS: a client that trusts the certificate talks to it;
//! a plain-HTTP client and one that does not trust it get nothing; a bad
//! certificate or key is refused at start with the file named.

use crate::support::fixture;
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_tls_with_the_given_certificate() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.key_pair.serialize_pem()).unwrap();

    // Bad files are refused, naming the file.
    let missing = inland_server::tls::acceptor(Path::new("/nonexistent.pem"), &key_pem)
        .err()
        .unwrap();
    assert!(missing.to_string().contains("/nonexistent.pem"), "{missing}");
    let swapped = inland_server::tls::acceptor(&key_pem, &key_pem).err().unwrap();
    assert!(swapped.to_string().contains("key.pem"), "{swapped}");

    let acceptor = inland_server::tls::acceptor(&cert_pem, &key_pem).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let rt = f.rt.clone();
    tokio::spawn(async move {
        inland_server::serve_tls(rt, listener, acceptor, std::future::pending())
            .await
            .unwrap();
    });

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let me = trusting
        .get(format!("https://localhost:{port}/api/whoami"))
        .bearer_auth(&f.auditor.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert!(me.headers().contains_key("strict-transport-security"), "HSTS over TLS");
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["name"], "regulator");
    // The console's session cookie never travels in plain text.
    let no_redirects = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = no_redirects
        .post(format!("https://localhost:{port}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", f.auditor.secret))
        .send()
        .await
        .unwrap();
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.starts_with("inland_session=") && cookie.contains("; Secure"),
        "{cookie}"
    );

    // Not trusted, or not TLS: no answer from the API.
    let strict = reqwest::Client::builder()
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    assert!(
        strict
            .get(format!("https://localhost:{port}/api/whoami"))
            .send()
            .await
            .is_err()
    );
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/whoami"))
        .bearer_auth(&f.auditor.secret)
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
}
