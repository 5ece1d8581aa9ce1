//! lanmeet signaling protocol: the JSON messages exchanged over the participant WebSocket.
//!
//! Modules:
//! - this file: message enums ([`ClientMessage`], [`ServerMessage`]) and the types they carry.
//! - [`validate`]: rules for participant and room names.
//!
//! Every message is a JSON object with a `"type"` field naming the variant in snake_case.
//! docs/PROTOCOL.md shows an example of each; a test parses all of them.
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};

pub mod validate;

/// Protocol version; a client sends it in [`ClientMessage::Join`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest WebSocket text message the server accepts, in bytes, except for messages
/// that carry SDP ([`MAX_SDP_MESSAGE_BYTES`]). Chat, views and the rest are far smaller.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest message carrying SDP (`publish_offer`, `subscribe_answer`), in bytes. A
/// subscribe answer grows with the room, by about 0.8 KB per remote track (measured in
/// the SFU's simulation), so a room of 50 publishers with camera and microphone (100
/// tracks) needs about 77 KB, and
/// up to a quarter more while stopped sections wait to be cleared. This leaves room for
/// twice that and more.
pub const MAX_SDP_MESSAGE_BYTES: usize = 256 * 1024;

/// Server-assigned identity of a participant, unique for the server's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ParticipantId(pub u64);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// Kind of a media track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Microphone audio.
    Audio,
    /// Camera video.
    Video,
}

/// A participant as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Server-assigned id.
    pub id: ParticipantId,
    /// Display name, unique within the room.
    pub name: String,
    /// Whether the camera is on.
    pub camera: bool,
    /// Whether the microphone is on.
    pub microphone: bool,
    /// Whether this participant is sharing its screen (presenting).
    #[serde(default)]
    pub screen: bool,
    /// What it may do in the room; everyone sees who the moderators are.
    #[serde(default)]
    pub role: Role,
    /// Its raised hand, if raised: a number that grows with each hand raised in the
    /// room, so ordering by it gives the order in which hands went up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand: Option<u64>,
}

/// What a participant may do in its room (docs/PROTOCOL.md, "Roles and moderation").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Publishes, and may moderate: [`ClientMessage::Moderate`],
    /// [`ClientMessage::RoomControl`], admitting from the lobby.
    Moderator,
    /// Publishes camera, microphone and screen.
    #[default]
    Participant,
    /// Watches, listens and chats; never publishes.
    Viewer,
}

/// One moderator action on one participant ([`ClientMessage::Moderate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModerateAction {
    /// Stop forwarding the target's microphone, camera or screen at once (a screen
    /// share ends). The target may switch it on again unless `block`.
    Mute {
        /// Which source.
        source: TrackSource,
        /// "Mute and block": the target may not switch it on again until a moderator
        /// sends `allow`.
        #[serde(default, skip_serializing_if = "is_false")]
        block: bool,
    },
    /// Lift a `block` on a source: the target may switch it on again (it stays off
    /// until the target does).
    Allow {
        /// Which source.
        source: TrackSource,
    },
    /// Give the target another role. A viewer's tracks stop at once.
    SetRole {
        /// The new role.
        role: Role,
    },
    /// Remove the target from the room; with `ban`, its name and session may not come
    /// back while the room exists.
    Remove {
        /// Also ban.
        #[serde(default, skip_serializing_if = "is_false")]
        ban: bool,
    },
    /// Lower the target's raised hand.
    LowerHand {},
}

/// A room-wide moderator action ([`ClientMessage::RoomControl`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomAction {
    /// Mute every microphone but the moderators' (they may unmute themselves).
    MuteAll,
    /// Nobody new gets in without a moderator admitting them from the lobby.
    Lock,
    /// New joiners come straight in again (unless the room has a lobby).
    Unlock,
    /// Everyone is removed and the room closes.
    End,
}

/// Why the server took a participant out of its room ([`ServerMessage::Removed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedReason {
    /// A moderator removed it; it may join again.
    Removed,
    /// A moderator removed and banned it: its name and session stay out while the room
    /// exists.
    Banned,
    /// A moderator ended the meeting for everyone.
    Ended,
    /// A moderator denied it entry from the lobby.
    Denied,
}

/// What a published track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// The camera (video, usually simulcast).
    Camera,
    /// The microphone (audio).
    Microphone,
    /// A shared screen, window or tab (video, one layer at full resolution).
    Screen,
}

