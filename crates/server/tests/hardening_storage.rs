//! The data directory, storage and files under attack or accident (issue 14): a
//! directory that is not lanmeet's, two servers on one directory, concurrent uploads
//! against the quota, a growing database, repeated ids, spoofed file names, the
//! certificate, file modes, a full disk, plain HTTP on the HTTPS port.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use lanmeet_proto::ServerMessage;
use lanmeet_server::config::Config;
use lanmeet_server::RunningServer;

fn data_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lanmeet-hs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config_in(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        http: true,
        udp_port: 0,
        public_ips: vec!["127.0.0.1".parse().expect("ip")],
        workers: 1,
        ..Config::default()
    }
}

/// A server on the fresh data directory `tag` with `adjust`ed settings; its directory
/// and `http://` base URL.
async fn server_in(
    tag: &str,
    adjust: impl FnOnce(&mut Config),
) -> (RunningServer, PathBuf, String) {
    let dir = data_dir(tag);
    let mut config = config_in(&dir);
    adjust(&mut config);
    let server = lanmeet_server::start(config).await.expect("starts");
    let base = format!("http://{}", server.addr);
    (server, dir, base)
}

/// Shuts `server` down cleanly and removes its directory.
async fn finish(server: RunningServer, dir: &Path) {
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(dir);
}

