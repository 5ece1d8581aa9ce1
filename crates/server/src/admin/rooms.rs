//! `GET /admin/api/rooms`: rooms, their participants with address and link figures, and
//! shared-file storage. Participant addresses appear only here, behind the password.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lanmeet_proto::ParticipantId;
use lanmeet_sfu::ParticipantStats;
use serde::Serialize;
use std::collections::HashMap;

use super::{no_store, AdminState, Authorized};
use crate::metrics::Storage;

#[derive(Serialize)]
struct Overview {
    rooms: Vec<RoomView>,
    storage: Storage,
}

#[derive(Serialize)]
struct RoomView {
    name: String,
    worker: usize,
    participants: usize,
    members: Vec<MemberView>,
}

#[derive(Serialize)]
struct MemberView {
    id: ParticipantId,
    name: String,
    /// The WebSocket's remote address.
    address: Option<String>,
    joined_ms: u64,
    camera: bool,
    microphone: bool,
    screen: bool,
    /// Bytes received from it and sent to it so far (rates: differences between polls).
    bytes_in: Option<u64>,
    bytes_out: Option<u64>,
    rtt_ms: Option<f64>,
    /// Loss of what it is sent (0 to 1), and of what it sends.
    loss_to: Option<f32>,
    loss_from: Option<f32>,
    estimate_bps: Option<u64>,
    /// Videos it receives at each simulcast layer (0 the lowest), as it was last told.
    video_layers: Option<[u16; 3]>,
    /// Videos paused for its low bandwidth, and videos it does not show.
    video_paused: Option<u16>,
    video_hidden: Option<u16>,
    /// Its camera's simulcast layers as they arrive, bits per second each, lowest first.
    camera_layers_bps: Option<[u64; 3]>,
}

pub(super) async fn rooms(_: Authorized, State(state): State<AdminState>) -> Response {
    let links: HashMap<ParticipantId, ParticipantStats> = state
        .monitor
        .worker_stats()
        .into_iter()
        .flat_map(|w| w.participants)
        .collect();
    let rooms = state
        .monitor
        .registry()
        .snapshot()
        .into_iter()
        .map(|r| RoomView {
            participants: r.members.len(),
            members: r
                .members
                .into_iter()
                .map(|m| {
                    let p = m.participant;
                    let link = links.get(&p.id);
                    MemberView {
                        id: p.id,
                        name: p.name,
                        address: m.remote.map(|a| a.to_string()),
                        joined_ms: m.joined_ms,
                        camera: p.camera,
                        microphone: p.microphone,
                        screen: p.screen,
                        bytes_in: link.map(|l| l.bytes_in),
                        bytes_out: link.map(|l| l.bytes_out),
                        rtt_ms: link.and_then(|l| l.rtt).map(|d| d.as_secs_f64() * 1e3),
                        loss_to: link.and_then(|l| l.loss_to),
                        loss_from: link.and_then(|l| l.loss_from),
                        estimate_bps: link.and_then(|l| l.estimate_bps),
                        video_layers: link.map(|l| l.video_layers),
                        video_paused: link.map(|l| l.video_paused),
                        video_hidden: link.map(|l| l.video_hidden),
                        camera_layers_bps: link.map(|l| l.camera_layers_bps),
                    }
                })
                .collect(),
            name: r.name,
            worker: r.worker,
        })
        .collect();
    let overview = Overview {
        rooms,
        storage: state.monitor.storage(),
    };
    no_store(Json(overview).into_response())
}
