//! Plain HTTP on the HTTPS port: answered with a redirect to HTTPS instead of silence.
//!
//! Someone who types `lanmeet-pc:8443` gets `http://`, and a TLS server that reads a
//! plain request as a broken handshake just closes the connection: the browser shows
//! an error that explains nothing. A TLS connection always opens with a handshake
//! record (content type 22), and no HTTP method starts with that byte, so one peeked
//! byte tells them apart. TLS connections go on to rustls untouched; a plain request's
//! head is read (bounded in size and time), parsed with `httparse`, and answered with
//! `301` to the same host and path over HTTPS.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::admission::{Admit, Admitted};

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// Longest plain request head read before answering.
const MAX_HEAD: usize = 8 * 1024;
/// How long a connection may take to send its first byte, or a plain request's head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor in front of rustls: admits the connection under the caps first
/// ([`Admit`]), then passes TLS connections on and redirects plain HTTP.
#[derive(Clone)]
pub struct RedirectPlainHttp(pub Admit);

impl<S: Send + 'static> Accept<TcpStream, S> for RedirectPlainHttp {
    type Stream = Admitted;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Admitted, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = admitted.await?;
            let mut first = [0u8; 1];
            let n = tokio::time::timeout(READ_TIMEOUT, stream.peek(&mut first))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no first byte"))??;
            if n == 0 || first[0] == TLS_HANDSHAKE {
                // TLS (or a closed connection, which rustls reports as such).
                return Ok((stream, service));
            }
            let redirected = tokio::time::timeout(READ_TIMEOUT, redirect(stream)).await;
            debug!(?redirected, "plain HTTP on the HTTPS port");
            Err(io::Error::other(
                "plain HTTP answered with a redirect to HTTPS",
            ))
        })
    }
}

/// Reads a plain request's head and answers it with a redirect to HTTPS.
async fn redirect(mut stream: Admitted) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let response = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                let fallback = stream.local_addr()?.to_string();
                let host = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("host"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .filter(|h| is_host(h))
                    .unwrap_or(&fallback);
                let path = request.path.filter(|p| p.starts_with('/')).unwrap_or("/");
                break moved(&format!("https://{host}{path}"));
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => continue,
            _ => break bad_request(),
        }
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Whether `host` is a plain `name[:port]` or `[v6]:port` (no user info, no path).
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

fn moved(location: &str) -> String {
    let body = "This server speaks HTTPS only: use the https:// address.\n";
    format!(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn bad_request() -> String {
    let body = "This server speaks HTTPS only.\n";
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert!(is_host("lanmeet-pc.local:8443"));
        assert!(is_host("192.168.1.20:8443"));
        assert!(is_host("[::1]:8443"));
        assert!(!is_host("evil.example/@x"));
        assert!(!is_host("a b"));
        assert!(!is_host(""));
    }
}