/// What one media section of the publish connection carries, as the browser declares it
/// with its offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedTrack {
    /// The media id in the publish SDP.
    pub mid: String,
    /// Camera, microphone or screen.
    pub source: TrackSource,
}

/// How large the subscriber shows one video track, so the server can pick the simulcast
/// layer that fits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackView {
    /// The media id in the subscribe SDP (from [`TrackInfo::mid`]).
    pub mid: String,
    /// Displayed width in device pixels; 0: not visible.
    pub width: u32,
    /// Displayed height in device pixels; 0: not visible.
    pub height: u32,
}

/// Why a subscriber gets no video on a track for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// The subscriber's link cannot carry even the lowest layer; audio continues.
    LowBandwidth,
    /// The subscriber does not show the track.
    NotVisible,
    /// The subscriber's answer accepted none of the codecs the publisher sends this track
    /// in (the server does not transcode): it stays paused until the subscriber
    /// negotiates a connection that accepts one.
    Codec,
}

/// Maps one media section (`mid`) of the subscribe connection to the participant whose
/// track it carries, so the client can put the track on the right tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The media id in the subscribe SDP.
    pub mid: String,
    /// Whose track it is.
    pub participant: ParticipantId,
    /// Audio or video.
    pub kind: TrackKind,
    /// Camera, microphone or screen.
    pub source: TrackSource,
}

/// A message from the browser to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message on a new socket: enter `room` as `name`.
    Join {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// Room name (see [`validate::room_name`]).
        room: String,
        /// Display name (see [`validate::participant_name`]).
        name: String,
        /// The `token` of this client's previous `joined` in the same room, when it
        /// rejoins after losing its connection: the server removes that participant if
        /// it still holds it (its name becomes free). Unknown tokens are ignored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        /// The room's participant or moderator password, for a room that has one
        /// (the moderator password makes the joiner a moderator). Ignored elsewhere.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// Liveness check, allowed at any time: the server answers with a `pong` carrying
    /// the same `id` at once.
    Ping {
        /// Chosen by the client (a counter, say).
        id: u64,
    },
    /// SDP offer of the publish connection (the client's camera and microphone).
    PublishOffer {
        /// The SDP.
        sdp: String,
        /// What each media section carries. Sections not listed are the camera (video)
        /// or the microphone (audio).
        #[serde(default)]
        tracks: Vec<PublishedTrack>,
    },
    /// SDP answer to a [`ServerMessage::SubscribeOffer`].
    SubscribeAnswer {
        /// The SDP.
        sdp: String,
    },
    /// Camera or microphone switched on or off.
    MediaState {
        /// Camera on.
        camera: bool,
        /// Microphone on.
        microphone: bool,
    },
    /// Start (`active`) or stop sharing the screen. Starting is refused with
    /// [`ErrorCode::PresenterBusy`] while the room has as many presenters as allowed; on
    /// success everyone (the sender too) gets a `participant_updated` with `screen` set.
    /// Send it before adding the screen track to the publish connection.
    ScreenShare {
        /// Whether to share.
        active: bool,
    },
    /// The size at which each video track of the subscribe connection is displayed.
    /// Replaces the previous view; a video track not listed is not visible and gets no
    /// video. Until the first `view`, every track gets the best layer the link carries.
    View {
        /// Displayed size per track.
        tracks: Vec<TrackView>,
    },
    /// A chat message to the room (`to` empty or absent) or privately to the listed
    /// participants of the room.
    Chat {
        /// The text, at most [`MAX_CHAT_BYTES`] by default.
        text: String,
        /// Recipients; empty: the whole room.
        #[serde(default)]
        to: Vec<ParticipantId>,
    },
    /// Raise (`raised`) or lower one's own hand. Everyone gets a `participant_updated`
    /// with `hand` set or cleared.
    RaiseHand {
        /// Up or down.
        raised: bool,
    },
    /// A moderator's action on one participant of the room. Refused with
    /// [`ErrorCode::Forbidden`] for anyone but a moderator, and with
    /// [`ErrorCode::UnknownParticipant`] when `target` is not in the sender's room.
    Moderate {
        /// Whom.
        target: ParticipantId,
        /// What.
        action: ModerateAction,
    },
    /// A moderator's room-wide action; refused with [`ErrorCode::Forbidden`] for anyone
    /// else.
    RoomControl {
        /// What.
        action: RoomAction,
    },
    /// A moderator lets waiting joiners in from the lobby (`admit`) or turns them away.
    /// `ids` empty: everyone waiting.
    Admit {
        /// Who; empty: everyone waiting.
        #[serde(default)]
        ids: Vec<ParticipantId>,
        /// In (`true`) or away.
        admit: bool,
    },
    /// Leave the room; the server closes the socket afterwards. (A struct variant, so
    /// unknown fields are refused as for every other message.)
    Leave {},
    /// Ask for the list of stations; answered with [`ServerMessage::Stations`]. Allowed
    /// before `watch` and while watching, not in a meeting room.
    ListStations {},
    /// Watch station `station` (instead of `join`): the server answers with
    /// [`ServerMessage::Stations`] naming it in `watching`, then a `subscribe_offer`.
    /// While already watching, switches to `station` on the same connection (no new
    /// offer when both stations' tracks match). Unknown: [`ErrorCode::UnknownStation`].
    Watch {
        /// The station's name.
        station: String,
    },
    /// Stop watching; the socket stays open (list or watch again).
    StopWatching {},
}

