//! The default mode: HTTPS with a certificate generated on first start, kept across
//! restarts, valid for localhost, and the client served over it.

use std::sync::Arc;

use lanmeet_server::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

async fn https_get(addr: std::net::SocketAddr, cert_pem: &[u8], path: &str) -> String {
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &cert_pem[..]) {
        roots.add(cert.expect("pem")).expect("a usable certificate");
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake verifies the generated certificate for localhost");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn https_by_default_with_a_kept_certificate() {
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("lanmeet-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.clone(),
        udp_port: 0,
        workers: 1,
        ..Config::default()
    };
    assert!(!config.http, "HTTPS is the default");
    let server = lanmeet_server::start(config.clone()).await.expect("starts");
    assert_eq!(server.scheme, "https");
    let cert = std::fs::read(dir.join("cert.pem")).expect("certificate generated");
    let response = https_get(server.addr, &cert, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
    let page = https_get(server.addr, &cert, "/r/lab").await;
    assert!(
        page.contains("<html") || page.contains("<!doctype"),
        "{page}"
    );
    server.shutdown().await.expect("clean shutdown");

    // A restart keeps the certificate, so browsers that accepted it keep working.
    let server = lanmeet_server::start(config).await.expect("restarts");
    assert_eq!(std::fs::read(dir.join("cert.pem")).expect("kept"), cert);
    let response = https_get(server.addr, &cert, "/healthz").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
