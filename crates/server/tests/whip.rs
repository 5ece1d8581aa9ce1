//! Live stations over WHIP (RFC 9725), end to end over loopback: a real WHIP client
//! (str0m, sending simulcast VP8 and Opus) broadcasts to a live station and a viewer
//! watches it over `/ws` with its own str0m connection. Refusals (404, 401, 415, 400,
//! 409) change nothing; DELETE takes the station off air, and the next broadcaster
//! reaches the same viewer without it asking again.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, recv, send, server_with, Ws, PATIENCE};
use lanmeet_proto::{ClientMessage, ServerMessage, StationInfo};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::sync::Notify;

/// Simulcast layers the broadcaster sends, lowest first.
const RIDS: [&str; 3] = ["q", "h", "f"];
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// One str0m connection on its own UDP socket, driven by a thread.
struct Peer {
    state: Arc<Mutex<PeerState>>,
    changed: Arc<Notify>,
    stop: Arc<AtomicBool>,
}

struct PeerState {
    rtc: Rtc,
    /// What a broadcaster sends: its generation byte and mids.
    source: Option<Source>,
    /// Video frames received: (generation byte, key frame).
    video: Vec<(u8, bool)>,
    /// Keyframe requests received (a broadcaster).
    keyframe_requests: usize,
}

struct Source {
    generation: u8,
    video: Mid,
    audio: Mid,
    next: Instant,
    counter: u32,
    keyframe_asked: bool,
}

/// A fake VP8 frame: a real frame tag (and start code for a key frame), then the
/// broadcaster's generation byte.
fn vp8_frame(generation: u8, keyframe: bool, len: usize) -> Vec<u8> {
    let mut f = vec![generation; len];
    f[0] = if keyframe { 0x10 } else { 0x11 };
    f[1] = 0;
    f[2] = 0;
    if keyframe {
        f[3..10].copy_from_slice(&[0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]);
    }
    f
}

fn new_rtc() -> (Rtc, UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let addr = socket.local_addr().expect("addr");
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(crypto)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host"));
    (rtc, socket, addr)
}

impl Peer {
    fn start(rtc: Rtc, socket: UdpSocket, addr: SocketAddr, source: Option<Source>) -> Peer {
        let state = Arc::new(Mutex::new(PeerState {
            rtc,
            source,
            video: Vec::new(),
            keyframe_requests: 0,
        }));
        let changed = Arc::new(Notify::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, c, st) = (state.clone(), changed.clone(), stop.clone());
        std::thread::spawn(move || drive(s, c, st, socket, addr));
        Peer {
            state,
            changed,
            stop,
        }
    }

    /// Waits until `pred` holds for the peer's state.
    async fn until(&self, what: &str, pred: impl Fn(&PeerState) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let notified = self.changed.notified();
            if pred(&self.state.lock().expect("lock")) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{what}: not within {PATIENCE:?}");
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn drive(
    state: Arc<Mutex<PeerState>>,
    changed: Arc<Notify>,
    stop: Arc<AtomicBool>,
    socket: UdpSocket,
    local: SocketAddr,
) {
    let mut buf = vec![0u8; 2000];
    while !stop.load(Ordering::SeqCst) {
        let next = {
            let mut s = state.lock().expect("lock");
            write_due(&mut s, Instant::now());
            let mut next = Instant::now() + Duration::from_millis(10);
            loop {
                match s.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        next = next.min(t);
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        let _ = socket.send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(e)) => {
                        if on_event(&mut s, e) {
                            changed.notify_waiters();
                        }
                    }
                    Err(_) => break,
                }
            }
            if let Some(src) = &s.source {
                next = next.min(src.next);
            }
            next
        };
        let wait = next
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait)).expect("timeout");
        let input = socket.recv_from(&mut buf);
        let mut s = state.lock().expect("lock");
        let now = Instant::now();
        match input {
            Ok((n, source)) => {
                if let Ok(contents) = buf[..n].try_into() {
                    let _ = s.rtc.handle_input(Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: local,
                            contents,
                        },
                    ));
                }
            }
            Err(_) => {
                let _ = s.rtc.handle_input(Input::Timeout(now));
            }
        }
    }
}