/// `lanmeet serve` over plain HTTP on a free port, with `dir` as its data directory.
fn lanmeet_command(dir: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanmeet"));
    command
        .args([
            "serve",
            "--http",
            "--listen",
            "127.0.0.1:0",
            "--udp-port",
            "0",
        ])
        .args(["--workers", "1", "--public-ip", "127.0.0.1", "--data-dir"])
        .arg(dir)
        .kill_on_drop(true);
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn startup_keeps_files_lanmeet_does_not_own() {
    let dir = data_dir("foreign");
    let server = lanmeet_server::start(config_in(&dir))
        .await
        .expect("starts");
    server.shutdown().await.expect("clean shutdown");
    // Someone keeps their own files next to lanmeet's.
    let theirs = [
        dir.join("tmp/thesis.tex"),
        dir.join("files/taxes.pdf"),
        dir.join("notes.txt"),
    ];
    for path in &theirs {
        std::fs::write(path, b"precious").expect("write");
    }
    // A leftover of lanmeet's own interrupted upload is still cleared.
    let leftover = dir.join("tmp").join("0123456789abcdef0123456789abcdef");
    std::fs::write(&leftover, b"partial").expect("write");
    let server = lanmeet_server::start(config_in(&dir))
        .await
        .expect("restarts");
    for path in &theirs {
        assert_eq!(
            std::fs::read(path).ok().as_deref(),
            Some(&b"precious"[..]),
            "{} was deleted",
            path.display()
        );
    }
    assert!(!leftover.exists(), "lanmeet's own leftover is removed");
    finish(server, &dir).await;
}

#[tokio::test]
async fn the_audits_directory_keeps_its_files() {
    // Exactly what the audit found deleted: only lanmeet's folder names at the top, so
    // the directory is accepted, and what is inside them is not lanmeet's.
    let dir = data_dir("audit");
    std::fs::create_dir_all(dir.join("tmp")).expect("dir");
    std::fs::create_dir_all(dir.join("files")).expect("dir");
    std::fs::write(dir.join("tmp/thesis.tex"), b"precious").expect("write");
    std::fs::write(dir.join("files/taxes.pdf"), b"precious").expect("write");
    let server = lanmeet_server::start(config_in(&dir))
        .await
        .expect("starts");
    server.shutdown().await.expect("clean shutdown");
    for kept in ["tmp/thesis.tex", "files/taxes.pdf"] {
        assert!(dir.join(kept).exists(), "{kept} was deleted");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_non_empty_directory_that_is_not_lanmeets_is_refused() {
    let dir = data_dir("notours");
    std::fs::create_dir_all(dir.join("tmp")).expect("dir");
    std::fs::write(dir.join("thesis.tex"), b"precious").expect("write");
    std::fs::write(dir.join("tmp/draft.tex"), b"precious").expect("write");
    let err = match lanmeet_server::start(config_in(&dir)).await {
        Ok(server) => {
            server.shutdown().await.expect("shutdown");
            panic!("started in a directory that is not lanmeet's")
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("not a lanmeet data directory"), "{err}");
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert_eq!(
        std::fs::read(dir.join("tmp/draft.tex")).expect("kept"),
        b"precious"
    );
    assert!(!dir.join("lanmeet.sqlite").exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_second_server_on_the_same_directory_exits_with_a_message() {
    let dir = data_dir("twice");
    let first = lanmeet_server::start(config_in(&dir))
        .await
        .expect("starts");
    let second = lanmeet_command(&dir).output();
    let out = tokio::time::timeout(PATIENCE, second)
        .await
        .expect("the second server exits instead of running")
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("another lanmeet server is already using the data directory"),
        "{stderr}"
    );
    // The first one is unharmed: its database still works.
    let _ada = member(&first, "lab", "Ada").await;
    first.shutdown().await.expect("clean shutdown");
    // Once it is down, the directory is free again.
    let again = lanmeet_server::start(config_in(&dir))
        .await
        .expect("restarts");
    again.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_data_directory_and_what_it_holds_are_private() {
    let dir = data_dir("modes");
    let server = lanmeet_server::start(config_in(&dir))
        .await
        .expect("starts");
    let ada = member(&server, "lab", "Ada").await;
    let resp = reqwest::Client::new()
        .post(format!("http://{}/files", server.addr))
        .bearer_auth(&ada.token)
        .header("x-file-name", "minutes.txt")
        .body("secret minutes")
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), 201);
    for folder in [dir.clone(), dir.join("files"), dir.join("tmp")] {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
    let mut private = vec![dir.join("lanmeet.sqlite"), dir.join("admin-password")];
    for entry in std::fs::read_dir(dir.join("files")).expect("files") {
        private.push(entry.expect("entry").path());
    }
    assert_eq!(private.len(), 3, "one stored file");
    for file in private {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(ada);
    finish(server, &dir).await;
}

/// Waits (bounded) until `check` holds; for states only visible by looking.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An upload whose body the test feeds chunk by chunk.
struct Streaming {
    chunks: tokio::sync::mpsc::Sender<Vec<u8>>,
    response: tokio::task::JoinHandle<(u16, serde_json::Value)>,
}

fn start_upload(base: &str, token: &str, name: &str, length: Option<u64>) -> Streaming {
    let (chunks, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (Ok::<_, std::io::Error>(c), rx))
    });
    let mut request = reqwest::Client::new()
        .post(format!("{base}/files"))
        .bearer_auth(token)
        .header("x-file-name", name);
    if let Some(n) = length {
        request = request.header("content-length", n);
    }
    let request = request.body(reqwest::Body::wrap_stream(body));
    let response = tokio::spawn(async move {
        let resp = request.send().await.expect("a response");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    });
    Streaming { chunks, response }
}

impl Streaming {
    async fn send(&self, chunk: Vec<u8>) {
        // A refused upload stops reading; its answer tells the rest.
        let _ = self.chunks.send(chunk).await;
    }

    async fn finish(self, last: Vec<u8>) -> (u16, serde_json::Value) {
        self.send(last).await;
        drop(self.chunks);
        tokio::time::timeout(PATIENCE, self.response)
            .await
            .expect("an answer in time")
            .expect("request task")
    }
}

fn bytes_in(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn upload(base: &str, token: &str, name: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    upload_to(base, token, name, body, None).await
}

async fn upload_to(
    base: &str,
    token: &str,
    name: &str,
    body: Vec<u8>,
    recipients: Option<&str>,
) -> (u16, serde_json::Value) {
    let name = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    let mut request = reqwest::Client::new()
        .post(format!("{base}/files"))
        .bearer_auth(token)
        .header("x-file-name", name.to_string());
    if let Some(r) = recipients {
        request = request.header("x-recipients", r);
    }
    let resp = request.body(body).send().await.expect("a response");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn concurrent_uploads_cannot_overrun_the_quota() {
    let (server, dir, base) = server_in("quota", |c| {
        c.max_file_mib = 4;
        c.storage_quota_mib = 5;
    })
    .await;
    // Four people each start a 2 MiB upload while storage is empty, and send half.
    let mut uploads = Vec::new();
    let mut members = Vec::new();
    for (i, name) in ["Ada", "Grace", "Alan", "Edsger"].iter().enumerate() {
        let m = member(&server, "lab", name).await;
        let up = start_upload(&base, &m.token, &format!("f{i}"), Some(2 * MIB as u64));
        up.send(vec![i as u8; MIB]).await;
        uploads.push(up);
        members.push(m);
    }
    eventually("the four halves arrive", || {
        bytes_in(&dir.join("tmp")) == 4 * MIB as u64
    })
    .await;
    // Then they finish one after the other.
    let mut stored = 0;
    for (i, up) in uploads.into_iter().enumerate() {
        let (status, body) = up.finish(vec![i as u8 + 10; MIB]).await;
        match status {
            201 => stored += 2 * MIB as u64,
            507 => assert_eq!(body["error"], "quota", "{body}"),
            other => panic!("upload {i}: {other} {body}"),
        }
    }
    let on_disk = bytes_in(&dir.join("files"));
    assert_eq!(on_disk, stored);
    assert!(
        on_disk <= 5 * MIB as u64,
        "{on_disk} bytes stored against a 5 MiB quota"
    );
    assert_eq!(server.files.used_bytes(), on_disk, "nothing left reserved");
    drop(members);
    finish(server, &dir).await;
}

#[tokio::test]
async fn one_participant_has_few_uploads_at_a_time_and_at_a_bounded_rate() {
    let (server, dir, base) = server_in("uploadlimits", |c| {
        c.max_concurrent_uploads = 2;
        c.upload_burst = 5;
        c.upload_rate = 0.01;
    })
    .await;
    let ada = member(&server, "lab", "Ada").await;
    let grace = member(&server, "lab", "Grace").await;
    let open: Vec<Streaming> = (0..2)
        .map(|i| start_upload(&base, &ada.token, &format!("open{i}"), Some(2)))
        .collect();
    for up in &open {
        up.send(vec![1]).await;
    }
    eventually("both uploads are in progress", || {
        std::fs::read_dir(dir.join("tmp")).map_or(0, |d| d.count()) == 2
    })
    .await;
    let (status, body) = upload(&base, &ada.token, "third", vec![3]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_uploads")),
        "{body}"
    );
    // Someone else is not held up by Ada's uploads.
    assert_eq!(upload(&base, &grace.token, "g", vec![4]).await.0, 201);
    for up in open {
        assert_eq!(up.finish(vec![2]).await.0, 201);
    }
    // The burst is 5: the two above took two (the refused third took none), so three
    // more start, and then the rate (one per 100 s) holds.
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(upload(&base, &ada.token, &format!("r{i}"), vec![i]).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|s| s.0).collect();
    assert_eq!(codes, [201, 201, 201, 429], "{statuses:?}");
    assert_eq!(statuses[3].1["error"], "rate_limited");
    finish(server, &dir).await;
}

#[tokio::test]
async fn file_names_that_hide_or_reorder_text_are_refused() {
    let (server, dir, base) = server_in("bidi", |_| {}).await;
    let ada = member(&server, "lab", "Ada").await;
    for name in [
        "invoice\u{202e}fdp.exe",
        "report\u{200b}.pdf",
        "\u{2067}photo.jpg",
        "\u{3164}",
    ] {
        let (status, body) = upload(&base, &ada.token, name, b"x".to_vec()).await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert_eq!(body["error"], "bad_name");
        assert!(
            body["message"].as_str().unwrap_or("").contains("invisible"),
            "{body}"
        );
    }
    assert_eq!(
        upload(&base, &ada.token, "Übersicht 📎.pdf", b"x".to_vec())
            .await
            .0,
        201
    );
    finish(server, &dir).await;
}

#[tokio::test]
async fn a_file_for_only_yourself_is_refused_like_a_chat_message() {
    let (server, dir, base) = server_in("selfonly", |_| {}).await;
    let mut ada = member(&server, "lab", "Ada").await;
    let mut grace = member(&server, "lab", "Grace").await;
    let me = ada.id.0.to_string();
    for list in [me.clone(), format!("{me},{me}"), format!(" {me} ,")] {
        let (status, body) =
            upload_to(&base, &ada.token, "note.txt", b"mine".to_vec(), Some(&list)).await;
        assert_eq!(status, 400, "{list}: {body}");
        assert_eq!(body["error"], "unknown_recipient");
        assert!(body["message"].as_str().unwrap_or("").contains("yourself"));
    }
    // Yourself and someone else: a private file for the two.
    let both = format!("{me},{}", grace.id.0);
    let (status, _) = upload_to(&base, &ada.token, "n.txt", b"ours".to_vec(), Some(&both)).await;
    assert_eq!(status, 201);
    let notice = recv_until(&mut grace.ws, |m| matches!(m, ServerMessage::Chat { .. })).await;
    let ServerMessage::Chat { message } = notice else {
        unreachable!()
    };
    assert_eq!(
        message.to.iter().map(|p| p.id).collect::<Vec<_>>(),
        [grace.id]
    );
    // Nothing reached the room as a file from the refused attempts: Ada's first notice
    // is the private one.
    let notice = recv_until(&mut ada.ws, |m| matches!(m, ServerMessage::Chat { .. })).await;
    let ServerMessage::Chat { message } = notice else {
        unreachable!()
    };
    assert_eq!(message.file.expect("file").name, "n.txt");
    finish(server, &dir).await;
}

#[tokio::test]
async fn old_chat_expires_and_a_full_database_refuses_clearly() {
    let (server, dir, base) = server_in("chatdb", |c| {
        c.chat_retention_days = 2;
        c.max_database_mib = 1;
        c.chat_burst = 10_000;
        c.chat_rate = 10_000.0;
        c.upload_burst = 10_000;
        c.upload_rate = 10_000.0;
    })
    .await;
    let mut ada = member(&server, "lab", "Ada").await;
    let send_chat = |text: String| lanmeet_proto::ClientMessage::Chat { text, to: vec![] };
    send(&mut ada.ws, &send_chat("kept for two days".into())).await;
    recv_until(&mut ada.ws, |m| matches!(m, ServerMessage::Chat { .. })).await;
    let now = lanmeet_server::chat::now_ms();
    assert_eq!(
        server.chat.expire(now + 24 * 3600 * 1000).expect("expire"),
        0
    );
    assert_eq!(
        server
            .chat
            .expire(now + 3 * 24 * 3600 * 1000)
            .expect("expire"),
        1
    );
    let (_ws, _, history) = join_with_history(&server, "lab", "Grace").await;
    assert!(history.is_empty(), "{history:?}");

    // 4 KiB messages until the 1 MiB database is full: then a clear refusal.
    let big = "x".repeat(4000);
    let mut refusal = None;
    for _ in 0..1000 {
        send(&mut ada.ws, &send_chat(big.clone())).await;
        match recv_until(&mut ada.ws, |m| {
            matches!(m, ServerMessage::Chat { .. } | ServerMessage::Error { .. })
        })
        .await
        {
            ServerMessage::Error { message, .. } => {
                refusal = Some(message);
                break;
            }
            _ => continue,
        }
    }
    let refusal = refusal.expect("the database stops growing");
    assert!(refusal.contains("storage is full"), "{refusal}");
    let db = std::fs::metadata(dir.join("lanmeet.sqlite"))
        .expect("db")
        .len();
    assert!(db <= 1024 * 1024, "database {db} bytes");
    // File records are refused as clearly once the last pages are used.
    let mut refused = None;
    for i in 0..500 {
        let (status, body) = upload(&base, &ada.token, &"f".repeat(200), vec![i as u8]).await;
        if status != 201 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the database stops taking file records");
    assert_eq!(
        (status, body["error"].as_str()),
        (507, Some("disk_full")),
        "{body}"
    );
    // Retention makes room again.
    server
        .chat
        .expire(lanmeet_server::chat::now_ms() + 3 * 24 * 3600 * 1000)
        .expect("expire");
    send(&mut ada.ws, &send_chat("room again".into())).await;
    let reply = recv_until(&mut ada.ws, |m| {
        matches!(m, ServerMessage::Chat { .. } | ServerMessage::Error { .. })
    })
    .await;
    assert!(matches!(reply, ServerMessage::Chat { .. }), "{reply:?}");
    finish(server, &dir).await;
}

/// libfaketime, which freezes the wall clock of a program it is preloaded into
/// (Debian's `faketime` package, which scripts/test.sh installs).
fn libfaketime() -> PathBuf {
    let dirs = std::fs::read_dir("/usr/lib")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("faketime"))
                .collect()
        })
        .unwrap_or_else(|_| Vec::new());
    dirs.into_iter()
        .chain([PathBuf::from("/usr/lib/faketime")])
        .map(|d| d.join("libfaketime.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is installed (apt-get install faketime)")
}

/// The `lanmeet` binary on `dir` under a wall clock frozen at one instant (timers use
/// the monotonic clock, which keeps running); returns it and its address.
async fn frozen_clock_server(dir: &Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = lanmeet_command(dir)
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "2026-03-01 12:00:00")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lanmeet starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(rest) = line.strip_prefix("lanmeet ready at http://") {
                return rest.trim_end_matches('/').to_string();
            }
        }
        panic!("lanmeet exited before it was ready")
    })
    .await
    .expect("ready in time");
    // Keep reading: a closed pipe would fail the server's next line of output.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, ready)
}

/// Stops the server of [`frozen_clock_server`] as Ctrl-C would, and waits for it.
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("stops in time")
        .expect("waited");
}