/// A message from the server to the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerMessage {
    /// The join succeeded.
    Joined {
        /// The id the server gave this participant.
        you: ParticipantId,
        /// The room name.
        room: String,
        /// Everyone else already in the room.
        participants: Vec<Participant>,
        /// Bearer token for this participant's HTTP requests (file upload and download);
        /// valid while it is in the room.
        token: String,
        /// This participant's role.
        #[serde(default)]
        role: Role,
        /// Whether the room is locked (joiners wait in the lobby).
        #[serde(default, skip_serializing_if = "is_false")]
        locked: bool,
    },
    /// The room has a lobby or is locked: this joiner waits until a moderator admits it
    /// (then `joined` follows) or denies it (`removed` with reason `denied`).
    Waiting {
        /// The room name.
        room: String,
        /// Text for the user.
        message: String,
    },
    /// To moderators: the joiners now waiting in the lobby, in order of arrival (sent
    /// whenever the list changes; empty when nobody waits).
    Lobby {
        /// Who waits.
        waiting: Vec<ParticipantRef>,
    },
    /// To the target of a moderator's action: what was done and by whom ("muted by
    /// Ann"). The effect itself arrives as `participant_updated`.
    Moderated {
        /// The moderator.
        by: ParticipantRef,
        /// What was done.
        action: ModerateAction,
    },
    /// The room was locked or unlocked (to everyone in it).
    RoomState {
        /// Locked: joiners wait in the lobby.
        locked: bool,
        /// Who did it.
        by: ParticipantRef,
    },
    /// This participant is out of the room (removed, banned, the meeting ended, or
    /// denied from the lobby); the socket closes next. Do not rejoin automatically.
    Removed {
        /// Why.
        reason: RemovedReason,
        /// The moderator who did it.
        by: Option<ParticipantRef>,
        /// Text for the user.
        message: String,
    },
    /// Recent room chat history (text messages and files shared with the room), oldest
    /// first; sent right after `joined`.
    ChatHistory {
        /// The messages.
        messages: Vec<ChatMessage>,
    },
    /// A new chat message or shared file for this participant.
    Chat {
        /// The message.
        message: ChatMessage,
    },
    /// Someone entered the room.
    ParticipantJoined {
        /// Who.
        participant: Participant,
    },
    /// Someone switched camera or microphone, or started or stopped sharing a screen (the
    /// sharer gets it too, as the confirmation of its `screen_share`).
    ParticipantUpdated {
        /// The new state.
        participant: Participant,
    },
    /// Someone left the room or was removed.
    ParticipantLeft {
        /// Who.
        id: ParticipantId,
        /// Why: `left`, `timeout` or `disconnected`.
        reason: LeaveReason,
    },
    /// SDP answer to [`ClientMessage::PublishOffer`].
    PublishAnswer {
        /// The SDP.
        sdp: String,
    },
    /// SDP offer for the subscribe connection: other participants' tracks.
    SubscribeOffer {
        /// The SDP.
        sdp: String,
        /// Which participant each media section belongs to.
        tracks: Vec<TrackInfo>,
        /// The offer is for a new subscribe connection: the client closes the one it
        /// has and answers on a new one. The server starts afresh when the old one
        /// holds too many stopped sections, needs a codec it was not offered, or after
        /// a refused answer.
        #[serde(default, skip_serializing_if = "is_false")]
        new_connection: bool,
    },
    /// The room's active speaker changed (`null`: nobody any more, e.g. the speaker
    /// left).
    ActiveSpeaker {
        /// The participant now speaking.
        id: Option<ParticipantId>,
    },
    /// What the server now forwards on one video track of the subscribe connection:
    /// sent when the layer changes or video pauses or resumes.
    VideoState {
        /// The media id in the subscribe SDP.
        mid: String,
        /// Whose track.
        participant: ParticipantId,
        /// Simulcast layer forwarded (0 is the lowest), or `null` while paused.
        layer: Option<u8>,
        /// Why no video is forwarded, while paused.
        paused: Option<PauseReason>,
    },
    /// The answer to a [`ClientMessage::Ping`].
    Pong {
        /// The ping's `id`.
        id: u64,
    },
    /// The server is shutting down (a restart, as a rule): the socket closes next, with
    /// WebSocket close code 1012. Clients reconnect and rejoin when it is back.
    ServerClosing {
        /// Text for the user.
        message: String,
    },
    /// The stations on air, and which one this client watches (answer to
    /// `list_stations`, `watch` and `stop_watching`).
    Stations {
        /// Every station, in the server's order.
        stations: Vec<StationInfo>,
        /// The station this client watches, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        watching: Option<String>,
    },
    /// The station this client watched was deleted by the admin, or went off air (its
    /// file is gone): the client no longer watches anything, and a `stations` list
    /// follows.
    StationRemoved {
        /// The station's name.
        station: String,
        /// Deleted, or off air.
        reason: StationEnd,
        /// Why, fit to show to the user.
        message: String,
    },
    /// Something went wrong; `fatal` errors are followed by the socket closing.
    Error {
        /// Machine-readable code.
        code: ErrorCode,
        /// Human-readable explanation, fit to show to the user.
        message: String,
        /// Whether the server closes the connection after this message.
        fatal: bool,
    },
}

