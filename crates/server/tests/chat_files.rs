//! Chat and file sharing over real sockets: who receives what, history across a
//! restart, and files that arrive byte-identical or not at all.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use lanmeet_proto::{ChatMessage, ClientMessage, ErrorCode, ParticipantId, ServerMessage};
use lanmeet_server::config::Config;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

async fn chat(m: &mut Member, text: &str, to: Vec<ParticipantId>) {
    send(
        &mut m.ws,
        &ClientMessage::Chat {
            text: text.into(),
            to,
        },
    )
    .await;
}

/// The next chat message or error this member receives, skipping membership news.
async fn next_chat_or_error(m: &mut Member) -> ServerMessage {
    until!(
        &mut m.ws,
        ServerMessage::Chat { .. } | ServerMessage::Error { .. }
    )
    .await
}

/// The next chat message this member receives (an error comes first: a failure).
async fn next_chat(m: &mut Member) -> ChatMessage {
    match next_chat_or_error(m).await {
        ServerMessage::Chat { message } => message,
        other => panic!("expected a chat message, got {other:?}"),
    }
}

/// The code of the next error this member receives (a chat message comes first: a
/// failure).
async fn next_error(m: &mut Member) -> ErrorCode {
    match next_chat_or_error(m).await {
        ServerMessage::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn data_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lanmeet-cf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn in_dir(dir: PathBuf) -> impl FnOnce(&mut Config) {
    move |c| c.data_dir = dir
}

#[tokio::test]
async fn private_messages_reach_exactly_the_chosen_people() {
    let server = server().await;
    let mut ada = member(&server, "lab", "Ada").await;
    let mut bob = member(&server, "lab", "Bob").await;
    let mut cy = member(&server, "lab", "Cy").await;
    let mut other_room = member(&server, "elsewhere", "Dee").await;

    chat(&mut ada, "just for Bob", vec![bob.id]).await;
    let got = next_chat(&mut bob).await;
    assert_eq!(got.text, "just for Bob");
    assert_eq!(got.from.name, "Ada");
    assert_eq!(got.to.len(), 1);
    assert_eq!(got.to[0].id, bob.id);
    assert!(got.ts > 1_600_000_000_000, "server timestamp in ms");
    // The sender sees its own message with the server's timestamp.
    assert_eq!(next_chat(&mut ada).await, got);

    // Then a room message: Cy's first chat message must be that one, proving the private
    // message never reached Cy.
    chat(&mut bob, "hello room", vec![]).await;
    for m in [&mut ada, &mut bob, &mut cy] {
        let msg = next_chat(m).await;
        assert_eq!(msg.text, "hello room");
        assert!(msg.to.is_empty());
    }
    // Two recipients at once; the sender listed as recipient is ignored.
    let to = vec![ada.id, bob.id, cy.id];
    chat(&mut cy, "to both", to).await;
    for m in [&mut ada, &mut bob, &mut cy] {
        let msg = next_chat(m).await;
        assert_eq!(msg.text, "to both");
        assert_eq!(msg.to.len(), 2);
    }
    // The other room heard nothing at all: its next chat message is its own.
    chat(&mut other_room, "anyone?", vec![]).await;
    assert_eq!(next_chat(&mut other_room).await.text, "anyone?");

    // Someone not in the room cannot be addressed.
    chat(&mut ada, "ghost", vec![other_room.id]).await;
    assert_eq!(next_error(&mut ada).await, ErrorCode::UnknownRecipient);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn limits_on_length_emptiness_and_rate() {
    let server = server_with(|c| {
        c.chat_max_bytes = 10;
        c.chat_burst = 3;
        c.chat_rate = 0.001;
    })
    .await;
    let mut ada = member(&server, "lab", "Ada").await;
    chat(&mut ada, "0123456789x", vec![]).await;
    assert_eq!(next_error(&mut ada).await, ErrorCode::TooLarge);
    chat(&mut ada, "   ", vec![]).await;
    assert_eq!(next_error(&mut ada).await, ErrorCode::BadMessage);
    // The two refused messages used two of the three tokens.
    chat(&mut ada, "ok", vec![]).await;
    assert_eq!(next_chat(&mut ada).await.text, "ok");
    chat(&mut ada, "too fast", vec![]).await;
    assert_eq!(next_error(&mut ada).await, ErrorCode::RateLimited);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn history_keeps_order_survives_restart_and_never_replays_private() {
    let dir = data_dir("history");
    let server = server_with(in_dir(dir.clone())).await;
    let mut ada = member(&server, "lab", "Ada").await;
    let mut bob = member(&server, "lab", "Bob").await;
    for i in 0..5 {
        chat(&mut ada, &format!("room {i}"), vec![]).await;
        next_chat(&mut ada).await;
    }
    chat(&mut ada, "secret for Bob", vec![bob.id]).await;
    assert_eq!(next_chat(&mut bob).await.text, "room 0");
    drop(bob);
    server.shutdown().await.expect("clean shutdown");

    let server = server_with(|c| {
        c.data_dir = dir.clone();
        c.chat_history = 3;
    })
    .await;
    // A new "Bob" gets the latest three room messages in order, and no private ones.
    let (_ws, reply, history) = join_with_history(&server, "lab", "Bob").await;
    assert!(matches!(reply, ServerMessage::Joined { .. }));
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["room 2", "room 3", "room 4"]);
    assert!(history.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(history
        .iter()
        .all(|m| m.from.name == "Ada" && m.to.is_empty()));
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Streams `size` seeded random bytes as the upload body; returns the response and the
/// SHA-256 of what was sent.
async fn upload_random(
    base: &str,
    token: &str,
    name: &str,
    size: usize,
    recipients: Option<&str>,
    announce_length: bool,
) -> (reqwest::Response, String) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(size as u64);
    let mut data = vec![0u8; size];
    rng.fill_bytes(&mut data);
    let sha = hex::encode(Sha256::digest(&data));
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let name = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    let mut req = http()
        .post(format!("{base}/files"))
        .bearer_auth(token)
        .header("x-file-name", name.to_string())
        .header("content-type", "application/octet-stream");
    if announce_length {
        req = req.header("content-length", size);
    }
    if let Some(r) = recipients {
        req = req.header("x-recipients", r);
    }
    (req.body(body).send().await.expect("upload request"), sha)
}

async fn download_sha(base: &str, url: &str, token: &str) -> (reqwest::StatusCode, String, u64) {
    let resp = http()
        .get(format!("{base}{url}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("download request");
    let status = resp.status();
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("download chunk");
        n += chunk.len() as u64;
        hasher.update(&chunk);
    }
    (status, hex::encode(hasher.finalize()), n)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_50_mib_file_round_trips_byte_identical_with_ranges_and_access_checks() {
    let dir = data_dir("big");
    // Nobody reads their socket (so answers the server's pings) while 50 MiB are made,
    // hashed and sent, which takes longer than the default peer timeout (12 s) on a busy
    // machine: the heartbeat would end the sessions and refuse the upload (401).
    let server = server_with(|c| {
        c.data_dir = dir.clone();
        c.peer_timeout_ms = 120_000;
    })
    .await;
    let base = format!("http://{}", server.addr);
    let mut ada = member(&server, "lab", "Ada").await;
    let mut bob = member(&server, "lab", "Bob").await;
    let mut cy = member(&server, "lab", "Cy").await;
    let dee = member(&server, "elsewhere", "Dee").await;

    let size = 50 * 1024 * 1024;
    let (resp, sha) = upload_random(&base, &ada.token, "dataset.bin", size, None, true).await;
    assert_eq!(resp.status(), 201);
    let reply: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(reply["file"]["sha256"], sha);
    // Everyone in the room sees the notice with name, size, sender and hash.
    let mut url = String::new();
    for m in [&mut ada, &mut bob, &mut cy] {
        let msg = next_chat(m).await;
        let file = msg.file.expect("a file notice");
        assert_eq!(
            (file.name.as_str(), file.size),
            ("dataset.bin", size as u64)
        );
        assert_eq!(file.sha256, sha);
        assert_eq!(msg.from.name, "Ada");
        url = file.url;
    }
    let (status, got, n) = download_sha(&base, &url, &bob.token).await;
    assert_eq!((status.as_u16(), n), (200, size as u64));
    assert_eq!(got, sha, "downloaded bytes equal the uploaded ones");

    // Range: the last 1000 bytes, and an open-ended range, are exactly those bytes.
    let mut rng = rand::rngs::StdRng::seed_from_u64(size as u64);
    let mut data = vec![0u8; size];
    rng.fill_bytes(&mut data);
    for (range, want) in [
        ("bytes=-1000", &data[size - 1000..]),
        ("bytes=1048576-1049599", &data[1048576..1049600]),
        ("bytes=52428000-", &data[52428000..]),
    ] {
        let resp = http()
            .get(format!("{base}{url}"))
            .bearer_auth(&cy.token)
            .header("range", range)
            .send()
            .await
            .expect("range request");
        assert_eq!(resp.status(), 206, "{range}");
        assert!(resp.headers()["content-range"]
            .to_str()
            .expect("ascii")
            .ends_with(&format!("/{size}")));
        assert_eq!(&resp.bytes().await.expect("body")[..], want, "{range}");
    }
    let resp = http()
        .get(format!("{base}{url}"))
        .bearer_auth(&cy.token)
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .expect("range request");
    assert_eq!(resp.status(), 416);

    // Not in the room, no token, a guessed token: nothing.
    assert_eq!(download_sha(&base, &url, &dee.token).await.0, 404);
    assert_eq!(download_sha(&base, &url, "nope").await.0, 401);
    let guessed = "/files/00000000000000000000000000000000";
    assert_eq!(download_sha(&base, guessed, &bob.token).await.0, 404);

    // A private file: only Bob (and Ada, the sender) may fetch it; Cy never hears of it.
    let (resp, psha) = upload_random(
        &base,
        &ada.token,
        "for-bob.txt",
        1000,
        Some(&bob.id.0.to_string()),
        true,
    )
    .await;
    assert_eq!(resp.status(), 201);
    let purl = next_chat(&mut bob).await.file.expect("file").url;
    assert_eq!(download_sha(&base, &purl, &bob.token).await.1, psha);
    assert_eq!(download_sha(&base, &purl, &ada.token).await.0, 200);
    assert_eq!(download_sha(&base, &purl, &cy.token).await.0, 404);
    chat(&mut ada, "after the private file", vec![]).await;
    assert_eq!(next_chat(&mut cy).await.text, "after the private file");

    // Stored once each, named by hash; no temporary leftovers.
    assert_eq!(files_in(&dir.join("files")), {
        let mut v = vec![sha.clone(), psha.clone()];
        v.sort();
        v
    });
    assert!(files_in(&dir.join("tmp")).is_empty());

    // Retention removes records and bytes.
    let week_later = lanmeet_server::chat::now_ms() + 8 * 24 * 3600 * 1000;
    assert_eq!(server.files.expire(week_later).expect("expire"), 2);
    assert!(files_in(&dir.join("files")).is_empty());
    assert_eq!(download_sha(&base, &url, &bob.token).await.0, 404);
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn over_limit_and_interrupted_uploads_leave_nothing() {
    let dir = data_dir("limits");
    let server = server_with(|c| {
        c.data_dir = dir.clone();
        c.max_file_mib = 1;
        c.storage_quota_mib = 2;
    })
    .await;
    let base = format!("http://{}", server.addr);
    let mut ada = member(&server, "lab", "Ada").await;

    // Announced too large: refused before any byte is stored.
    let (resp, _) = upload_random(&base, &ada.token, "big.bin", 3 << 20, None, true).await;
    assert_eq!(resp.status(), 413);
    // Not announced (chunked): refused as soon as the limit is crossed.
    let (resp, _) = upload_random(&base, &ada.token, "big.bin", 3 << 20, None, false).await;
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.expect("json error");
    assert_eq!(body["error"], "too_large");
    // The quota (2 MiB) holds two different 900 KiB files but not a third.
    for (i, want) in [(0, 201), (1, 201), (2, 507)] {
        let (resp, _) = upload_random(
            &base,
            &ada.token,
            &format!("f{i}"),
            900 * 1024 + i,
            None,
            true,
        )
        .await;
        assert_eq!(resp.status(), want, "file {i}");
    }

    // Interrupted: announce 1 MiB, send 100 KiB, drop the connection.
    let mut tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let head = format!(
        "POST /files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nX-File-Name: cut.bin\r\nContent-Length: 1048576\r\n\r\n",
        ada.token
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp.write_all(&vec![7u8; 100 * 1024]).await.expect("part");
    tcp.flush().await.expect("flush");
    // Wait until the partial upload is on disk, so the test sees it removed, not absent.
    // (Polling the folder, bounded: there is no event to wait on from outside.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while files_in(&dir.join("tmp")).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "upload never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tcp);
    while !files_in(&dir.join("tmp")).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "partial upload left behind"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        files_in(&dir.join("files")).len(),
        2,
        "only the two complete files"
    );

    // No notice for refused or interrupted uploads: the next chat items are the two files.
    let first = next_chat(&mut ada).await;
    let second = next_chat(&mut ada).await;
    assert_eq!(first.file.expect("file").name, "f0");
    assert_eq!(second.file.expect("file").name, "f1");
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn hostile_file_names_stay_inside_the_data_directory() {
    let dir = data_dir("names");
    let server = server_with(in_dir(dir.clone())).await;
    let base = format!("http://{}", server.addr);
    let mut ada = member(&server, "lab", "Ada").await;
    let hostile = [
        "../../../../tmp/lanmeet-escape",
        "..\\..\\windows\\system32",
        "/etc/passwd",
        "<img src=x onerror=alert(1)>.png",
        "..",
        "ünïcødé 📎.txt",
    ];
    for (i, name) in hostile.iter().enumerate() {
        let (resp, _) = upload_random(&base, &ada.token, name, 100 + i, None, true).await;
        assert_eq!(resp.status(), 201, "{name}");
        let msg = next_chat(&mut ada).await;
        let file = msg.file.expect("file");
        assert_eq!(file.name, *name, "shown as given");
        let resp = http()
            .get(format!("{base}{}", file.url))
            .bearer_auth(&ada.token)
            .send()
            .await
            .expect("download");
        let disposition = resp.headers()["content-disposition"]
            .to_str()
            .expect("ascii");
        assert!(disposition.starts_with("attachment; filename*=UTF-8''"));
        assert!(!disposition.contains('/') && !disposition.contains('\\'));
    }
    // Control characters are refused.
    let (resp, _) = upload_random(&base, &ada.token, "a\nb", 10, None, true).await;
    assert_eq!(resp.status(), 400);
    assert!(!Path::new("/tmp/lanmeet-escape").exists());
    let stored = files_in(&dir.join("files"));
    assert_eq!(stored.len(), hostile.len());
    assert!(stored
        .iter()
        .all(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit())));
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