/// Whether the event changed what a test waits for.
fn on_event(s: &mut PeerState, e: Event) -> bool {
    match e {
        Event::MediaData(d) if d.params.spec().codec == Codec::Vp8 => {
            let keyframe = d.data.first().is_some_and(|b| b & 1 == 0);
            let generation = d.data.get(12).copied().unwrap_or(0);
            s.video.push((generation, keyframe));
            true
        }
        Event::KeyframeRequest(_) => {
            s.keyframe_requests += 1;
            if let Some(src) = s.source.as_mut() {
                src.keyframe_asked = true;
            }
            true
        }
        _ => false,
    }
}

/// A broadcaster's frames that are due: video on every layer, audio, at 30 fps.
fn write_due(s: &mut PeerState, now: Instant) {
    let Some(src) = s.source.as_mut() else {
        return;
    };
    if !s.rtc.is_connected() {
        src.next = now + FRAME_INTERVAL;
        return;
    }
    while src.next <= now {
        let keyframe = src.counter == 0 || src.keyframe_asked;
        src.keyframe_asked = false;
        let time = MediaTime::from_90khz(u64::from(src.counter) * 3000);
        for (i, rid) in RIDS.iter().enumerate() {
            let len = if keyframe { 1500 } else { 300 } * (i + 1);
            let Some(writer) = s.rtc.writer(src.video) else {
                return;
            };
            let writer = writer.rid(Rid::from(*rid));
            let Some(pt) = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .map(|p| p.pt())
            else {
                return;
            };
            let _ = writer.write(pt, now, time, vp8_frame(src.generation, keyframe, len));
        }
        let audio_pt = s.rtc.writer(src.audio).and_then(|w| {
            w.payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt())
        });
        if let (Some(pt), Some(writer)) = (audio_pt, s.rtc.writer(src.audio)) {
            let time = MediaTime::new(
                u64::from(src.counter) * 1600,
                str0m::media::Frequency::FORTY_EIGHT_KHZ,
            );
            let _ = writer.write(pt, now, time, vec![src.generation; 80]);
        }
        src.counter += 1;
        src.next += FRAME_INTERVAL;
    }
}

/// A WHIP client's offer: sendonly audio and simulcast video.
fn whip_offer() -> (
    Rtc,
    UdpSocket,
    SocketAddr,
    SdpPendingOffer,
    String,
    Mid,
    Mid,
) {
    let (mut rtc, socket, addr) = new_rtc();
    let mut change = rtc.sdp_api();
    let audio = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let mut simulcast = Simulcast::new();
    for rid in RIDS {
        simulcast.add_send_layer(SimulcastLayer::new(rid));
    }
    let video = change.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        None,
        None,
        Some(simulcast),
    );
    let (offer, pending) = change.apply().expect("media added");
    (
        rtc,
        socket,
        addr,
        pending,
        offer.to_sdp_string(),
        audio,
        video,
    )
}

struct Broadcast {
    peer: Peer,
    location: String,
}

/// Broadcasts generation `generation` to `url`; panics unless the server answers 201.
async fn broadcast(http: &reqwest::Client, url: &str, token: &str, generation: u8) -> Broadcast {
    let (mut rtc, socket, addr, pending, offer, audio, video) = whip_offer();
    let resp = http
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);
    assert_eq!(
        resp.headers()["content-type"].to_str().expect("ascii"),
        "application/sdp"
    );
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let answer = resp.text().await.expect("body");
    assert!(
        answer.contains("a=ice-lite") && answer.contains("a=candidate"),
        "an ICE-lite answer with candidates: {answer}"
    );
    let answer = SdpAnswer::from_sdp_string(&answer).expect("an SDP answer");
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .expect("the answer fits the offer");
    let source = Source {
        generation,
        video,
        audio,
        next: Instant::now(),
        counter: 0,
        keyframe_asked: false,
    };
    Broadcast {
        peer: Peer::start(rtc, socket, addr, Some(source)),
        location,
    }
}

/// The viewer: its socket and its subscribe connection.
struct Viewer {
    ws: Ws,
    peer: Peer,
    /// Subscribe offers answered.
    offers: usize,
}