/// A participant named in a chat message: id and the name it had then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRef {
    /// Id.
    pub id: ParticipantId,
    /// Name.
    pub name: String,
}

/// A chat message or shared-file notice as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Server timestamp, milliseconds since the Unix epoch.
    pub ts: u64,
    /// Sender.
    pub from: ParticipantRef,
    /// Private recipients; empty for a room message.
    pub to: Vec<ParticipantRef>,
    /// Text; empty for a file notice.
    pub text: String,
    /// A moderation notice ("Ann removed Bob") rather than something `from` wrote.
    #[serde(default, skip_serializing_if = "is_false")]
    pub notice: bool,
    /// The shared file, for a file notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<SharedFile>,
}

/// A file shared through the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFile {
    /// Name as the sender gave it (display only).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type as the sender gave it.
    pub mime: String,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// Download URL (path with an unguessable token); needs the bearer token too.
    pub url: String,
}

/// Default largest chat message, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 4096;

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// Pressed Leave or closed the page normally.
    Left,
    /// Stopped answering heartbeats.
    Timeout,
    /// Connection dropped.
    Disconnected,
    /// A moderator removed it (or ended the meeting).
    Removed,
}

/// Error codes in [`ServerMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message was not valid JSON or not a known message.
    BadMessage,
    /// The message was larger than [`MAX_MESSAGE_BYTES`] (or, carrying SDP,
    /// [`MAX_SDP_MESSAGE_BYTES`]).
    TooLarge,
    /// The client speaks another protocol version.
    UnsupportedVersion,
    /// The name or room name is not acceptable.
    InvalidName,
    /// Someone in the room already has this name.
    NameTaken,
    /// A message that needs a joined participant came before `join`, or `join` came twice.
    WrongState,
    /// The SDP could not be used.
    BadSdp,
    /// The server is shutting down or overloaded.
    Unavailable,
    /// Too many messages too fast; wait a moment.
    RateLimited,
    /// A named recipient is not in the room.
    UnknownRecipient,
    /// Someone else is already sharing a screen; the message names them.
    PresenterBusy,
    /// The sender's role does not allow this (a moderator's action from a participant,
    /// publishing as a viewer, switching on a source a moderator blocked).
    Forbidden,
    /// The participant named is not in the sender's room.
    UnknownParticipant,
    /// Removed and banned from this room, or the session was removed: join refused.
    Banned,
    /// The room needs a password and a wrong one was given (not fatal: `join` again).
    WrongPassword,
    /// The room needs a password and none was given (not fatal: ask for it and `join`
    /// again).
    PasswordRequired,
    /// The room does not exist and the server does not create rooms on demand.
    RoomClosed,
    /// The room has as many participants as it admits.
    RoomFull,
    /// `watch` named a station that is not on air.
    UnknownStation,
}

