//! Hardening (issue 14) over real sockets: who may open the signaling WebSocket
//! (finding 4), look-alike names (9), security headers on every page (13), media sockets
//! on the listen address (15).

mod common;

use common::*;
use lanmeet_proto::{ClientMessage, ServerMessage};
use lanmeet_server::RunningServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error as WsError;

/// Opens `/ws` with `Origin: origin` (none: no header); returns the socket, or the
/// refusal's status and body.
async fn connect_from(server: &RunningServer, origin: Option<&str>) -> Result<Ws, (u16, String)> {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    if let Some(o) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(o).expect("header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("unexpected failure: {e}"),
    }
}

/// The socket works: a join is answered with `joined`.
async fn joins(mut ws: Ws, name: &str) {
    send(
        &mut ws,
        &ClientMessage::Join {
            version: 1,
            room: "origins".into(),
            name: name.into(),
            resume: None,
        },
    )
    .await;
    let reply = recv(&mut ws).await.expect("a reply");
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
}

#[tokio::test]
async fn cross_origin_upgrades_are_refused_same_origin_and_originless_ones_accepted() {
    let server = server().await;
    let own = format!("http://{}", server.addr);

    let (status, body) = connect_from(&server, Some("https://evil.example"))
        .await
        .expect_err("a page from another site is refused");
    assert_eq!(status, 403);
    assert!(
        body.contains("https://evil.example") && body.contains("--allowed-origin"),
        "{body}"
    );
    // Same host, another port: another origin.
    let other_port = format!("http://127.0.0.1:{}", server.addr.port().wrapping_add(1));
    assert_eq!(
        connect_from(&server, Some(&other_port))
            .await
            .err()
            .map(|e| e.0),
        Some(403)
    );
    assert_eq!(
        connect_from(&server, Some("null")).await.err().map(|e| e.0),
        Some(403)
    );

    joins(
        connect_from(&server, Some(&own)).await.expect("own origin"),
        "Ada",
    )
    .await;
    joins(
        connect_from(&server, None)
            .await
            .expect("no Origin: not a page"),
        "Bob",
    )
    .await;
}

#[tokio::test]
async fn an_allowed_origin_is_accepted() {
    let server = server_with(|c| c.allowed_origins = vec!["https://meet.example.org".into()]).await;
    joins(
        connect_from(&server, Some("https://meet.example.org"))
            .await
            .expect("allowed origin"),
        "Ada",
    )
    .await;
    joins(
        connect_from(&server, Some("https://MEET.example.org:443"))
            .await
            .expect("the same origin, spelled otherwise"),
        "Bob",
    )
    .await;
    let refused = connect_from(&server, Some("https://other.example.org")).await;
    assert_eq!(refused.err().map(|e| e.0), Some(403));
}

/// Local addresses of the UDP sockets bound to `port`, from the kernel's table (IPv4,
/// as dotted quads).
fn udp_local_ips(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let local = line.split_whitespace().nth(1)?;
            let (ip, p) = local.split_once(':')?;
            if u16::from_str_radix(p, 16).ok()? != port {
                return None;
            }
            let ip = u32::from_str_radix(ip, 16).ok()?;
            // The kernel prints the address in host byte order (little-endian here).
            Some(std::net::Ipv4Addr::from(ip.swap_bytes()).to_string())
        })
        .collect()
}

#[tokio::test]
async fn media_sockets_bind_the_listen_address_unless_told_otherwise() {
    let server = server().await; // --listen 127.0.0.1:0
    for port in &server.udp_ports {
        assert_eq!(udp_local_ips(*port), ["127.0.0.1"], "media port {port}");
    }
    let server = server_with(|c| c.udp_bind = Some("0.0.0.0".parse().expect("ip"))).await;
    for port in &server.udp_ports {
        assert_eq!(
            udp_local_ips(*port),
            ["0.0.0.0"],
            "media port {port} with --udp-bind"
        );
    }
}

#[tokio::test]
async fn every_page_and_static_file_carries_the_security_headers() {
    let server = server().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in [
        "/",
        "/r/x",
        "/admin",
        "/admin/login",
        "/app.js",
        "/style.css",
        "/admin.css",
        "/vendor/uplot/uPlot.min.css",
        "/no-such-file",
        "/healthz",
    ] {
        let response = client
            .get(format!("http://{}{path}", server.addr))
            .send()
            .await
            .expect("a response");
        let h = response.headers();
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        let csp = get("content-security-policy");
        for directive in [
            "default-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing from {csp:?}"
            );
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
    }
    // The admin pages keep no inline style or script, which the policy would block.
    let login = client
        .get(format!("http://{}/admin/login", server.addr))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("text");
    assert!(
        login.contains("/admin.css") && !login.contains("<style"),
        "{login}"
    );
}