impl Viewer {
    /// A viewer that watches the station "live" on `server`.
    async fn watching(server: &lanmeet_server::RunningServer) -> Viewer {
        let (rtc, socket, addr) = new_rtc();
        let mut viewer = Viewer {
            ws: connect(server).await,
            peer: Peer::start(rtc, socket, addr, None),
            offers: 0,
        };
        send(
            &mut viewer.ws,
            &ClientMessage::Watch {
                station: "live".into(),
            },
        )
        .await;
        viewer
    }

    /// Handles what the server sends until `pred` holds for the live station in the
    /// station list (asked for each time round), answering subscribe offers on the way.
    async fn until_listed(&mut self, what: &str, pred: impl Fn(&StationInfo) -> bool) {
        self.until_listed_within(what, PATIENCE, pred).await
    }

    /// [`Viewer::until_listed`], waiting up to `patience`.
    async fn until_listed_within(
        &mut self,
        what: &str,
        patience: Duration,
        pred: impl Fn(&StationInfo) -> bool,
    ) {
        let deadline = Instant::now() + patience;
        loop {
            assert!(Instant::now() < deadline, "{what}: not within {patience:?}");
            send(&mut self.ws, &ClientMessage::ListStations {}).await;
            loop {
                match recv(&mut self.ws).await.expect("socket open") {
                    ServerMessage::Stations { stations, .. } => {
                        let live = stations.iter().find(|s| s.name == "live").expect("listed");
                        if pred(live) {
                            return;
                        }
                        break;
                    }
                    // Asked too often (`list_stations` is rate limited): ask again.
                    ServerMessage::Error { .. } => break,
                    other => self.handle(other).await,
                }
            }
            // The list is sent when asked for; the page asks every 2 s, this every 0.5 s
            // (within the rate limit of 2 a second).
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Answers subscribe offers until `pred` holds for the received video.
    async fn until_video(&mut self, what: &str, pred: impl Fn(&[(u8, bool)]) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let notified = self.peer.changed.notified();
            if pred(&self.peer.state.lock().expect("lock").video) {
                return;
            }
            tokio::select! {
                msg = recv(&mut self.ws) => self.handle(msg.expect("socket open")).await,
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => panic!("{what}: not within {PATIENCE:?}"),
            }
        }
    }

    /// Answers subscribe offers until `n` have come.
    async fn until_offers(&mut self, what: &str, n: usize) {
        while self.offers < n {
            let msg = tokio::time::timeout(PATIENCE, recv(&mut self.ws))
                .await
                .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}"))
                .expect("socket open");
            self.handle(msg).await;
        }
    }

    async fn handle(&mut self, msg: ServerMessage) {
        if let ServerMessage::SubscribeOffer {
            sdp,
            new_connection,
            ..
        } = msg
        {
            assert!(!new_connection, "the viewer keeps its connection");
            let offer = SdpOffer::from_sdp_string(&sdp).expect("offer");
            let answer = {
                let mut s = self.peer.state.lock().expect("lock");
                s.rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .expect("accepted")
                    .to_sdp_string()
            };
            send(
                &mut self.ws,
                &ClientMessage::SubscribeAnswer { sdp: answer },
            )
            .await;
            self.offers += 1;
        }
    }
}