/// Why a watched station ended ([`ServerMessage::StationRemoved`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StationEnd {
    /// The admin deleted it.
    Removed,
    /// It went off air (its file is gone from the disk).
    OffAir,
}

/// One station in [`ServerMessage::Stations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationInfo {
    /// Its name (as in `/stations/<name>`).
    pub name: String,
    /// What the admin wrote about it (may be empty).
    #[serde(default)]
    pub description: String,
    /// What is playing: the file's name.
    pub playing: String,
    /// Where it is in the file now, in milliseconds.
    pub position_ms: u64,
    /// One pass through the file, in milliseconds.
    pub duration_ms: u64,
    /// Viewers watching it now.
    pub viewers: u32,
    /// Whether it has video (else it is audio only).
    pub video: bool,
    /// A live station: a broadcaster (WHIP) instead of a file, so no position or
    /// length (both 0).
    #[serde(default)]
    pub live: bool,
    /// A live station without a broadcaster now: its viewers see "off air" until one
    /// comes back, and then get its tracks without asking.
    #[serde(default)]
    pub off_air: bool,
}

/// The client messages that negotiate and steer media. Signaling hands them to the
/// room's media worker as they are, and the SFU handles them in one place
/// (`Sfu::signal`), so each exists once, not once per layer.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaSignal {
    /// [`ClientMessage::PublishOffer`].
    PublishOffer {
        /// The SDP.
        sdp: String,
        /// What each media section carries.
        tracks: Vec<PublishedTrack>,
    },
    /// [`ClientMessage::SubscribeAnswer`].
    SubscribeAnswer {
        /// The SDP.
        sdp: String,
    },
    /// A subscribe answer that signaling refused (too large): the client's connection
    /// is out of step with the server's, and only a new offer gets media flowing again.
    SubscribeAnswerRefused,
    /// [`ClientMessage::View`].
    View {
        /// Displayed size per track.
        tracks: Vec<TrackView>,
    },
}

impl ClientMessage {
    /// The media part of the protocol, or the message back if it is not one.
    pub fn into_media(self) -> Result<MediaSignal, ClientMessage> {
        match self {
            ClientMessage::PublishOffer { sdp, tracks } => {
                Ok(MediaSignal::PublishOffer { sdp, tracks })
            }
            ClientMessage::SubscribeAnswer { sdp } => Ok(MediaSignal::SubscribeAnswer { sdp }),
            ClientMessage::View { tracks } => Ok(MediaSignal::View { tracks }),
            other => Err(other),
        }
    }

    /// The largest this message may be, in bytes: messages carrying SDP grow with the
    /// room and get [`MAX_SDP_MESSAGE_BYTES`], all others [`MAX_MESSAGE_BYTES`].
    pub fn size_limit(&self) -> usize {
        match self {
            ClientMessage::PublishOffer { .. } | ClientMessage::SubscribeAnswer { .. } => {
                MAX_SDP_MESSAGE_BYTES
            }
            _ => MAX_MESSAGE_BYTES,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_round_trips() {
        let json = r#"{"type":"join","version":1,"room":"lab","name":"Ada"}"#;
        let msg: ClientMessage = serde_json::from_str(json).expect("valid join");
        assert_eq!(
            msg,
            ClientMessage::Join {
                version: 1,
                room: "lab".into(),
                name: "Ada".into(),
                resume: None,
                password: None,
            }
        );
        assert_eq!(serde_json::to_string(&msg).expect("serializes"), json);
    }

    #[test]
    fn unknown_type_and_fields_are_rejected() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"leave","x":1}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"[1,2]"#).is_err());
    }
}
