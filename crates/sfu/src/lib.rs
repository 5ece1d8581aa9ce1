//! Sans-IO media core of lanmeet: a selective forwarding unit on str0m.
//!
//! Nothing here touches a socket, a thread or the clock: every input carries `now`, and
//! every effect comes back out of [`Sfu::poll_output`]. The server's media workers drive
//! one [`Sfu`] each from a UDP socket; the tests drive it on simulated time.
//!
//! Modules:
//! - [`sfu`]: the [`Sfu`] itself: rooms, participants, input dispatch, output queue.
//!   Its `allocation` submodule splits each subscriber's bandwidth over its video; its
//!   `relay` submodule spreads a room over several workers (cross-worker fan-out).
//! - `peer`: one participant's two WebRTC connections (publish and subscribe) and
//!   the subscribe-side renegotiation.
//! - `negotiation`: what a subscribe connection offers (codecs, header extensions),
//!   and when it is replaced by a new one.
//! - `forward`: a subscription of one participant to another's track; RTP rewriting.
//! - `keyframe`: recognising the start of a keyframe in VP8, VP9 and H.264 payloads.
//! - `vp8`: the VP8 payload descriptor: picture ids to rewrite, key frame sizes.
//! - `layers`: simulcast layers of a published track, and `layers::allocate`-ing a
//!   subscriber's bandwidth over the tracks it shows.
//! - `downlink`: one subscriber's downlink: its estimate, loss reports and what it is
//!   sent, and the plan that splits its bandwidth over its video (`Downlink::plan`).
//! - `growth`: when a subscriber's layers may go up again after a step down, with a
//!   back-off for steps up its link could not carry.
//! - [`station`]: a file played on a clock as RTP (demuxing, packetizing, the loop, the
//!   key frame cache); the `sfu::stations` submodule makes it a publisher in the `Sfu`.
//! - `room`: a room's members and its speaker detector.
//! - `speaker`: active speaker detection from the audio level header extension.
//! - [`stats`]: the counters a worker copies out for metrics, and per-participant
//!   link figures (the `sfu::counters` submodule keeps them).
#![deny(missing_docs)]

mod downlink;
mod forward;
mod growth;
mod keyframe;
mod layers;
mod negotiation;
mod peer;
mod room;
pub mod sfu;
mod speaker;
pub mod station;
pub mod stats;
mod vp8;

pub use sfu::{
    Datagram, Output, RelayControl, RelayPacket, RelayedTrack, Sfu, SfuConfig, StationStatus,
    WorkerId,
};
pub use station::{MediaError, StationMedia};
pub use stats::{ByClass, Flow, MediaClass, ParticipantStats, SfuStats};

pub use lanmeet_proto::{ParticipantId, ServerMessage};

/// Re-export of str0m, so users of this crate name the same version.
pub use str0m;