#[tokio::test]
async fn a_broadcaster_goes_live_over_whip_and_viewers_follow_it_off_and_on_air() {
    let server = server_with(|c| c.live_stations = vec!["live".into()]).await;
    let token = server
        .station_directory
        .live_token("live")
        .expect("a live station has a token");
    let base = format!("http://{}", server.addr);
    let url = format!("{base}/whip/live");
    let http = reqwest::Client::new();
    let (_, _, _, _, offer, _, _) = whip_offer();
    let post = |url: String, token: Option<&str>, ctype: &str, body: String| {
        let mut req = http.post(url).header("content-type", ctype).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.text().await.expect("body"))
        }
    };

    // Refusals, each with its reason.
    let (status, text) = post(
        format!("{base}/whip/nope"),
        Some(&token),
        "application/sdp",
        offer.clone(),
    )
    .await;
    assert_eq!((status, text.contains("nope")), (404, true), "{text}");
    let (status, _) = post(url.clone(), None, "application/sdp", offer.clone()).await;
    assert_eq!(status, 401);
    let (status, _) = post(url.clone(), Some("wrong"), "application/sdp", offer.clone()).await;
    assert_eq!(status, 401);
    let (status, text) = post(url.clone(), Some(&token), "text/plain", offer.clone()).await;
    assert_eq!(
        (status, text.contains("application/sdp")),
        (415, true),
        "{text}"
    );
    let (status, text) = post(
        url.clone(),
        Some(&token),
        "application/sdp",
        "v=0\r\ngarbage\u{0}".into(),
    )
    .await;
    assert_eq!(
        (status, text.contains("not valid SDP")),
        (400, true),
        "{text}"
    );
    let recvonly = offer.replace("a=sendonly", "a=recvonly");
    let (status, text) = post(url.clone(), Some(&token), "application/sdp", recvonly).await;
    assert_eq!((status, text.contains("recvonly")), (400, true), "{text}");

    // A viewer tunes in while the station is off air.
    let mut viewer = Viewer::watching(&server).await;
    viewer
        .until_listed("off air, no broadcaster yet", |s| {
            s.live && s.off_air && s.viewers == 1 && s.video && s.duration_ms == 0
        })
        .await;

    // The first broadcaster: the viewer gets its video (which needs a keyframe
    // request to the broadcaster: it sends key frames only when asked after its first).
    let first = broadcast(&http, &url, &token, 1).await;
    assert!(
        first.location.starts_with("/whip/live/"),
        "{}",
        first.location
    );
    viewer
        .until_video("the first broadcaster's video", |v| {
            v.iter().filter(|(g, _)| *g == 1).count() >= 20
        })
        .await;
    viewer.until_listed("on air", |s| !s.off_air).await;
    first
        .peer
        .until("asked for a key frame", |s| s.keyframe_requests >= 1)
        .await;

    // A second broadcaster is refused while the first is on air.
    let (_, _, _, _, second_offer, _, _) = whip_offer();
    let (status, text) = post(url.clone(), Some(&token), "application/sdp", second_offer).await;
    assert_eq!((status, text.contains("already")), (409, true), "{text}");

    // DELETE: off air; a second DELETE finds nothing.
    let offers = viewer.offers;
    let resource = format!("{base}{}", first.location);
    let status = http
        .delete(&resource)
        .send()
        .await
        .expect("delete")
        .status();
    assert_eq!(status, 200);
    let status = http
        .delete(&resource)
        .send()
        .await
        .expect("delete")
        .status();
    assert_eq!(status, 404);
    viewer
        .until_listed("off air after DELETE", |s| s.off_air)
        .await;
    // The broadcaster left the room: the viewer's sections for it are stopped.
    viewer
        .until_offers("an offer stopping the tracks", offers + 1)
        .await;
    drop(first);
    let before = viewer.peer.state.lock().expect("lock").video.len();

    // The next broadcaster reaches the same viewer without it watching again.
    let second = broadcast(&http, &url, &token, 2).await;
    viewer
        .until_video("the second broadcaster's video", |v| {
            v[before..].iter().filter(|(g, _)| *g == 2).count() >= 20
        })
        .await;
    let video = viewer.peer.state.lock().expect("lock").video.clone();
    assert!(
        video[before..].iter().all(|(g, _)| *g == 2),
        "only the new broadcaster's frames after the break"
    );
    assert!(
        video[before..].first().is_some_and(|(_, key)| *key),
        "the viewer starts on a key frame"
    );
    drop(second);
    drop(viewer);
    server.shutdown().await.expect("clean shutdown");
}

