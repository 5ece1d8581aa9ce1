//! Hardening (issue 14) over real sockets: who may open the signaling WebSocket
//! (finding 4), look-alike names (9), security headers on every page (13), media sockets
//! on the listen address (15).

mod common;

use common::*;
use lanmeet_proto::{ErrorCode, ServerMessage};
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
    let reply = try_join(&mut ws, "origins", name, None).await;
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

/// The error a join as `name` into `room` gets (panics if it is let in).
async fn refused_join(server: &RunningServer, room: &str, name: &str) -> (ErrorCode, String) {
    let (_ws, reply) = join(server, room, name).await;
    match reply {
        ServerMessage::Error { code, message, .. } => (code, message),
        other => panic!("{name:?} in {room:?} was let in: {other:?}"),
    }
}

#[tokio::test]
async fn look_alike_names_are_refused_or_collide_with_the_original() {
    let server = server().await;
    let (_ada, reply) = join(&server, "lab", "Ada").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");
    let (_lovelace, reply) = join(&server, "lab", "Ada Lovelace").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }), "{reply:?}");

    // Each look-alike from the audit: refused as a name, or taken by "Ada".
    for (look_alike, expected) in [
        ("Аda", ErrorCode::InvalidName),                      // Cyrillic А
        ("Ａｄａ", ErrorCode::NameTaken),                     // fullwidth
        ("𝐀𝐝𝐚", ErrorCode::NameTaken),                        // mathematical bold
        ("ada", ErrorCode::NameTaken),                        // case
        ("\u{3164}Ada", ErrorCode::InvalidName),              // padded with a Hangul filler
        ("Ada\u{3164}", ErrorCode::InvalidName),              //
        ("\u{3164}\u{3164}\u{3164}", ErrorCode::InvalidName), // only fillers
        ("\u{115F}\u{1160}", ErrorCode::InvalidName),
        ("\u{FFA0}", ErrorCode::InvalidName),
        ("A\u{200B}da", ErrorCode::InvalidName), // zero-width space
        ("A\u{0363}da", ErrorCode::InvalidName), // combining small a
        ("Ad\u{034F}a", ErrorCode::InvalidName), // combining grapheme joiner
        ("Ada\u{0301}\u{0301}\u{0301}", ErrorCode::InvalidName), // piled marks
        ("Ada  Lovelace", ErrorCode::NameTaken), // doubled space
        ("Ada\u{3000}Lovelace", ErrorCode::NameTaken), // ideographic space
    ] {
        let (code, message) = refused_join(&server, "lab", look_alike).await;
        assert_eq!(code, expected, "{look_alike:?}: {message}");
        assert!(!message.is_empty());
    }
    let (_, message) = refused_join(&server, "lab", "Ａｄａ").await;
    assert!(message.contains("looks the same as \"Ada\""), "{message}");
    let (_, message) = refused_join(&server, "lab", "Аda").await;
    assert!(message.contains("Cyrillic"), "{message}");
    let (_, message) = refused_join(&server, "lab", "\u{3164}").await;
    assert!(
        message.contains("invisible") && message.contains("U+3164"),
        "{message}"
    );

    // Display names keep what was typed, with the spaces collapsed.
    let (_grace, reply) = join(&server, "lab", "  Grace   Hopper ").await;
    let ServerMessage::Joined { participants, .. } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(participants.len(), 2);
    let (_alan, _) = join(&server, "lab", "Ｇｒａｃｅ").await; // another name: not taken
    let (_, _) = refused_join(&server, "lab", "grace hopper").await;
    let names: Vec<String> = server
        .registry
        .snapshot()
        .into_iter()
        .flat_map(|r| r.members.into_iter().map(|m| m.participant.name))
        .collect();
    assert!(names.contains(&"Grace Hopper".to_string()), "{names:?}");
    assert!(names.contains(&"Ｇｒａｃｅ".to_string()), "{names:?}");
}

#[tokio::test]
async fn look_alike_room_names_are_the_same_room_or_refused() {
    let server = server().await;
    let (_ada, reply) = join(&server, "Physics", "Ada").await;
    assert!(
        matches!(&reply, ServerMessage::Joined { room, .. } if room == "Physics"),
        "{reply:?}"
    );
    let mut guests = Vec::new();
    for same in ["physics", "ＰＨＹＳＩＣＳ"] {
        let (ws, reply) = join(&server, same, &format!("Guest {}", same.len())).await;
        guests.push(ws);
        match reply {
            ServerMessage::Joined {
                room, participants, ..
            } => {
                assert_eq!(room, "Physics", "{same:?} is the room Ada opened");
                assert!(participants.iter().any(|p| p.name == "Ada"), "{same:?}");
            }
            other => panic!("{same:?}: {other:?}"),
        }
    }
    for refused in ["Рhysics", "Physics\u{3164}", "Phy\u{200B}sics"] {
        let (code, message) = refused_join(&server, refused, "Bob").await;
        assert_eq!(code, ErrorCode::InvalidName, "{refused:?}: {message}");
        assert!(message.starts_with("The room name"), "{message}");
    }
    assert_eq!(server.registry.counts(), (1, 3));
}
