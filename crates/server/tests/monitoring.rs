//! `/metrics` and `/admin` on the real server: who gets in, who is refused, what the
//! exposition says.

mod common;

use std::time::Duration;

use lanmeet_proto::{ClientMessage, ServerMessage};
use lanmeet_server::admin::auth::MAX_FAILURES;
use lanmeet_server::metrics::METRIC_NAMES;
use lanmeet_server::RunningServer;
use reqwest::{header, redirect, Client, StatusCode};

const PASSWORD: &str = "correct horse battery staple";

async fn server() -> RunningServer {
    common::server_with(|c| {
        c.admin_password = Some(lanmeet_server::config::Secret(PASSWORD.into()));
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await
}

fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client")
}

fn url(server: &RunningServer, path: &str) -> String {
    format!("http://{}{path}", server.addr)
}

async fn scrape(server: &RunningServer) -> prometheus_parse::Scrape {
    let resp = client()
        .get(url(server, "/metrics"))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("body");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_need_the_password_on_the_main_listener_only() {
    let server = server().await;
    let http = client();
    let plain = http
        .get(url(&server, "/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(plain.status(), StatusCode::UNAUTHORIZED);
    assert!(plain.headers().contains_key(header::WWW_AUTHENTICATE));
    let wrong = http
        .get(url(&server, "/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = http
        .get(url(&server, "/metrics"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .expect("get");
    assert_eq!(basic.status(), StatusCode::OK);
    let body = basic.text().await.expect("body");
    assert!(!body.contains(PASSWORD));

    let open = server.metrics_addr.expect("metrics listener");
    let unauthenticated = http
        .get(format!("http://{open}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(unauthenticated.status(), StatusCode::OK);
    server.shutdown().await.expect("shutdown");
    assert!(
        tokio::net::TcpStream::connect(open).await.is_err(),
        "the metrics listener closes with the server"
    );
}

#[tokio::test]
async fn exposition_parses_names_every_metric_and_counts_signaling() {
    let server = server().await;
    let text = client()
        .get(url(&server, "/metrics"))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    for name in METRIC_NAMES {
        // Families without samples yet (no join failed) still have their TYPE line.
        let family = name.trim_end_matches("_total");
        assert!(text.contains(&format!("# TYPE {family}")), "{name} missing");
    }
    let before = scrape(&server).await;
    assert_eq!(value(&before, "lanmeet_build_info", None), 1.0);

    let (mut a, _) = common::join(&server, "metrics-room", "Ann").await;
    let (_b, _) = common::join(&server, "metrics-room", "Bob").await;
    let mut taken = common::connect(&server).await;
    common::send(
        &mut taken,
        &common::join_request("metrics-room", "ann", None, None),
    )
    .await;
    common::recv_until(&mut taken, |m| matches!(m, ServerMessage::Error { .. })).await;
    common::send(
        &mut a,
        &ClientMessage::Chat {
            text: "hello".into(),
            to: vec![],
        },
    )
    .await;
    common::recv_until(&mut a, |m| matches!(m, ServerMessage::Chat { .. })).await;

    let after = scrape(&server).await;
    let delta = |name: &str, label| value(&after, name, label) - value(&before, name, label);
    assert_eq!(delta("lanmeet_chat_messages_total", None), 1.0);
    assert_eq!(
        delta(
            "lanmeet_join_failures_total",
            Some(("reason", "name_taken"))
        ),
        1.0
    );
    assert_eq!(delta("lanmeet_websocket_connections_total", None), 3.0);
    assert!(delta("lanmeet_signaling_received_bytes_total", None) > 100.0);
    assert!(delta("lanmeet_signaling_sent_bytes_total", None) > 100.0);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn admin_api_needs_a_session_or_the_password() {
    let server = server().await;
    let http = client();
    for path in ["/admin/api/history", "/admin/api/rooms", "/admin/api/live"] {
        let resp = http.get(url(&server, path)).send().await.expect("get");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let page = http.get(url(&server, "/admin")).send().await.expect("get");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    let forged = http
        .get(url(&server, "/admin/api/rooms"))
        .header(header::COOKIE, "lanmeet_admin=00112233445566778899")
        .send()
        .await
        .expect("get");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let login = http
        .post(url(&server, "/admin/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Path=/admin"));
    let session = cookie.split(';').next().expect("name=value").to_string();

    let (_ann, _) = common::join(&server, "admin-room", "Ann").await;
    let rooms: serde_json::Value = http
        .get(url(&server, "/admin/api/rooms"))
        .header(header::COOKIE, &session)
        .send()
        .await
        .expect("rooms")
        .json()
        .await
        .expect("json");
    assert_eq!(rooms["rooms"][0]["name"], "admin-room");
    assert_eq!(rooms["rooms"][0]["members"][0]["name"], "Ann");
    assert!(rooms["rooms"][0]["members"][0]["address"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));

    // The sampler takes one sample a second; the live feed sends the next.
    let mut live = http
        .get(url(&server, "/admin/api/live"))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .expect("live");
    assert_eq!(live.status(), StatusCode::OK);
    let chunk = tokio::time::timeout(Duration::from_secs(5), live.chunk())
        .await
        .expect("a sample within seconds")
        .expect("read")
        .expect("a chunk");
    assert!(String::from_utf8_lossy(&chunk).contains("event: sample"));
    let history: Vec<serde_json::Value> = http
        .get(url(&server, "/admin/api/history"))
        .header(header::COOKIE, &session)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    assert!(!history.is_empty());
    assert!(history[0]["sent"]["video"].is_u64());

    let logout = http
        .post(url(&server, "/admin/logout"))
        .header(header::COOKIE, &session)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let after = http
        .get(url(&server, "/admin/api/rooms"))
        .header(header::COOKIE, &session)
        .send()
        .await
        .expect("get");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "a closed session");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn wrong_passwords_are_rate_limited_and_large_logins_refused() {
    let server = server().await;
    let http = client();
    let huge = "x".repeat(8 * 1024);
    let big = http
        .post(url(&server, "/admin/login"))
        .form(&[("password", huge.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    for _ in 0..MAX_FAILURES {
        let wrong = http
            .post(url(&server, "/admin/login"))
            .form(&[("password", "guess")])
            .send()
            .await
            .expect("post");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = http
        .get(url(&server, "/metrics"))
        .bearer_auth(PASSWORD)
        .send()
        .await
        .expect("get");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    server.shutdown().await.expect("shutdown");
}