/// A broadcaster that vanishes without a DELETE (no more ICE checks, as when OBS is
/// killed or the network goes) takes the station off air once its ICE-lite connection
/// times out (15 s without a check), and the station takes the next broadcaster.
#[tokio::test]
async fn a_vanished_broadcaster_goes_off_air_when_its_ice_times_out() {
    let server = server_with(|c| c.live_stations = vec!["live".into()]).await;
    let token = server
        .station_directory
        .live_token("live")
        .expect("a live station has a token");
    let url = format!("http://{}/whip/live", server.addr);
    let http = reqwest::Client::new();
    let mut viewer = Viewer::watching(&server).await;
    let first = broadcast(&http, &url, &token, 1).await;
    viewer
        .until_video("the broadcast", |v| {
            v.iter().filter(|(g, _)| *g == 1).count() >= 5
        })
        .await;
    let vanished = Instant::now();
    drop(first);
    viewer
        .until_listed_within(
            "off air after the ICE timeout",
            Duration::from_secs(30),
            |s| s.off_air,
        )
        .await;
    let waited = vanished.elapsed();
    println!("METRIC whip_ice_timeout_off_air_ms {}", waited.as_millis());
    assert!(
        waited >= Duration::from_secs(10),
        "off air only once ICE timed out, not after {waited:?}"
    );
    let before = viewer.peer.state.lock().expect("lock").video.len();
    let second = broadcast(&http, &url, &token, 2).await;
    viewer
        .until_video("the next broadcaster's video", |v| {
            v[before..].iter().filter(|(g, _)| *g == 2).count() >= 5
        })
        .await;
    drop(second);
    drop(viewer);
    server.shutdown().await.expect("clean shutdown");
}

/// A live station the admin created takes broadcasts like a `--live-station` one (its
/// token from the database), both kinds are on the Go live page's list with their
/// tokens, and deleting the station while a broadcaster sends ends the broadcast: its
/// viewer is told `station_removed`, the session's resource is gone.
#[tokio::test]
async fn an_admin_live_station_broadcasts_and_its_deletion_ends_the_broadcast() {
    let password = "admin-pw";
    let server = server_with(|c| {
        c.live_stations = vec!["hall".into()];
        c.admin_password = Some(lanmeet_server::config::Secret(password.into()));
    })
    .await;
    let directory = server.station_directory.clone();
    directory
        .create(
            "live",
            "Admin's",
            lanmeet_server::stations::directory::NewSource::Live,
        )
        .await
        .expect("an admin live station");
    let token = directory.live_token("live").expect("its token");
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let listed: Vec<serde_json::Value> = http
        .get(format!("{base}/admin/api/live-stations"))
        .bearer_auth(password)
        .send()
        .await
        .expect("live stations")
        .json()
        .await
        .expect("json");
    let hall = directory.live_token("hall").expect("the configured one's");
    assert_eq!(
        listed,
        [
            serde_json::json!({"name": "hall", "token": hall}),
            serde_json::json!({"name": "live", "token": token}),
        ]
    );

    let mut viewer = Viewer::watching(&server).await;
    viewer
        .until_listed("listed off air before a broadcast", |s| s.live && s.off_air)
        .await;
    let url = format!("{base}/whip/live");
    let first = broadcast(&http, &url, &token, 1).await;
    viewer
        .until_video("the broadcast", |v| {
            v.iter().filter(|(g, _)| *g == 1).count() >= 5
        })
        .await;
    viewer.until_listed("on air", |s| !s.off_air).await;
    // The worker's counters are a copy renewed every STATS_INTERVAL (500 ms): read
    // until they show the viewer and the broadcaster.
    let worker = &server.registry.workers()[0];
    let until_participants = |n: u64, what: &'static str| async move {
        let deadline = Instant::now() + PATIENCE;
        while worker.stats().participants != n {
            assert!(Instant::now() < deadline, "{what}: {:?}", worker.stats());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    until_participants(2, "the viewer and the broadcaster on the worker").await;

    directory.delete("live").await.expect("deleted");
    let told = tokio::time::timeout(PATIENCE, async {
        loop {
            match recv(&mut viewer.ws).await.expect("socket open") {
                ServerMessage::StationRemoved {
                    station, reason, ..
                } => return (station, reason),
                other => viewer.handle(other).await,
            }
        }
    })
    .await
    .expect("the viewer is told within PATIENCE");
    assert_eq!(
        told,
        ("live".to_string(), lanmeet_proto::StationEnd::Removed)
    );
    let resp = http
        .delete(format!("{base}{}", first.location))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status(), 404, "the broadcast ended with the station");
    assert_eq!(directory.live_token("live"), None);
    // The broadcaster left the worker (the viewer left when told).
    until_participants(0, "the broadcaster is still on the worker").await;
    drop(first);
    drop(viewer);
    server.shutdown().await.expect("clean shutdown");
}
