//! The data directory, storage and files under attack or accident (issue 14): a
//! directory that is not lanmeet's, two servers on one directory, concurrent uploads
//! against the quota, a growing database, repeated ids, spoofed file names, the
//! certificate, file modes, a full disk, plain HTTP on the HTTPS port.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use lanmeet_proto::{ParticipantId, ServerMessage};
use lanmeet_server::config::Config;

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

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

struct Member {
    ws: Ws,
    id: ParticipantId,
    token: String,
}

async fn member(server: &lanmeet_server::RunningServer, room: &str, name: &str) -> Member {
    let (ws, reply) = join(server, room, name).await;
    let ServerMessage::Joined { you, token, .. } = reply else {
        panic!("{name} could not join: {reply:?}")
    };
    Member { ws, id: you, token }
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
    server.shutdown().await.expect("clean shutdown");
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
    let second = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanmeet"))
        .args([
            "serve",
            "--http",
            "--listen",
            "127.0.0.1:0",
            "--udp-port",
            "0",
        ])
        .args(["--workers", "1", "--data-dir"])
        .arg(&dir)
        .kill_on_drop(true)
        .output();
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
    server.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits (bounded) until `check` holds; for states only visible by looking.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