async fn join_at(addr: &str, room: &str, name: &str) -> Member {
    use futures_util::SinkExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("ws connects");
    let join = lanmeet_proto::ClientMessage::Join {
        version: 1,
        room: room.into(),
        name: name.into(),
        resume: None,
        password: None,
    };
    let text = serde_json::to_string(&join).expect("json");
    ws.send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
        .await
        .expect("send");
    match recv(&mut ws).await {
        Some(ServerMessage::Joined { you, token, .. }) => Member { ws, id: you, token },
        other => panic!("{name} could not join: {other:?}"),
    }
}

#[tokio::test]
async fn participant_ids_never_repeat_across_restarts_under_a_frozen_clock() {
    let dir = data_dir("ids");
    let (first, addr) = frozen_clock_server(&dir).await;
    let ada = join_at(&addr, "lab", "Ada").await;
    let grace = join_at(&addr, "lab", "Grace").await;
    // Ada shares a file with Grace only.
    let (status, body) = upload_to(
        &format!("http://{addr}"),
        &ada.token,
        "salary.pdf",
        b"for Grace only".to_vec(),
        Some(&grace.id.0.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let url = body["file"]["url"].as_str().expect("url").to_string();
    let before = [ada.id, grace.id];
    drop((ada, grace));
    stop(first).await;

    // Same directory, same instant on the clock: newcomers get new ids and cannot
    // read what was meant for someone before them.
    let (second, addr) = frozen_clock_server(&dir).await;
    for name in ["Alan", "Edsger", "Barbara"] {
        let m = join_at(&addr, "lab", name).await;
        assert!(
            !before.contains(&m.id),
            "{name} got an earlier id {:?}",
            m.id
        );
        let resp = reqwest::Client::new()
            .get(format!("http://{addr}{url}"))
            .bearer_auth(&m.token)
            .send()
            .await
            .expect("download");
        assert_eq!(resp.status(), 404, "{name} downloaded Grace's file");
    }
    stop(second).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(tag: &str, size: &str) -> SmallDisk {
        let dir = data_dir(tag);
        std::fs::create_dir_all(&dir).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a failed test may leave its server holding files open here.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_full_disk_is_reported_as_507_with_a_message() {
    let disk = SmallDisk::mount("fulldisk", "3m");
    let dir = disk.0.join("data");
    let server = lanmeet_server::start(config_in(&dir))
        .await
        .expect("starts");
    let base = format!("http://{}", server.addr);
    let mut ada = member(&server, "lab", "Ada").await;
    // The quota (10 GiB) allows it; the disk (3 MiB) does not.
    let (status, body) = upload(&base, &ada.token, "big.bin", vec![7; 4 * MIB]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (507, Some("disk_full")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("disk is full"),
        "{body}"
    );
    assert_eq!(
        bytes_in(&dir.join("tmp")),
        0,
        "the partial upload is removed"
    );
    assert_eq!(server.files.used_bytes(), 0);
    // With the space back, a small file and chat still work.
    assert_eq!(
        upload(&base, &ada.token, "small.txt", vec![1; 1000])
            .await
            .0,
        201
    );
    send(
        &mut ada.ws,
        &lanmeet_proto::ClientMessage::Chat {
            text: "still here".into(),
            to: vec![],
        },
    )
    .await;
    let reply = recv_until(&mut ada.ws, |m| {
        matches!(m, ServerMessage::Error { .. })
            || matches!(m, ServerMessage::Chat { message } if message.file.is_none())
    })
    .await;
    assert!(matches!(reply, ServerMessage::Chat { .. }), "{reply:?}");
    server.shutdown().await.expect("clean shutdown");
    drop(disk);
}

fn https_config(dir: &Path) -> Config {
    Config {
        http: false,
        ..config_in(dir)
    }
}

#[tokio::test]
async fn the_generated_certificate_lasts_a_year_and_names_this_machine() {
    let dir = data_dir("cert");
    let server = lanmeet_server::start(https_config(&dir))
        .await
        .expect("starts");
    let pem = std::fs::read(dir.join("cert.pem")).expect("generated");
    let info = lanmeet_server::tls::inspect(&pem).expect("parses");
    let now = lanmeet_server::chat::now_ms() as i64 / 1000;
    let days = |s: i64| s as f64 / 86_400.0;
    assert!(info.not_before <= now, "valid from {}", info.not_before);
    let left = days(info.not_after - now);
    assert!(
        (364.0..=366.0).contains(&left),
        "valid for {left} more days"
    );
    let host = lanmeet_server::net::hostname();
    let mut wanted: Vec<String> = lanmeet_server::net::local_ipv4s()
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    wanted.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
    if !host.is_empty() {
        wanted.push(host);
    }
    for name in &wanted {
        assert!(
            info.names.contains(name),
            "{name} missing in {:?}",
            info.names
        );
    }
    assert_eq!(mode(&dir.join("key.pem")), 0o600);
    finish(server, &dir).await;
}

#[tokio::test]
async fn plain_http_on_the_https_port_is_redirected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = data_dir("redirect");
    let server = lanmeet_server::start(https_config(&dir))
        .await
        .expect("starts");
    let port = server.addr.port();
    let ask = |request: String| async move {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("tcp");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut response))
            .await
            .expect("an answer, not silence")
            .expect("read");
        String::from_utf8_lossy(&response).into_owned()
    };
    let response = ask(format!(
        "GET /r/lab?name=Ada HTTP/1.1\r\nHost: lanmeet-pc.local:{port}\r\nUser-Agent: test\r\n\r\n"
    ))
    .await;
    assert!(response.starts_with("HTTP/1.1 301"), "{response}");
    assert!(
        response.contains(&format!(
            "Location: https://lanmeet-pc.local:{port}/r/lab?name=Ada\r\n"
        )),
        "{response}"
    );
    // Without a usable Host, the address it came in on.
    let response = ask("GET / HTTP/1.0\r\n\r\n".to_string()).await;
    assert!(
        response.contains(&format!("Location: https://127.0.0.1:{port}/\r\n")),
        "{response}"
    );
    // HTTPS itself is unchanged.
    let pem = std::fs::read(dir.join("cert.pem")).expect("cert");
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert.expect("pem")).expect("usable");
    }
    let tls = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    finish(server, &dir).await;
}
