//! Room policy on the signaling side: roles, moderator actions, raised hands, the lock
//! and its lobby, bans. Everything here is enforced by the server: a client only asks,
//! and the registry checks the sender's role and the target's room under its lock.
//!
//! - The first member of a room is its moderator; when the last moderator leaves, the
//!   longest-present participant (a viewer only if nobody else is left) becomes one.
//! - A moderator's mute makes the media worker hold the source back at once
//!   ([`WorkerCommand::Block`]); the target may switch it on again (which lets it
//!   through) unless the moderator also blocked it.
//! - A viewer's publishing is refused by the worker ([`WorkerCommand::MayPublish`]).
//! - A removed participant's session token stays refused while the room exists; with a
//!   ban, its name does too.
//! - Every action is announced in the room's chat and kept in its history
//!   ([`lanmeet_store::Store::add_notice`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;

use lanmeet_proto::{
    ChatMessage, ErrorCode, LeaveReason, ModerateAction, ParticipantId, ParticipantRef,
    RemovedReason, Role, RoomAction, ServerMessage, TrackSource,
};
use lanmeet_store::Person;
use tracing::{info, warn};

use crate::media::{ToParticipant, WorkerCommand, WorkerHandle};
use crate::outbound::Outbound;
use crate::rooms::{broadcast, Inner, JoinError, Member, Newcomer, Registry, Room};

/// A refused request, with the code and message the client shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// Protocol error code.
    pub code: ErrorCode,
    /// Text for the user.
    pub message: String,
}

impl Refused {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refused {
            code,
            message: message.into(),
        }
    }
}

/// A room's lock, lobby, bans and hand counter.
#[derive(Default)]
pub(crate) struct Policy {
    /// Joiners wait in the lobby.
    pub locked: bool,
    /// Joiners waiting, in order of arrival (ids grow).
    pub lobby: BTreeMap<ParticipantId, Waiter>,
    /// Name keys ([`lanmeet_proto::validate::Name::key`]) banned while the room exists.
    pub banned_names: HashSet<String>,
    /// Session tokens of removed participants, with whether they were banned: a join
    /// resuming one is refused.
    pub removed_sessions: HashMap<String, bool>,
    /// The last raised hand's number.
    pub hands: u64,
}

/// A joiner in the lobby.
pub(crate) struct Waiter {
    pub name: String,
    pub key: String,
    pub remote: Option<SocketAddr>,
    pub outbound: Outbound,
}

impl Policy {
    /// Refuses a banned name or a removed session's token.
    pub fn check_entry(
        &self,
        room: &str,
        key: &str,
        resume: Option<&str>,
    ) -> Result<(), JoinError> {
        if self.banned_names.contains(key) {
            return Err(JoinError {
                code: ErrorCode::Banned,
                message: format!(
                    "A moderator removed you from room {room}: you cannot come back while the meeting lasts."
                ),
            });
        }
        if let Some(banned) = resume.and_then(|t| self.removed_sessions.get(t)) {
            let message = if *banned {
                format!("A moderator removed you from room {room}: you cannot come back while the meeting lasts.")
            } else {
                format!("A moderator removed this session from room {room}; join again without it.")
            };
            return Err(JoinError {
                code: ErrorCode::Banned,
                message,
            });
        }
        Ok(())
    }
}

impl Room {
    /// Puts a joiner in the lobby and tells the moderators.
    pub(crate) fn wait(
        &mut self,
        id: ParticipantId,
        name: String,
        key: String,
        remote: Option<SocketAddr>,
        outbound: Outbound,
    ) {
        self.policy.lobby.insert(
            id,
            Waiter {
                name,
                key,
                remote,
                outbound,
            },
        );
        self.tell_lobby();
    }

    /// Sends every moderator the lobby as it is now.
    pub(crate) fn tell_lobby(&self) {
        let waiting: Vec<ParticipantRef> = self
            .policy
            .lobby
            .iter()
            .map(|(id, w)| ParticipantRef {
                id: *id,
                name: w.name.clone(),
            })
            .collect();
        for m in self.members.values() {
            if m.info.role == Role::Moderator {
                m.outbound.message(ServerMessage::Lobby {
                    waiting: waiting.clone(),
                });
            }
        }
    }

    /// The room closes: everyone still waiting is told and let go.
    pub(crate) fn close_lobby(&mut self) {
        for (_, w) in std::mem::take(&mut self.policy.lobby) {
            w.outbound.message(ServerMessage::Removed {
                reason: RemovedReason::Ended,
                by: None,
                message: "The meeting has ended.".into(),
            });
            w.outbound.send(ToParticipant::Removed);
        }
    }

    /// `id` as a reference, if it is a moderator here.
    fn moderator(&self, id: ParticipantId) -> Result<ParticipantRef, Refused> {
        match self.members.get(&id) {
            Some(m) if m.info.role == Role::Moderator => Ok(reference(m)),
            Some(_) => Err(Refused::new(
                ErrorCode::Forbidden,
                "Only a moderator can do that.",
            )),
            None => Err(Refused::new(ErrorCode::WrongState, "Join a room first.")),
        }
    }

    /// Member `target`, or why not.
    fn target(&self, target: ParticipantId) -> Result<&Member, Refused> {
        self.members.get(&target).ok_or_else(|| {
            Refused::new(
                ErrorCode::UnknownParticipant,
                format!("Participant {target} is not in this room."),
            )
        })
    }

    fn moderators(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.info.role == Role::Moderator)
            .count()
    }
}

fn reference(m: &Member) -> ParticipantRef {
    ParticipantRef {
        id: m.info.id,
        name: m.info.name.clone(),
    }
}

/// What a source is called in notices.
fn source_name(source: TrackSource) -> &'static str {
    match source {
        TrackSource::Microphone => "microphone",
        TrackSource::Camera => "camera",
        TrackSource::Screen => "screen share",
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Moderator => "a moderator",
        Role::Participant => "a participant",
        Role::Viewer => "a viewer",
    }
}

/// Whether member `m` may switch `source` on (`on`); switching off is always allowed.
pub(crate) fn may_switch_on(m: &Member, source: TrackSource, on: bool) -> Result<(), Refused> {
    if !on {
        return Ok(());
    }
    if m.info.role == Role::Viewer {
        return Err(Refused::new(
            ErrorCode::Forbidden,
            "Viewers watch and listen; a moderator can make you a participant.",
        ));
    }
    if m.muted.contains(&(source, true)) {
        return Err(Refused::new(
            ErrorCode::Forbidden,
            format!(
                "A moderator blocked your {}; ask them to allow it.",
                source_name(source)
            ),
        ));
    }
    Ok(())
}

/// Member `m` switched `source` on (`on`) after [`may_switch_on`]: a moderator's mute
/// on it ends, and the worker lets it through again.
pub(crate) fn switched_on(
    m: &mut Member,
    source: TrackSource,
    on: bool,
    worker: &WorkerHandle,
) -> Result<(), Refused> {
    if !on || !m.muted.contains(&(source, false)) {
        return Ok(());
    }
    let command = WorkerCommand::Block {
        id: m.info.id,
        source,
        blocked: false,
    };
    worker
        .try_send(command)
        .map_err(|e| Refused::new(ErrorCode::Unavailable, e.to_string()))?;
    m.muted.retain(|(s, _)| *s != source);
    Ok(())
}

impl Registry {
    /// Moderator `from`'s `action` on `target`, both in `room`.
    pub fn moderate(
        &self,
        room: &str,
        from: ParticipantId,
        target: ParticipantId,
        action: ModerateAction,
    ) -> Result<(), Refused> {
        let mut inner = self.lock();
        let r = room_of(&mut inner, room)?;
        let by = r.moderator(from)?;
        let name = r.target(target)?.info.name.clone();
        let text = match &action {
            ModerateAction::Mute { source, block } => {
                self.mute_in(r, room, target, *source, *block)?;
                let verb = if *block { "muted and blocked" } else { "muted" };
                format!("{} {verb} {name}'s {}", by.name, source_name(*source))
            }
            ModerateAction::Allow { source } => {
                if let Some(m) = r.members.get_mut(&target) {
                    m.muted.retain(|(s, _)| s != source);
                }
                format!(
                    "{} allowed {name} to use their {} again",
                    by.name,
                    source_name(*source)
                )
            }
            ModerateAction::SetRole { role } => {
                self.set_role_in(r, target, *role)?;
                format!("{} made {name} {}", by.name, role_name(*role))
            }
            ModerateAction::LowerHand {} => {
                if let Some(m) = r.members.get_mut(&target) {
                    if m.info.hand.take().is_some() {
                        let participant = m.info.clone();
                        broadcast(
                            &r.members,
                            ServerMessage::ParticipantUpdated { participant },
                        );
                    }
                }
                format!("{} lowered {name}'s hand", by.name)
            }
            ModerateAction::Remove { ban } => {
                if target == from {
                    return Err(Refused::new(
                        ErrorCode::BadMessage,
                        "To go, leave the room; to close it, end the meeting.",
                    ));
                }
                let reason = if *ban {
                    RemovedReason::Banned
                } else {
                    RemovedReason::Removed
                };
                let verb = if *ban {
                    "removed and banned"
                } else {
                    "removed"
                };
                let text = format!("{} {verb} {name}", by.name);
                // Announced first: the history then reads in order, and the removed
                // participant's chat still shows why.
                if let Some(r) = inner.rooms.get(room) {
                    self.announce(room, r, &by, &text);
                }
                self.remove_member(&mut inner, room, target, reason, Some(&by));
                info!(room, %target, by = %from, ban, "removed by a moderator");
                return Ok(());
            }
        };
        if let Some(m) = r.members.get(&target) {
            m.outbound.message(ServerMessage::Moderated {
                by: by.clone(),
                action,
            });
        }
        info!(room, %target, by = %from, text, "moderation");
        self.announce(room, r, &by, &text);
        Ok(())
    }

    /// Moderator `from`'s room-wide `action` in `room`.
    pub fn room_control(
        &self,
        room: &str,
        from: ParticipantId,
        action: RoomAction,
    ) -> Result<(), Refused> {
        let mut inner = self.lock();
        let r = room_of(&mut inner, room)?;
        let by = r.moderator(from)?;
        info!(room, by = %from, ?action, "room control");
        match action {
            RoomAction::MuteAll => {
                let targets: Vec<ParticipantId> = r
                    .members
                    .values()
                    .filter(|m| m.info.role == Role::Participant)
                    .map(|m| m.info.id)
                    .collect();
                let mute = ModerateAction::Mute {
                    source: TrackSource::Microphone,
                    block: false,
                };
                for id in targets {
                    self.mute_in(r, room, id, TrackSource::Microphone, false)?;
                    if let Some(m) = r.members.get(&id) {
                        m.outbound.message(ServerMessage::Moderated {
                            by: by.clone(),
                            action: mute.clone(),
                        });
                    }
                }
                self.announce(room, r, &by, &format!("{} muted everyone", by.name));
            }
            RoomAction::Lock | RoomAction::Unlock => {
                let locked = action == RoomAction::Lock;
                r.policy.locked = locked;
                broadcast(
                    &r.members,
                    ServerMessage::RoomState {
                        locked,
                        by: by.clone(),
                    },
                );
                let verb = if locked { "locked" } else { "unlocked" };
                self.announce(room, r, &by, &format!("{} {verb} the room", by.name));
            }
            RoomAction::End => {
                self.announce(room, r, &by, &format!("{} ended the meeting", by.name));
                let everyone: Vec<ParticipantId> = r.members.keys().copied().collect();
                for id in everyone {
                    self.remove_member(&mut inner, room, id, RemovedReason::Ended, Some(&by));
                }
            }
        }
        Ok(())
    }

    /// `id` raises (`raised`) or lowers its hand; everyone sees it.
    pub fn raise_hand(&self, room: &str, id: ParticipantId, raised: bool) {
        let mut inner = self.lock();
        let Some(r) = inner.rooms.get_mut(room) else {
            return;
        };
        let next = r.policy.hands + 1;
        let Some(m) = r.members.get_mut(&id) else {
            return;
        };
        match (raised, m.info.hand) {
            (true, None) => {
                m.info.hand = Some(next);
                r.policy.hands = next;
            }
            (false, Some(_)) => m.info.hand = None,
            _ => return,
        }
        let participant = m.info.clone();
        broadcast(
            &r.members,
            ServerMessage::ParticipantUpdated { participant },
        );
    }

    /// Moderator `from` lets `ids` (everyone waiting when empty) into `room`
    /// (`admit`) or turns them away. Ids not waiting are refused, and nothing changes.
    pub fn admit(
        &self,
        room: &str,
        from: ParticipantId,
        ids: &[ParticipantId],
        admit: bool,
    ) -> Result<(), Refused> {
        let mut inner = self.lock();
        let r = room_of(&mut inner, room)?;
        let by = r.moderator(from)?;
        if let Some(missing) = ids.iter().find(|id| !r.policy.lobby.contains_key(id)) {
            return Err(Refused::new(
                ErrorCode::UnknownParticipant,
                format!("Participant {missing} is not waiting to join this room."),
            ));
        }
        let chosen: Vec<ParticipantId> = if ids.is_empty() {
            r.policy.lobby.keys().copied().collect()
        } else {
            ids.to_vec()
        };
        let waiters: Vec<(ParticipantId, Waiter)> = chosen
            .iter()
            .filter_map(|id| r.policy.lobby.remove(id).map(|w| (*id, w)))
            .collect();
        r.tell_lobby();
        let room_key = r.key.clone();
        for (id, w) in waiters {
            let name = w.name.clone();
            if !admit {
                info!(room, %id, by = %from, "denied entry");
                w.outbound.message(ServerMessage::Removed {
                    reason: RemovedReason::Denied,
                    by: Some(by.clone()),
                    message: format!("{} did not let you into room {room}.", by.name),
                });
                w.outbound.send(ToParticipant::Removed);
                if let Some(r) = inner.rooms.get(room) {
                    self.announce(room, r, &by, &format!("{} turned {name} away", by.name));
                }
                continue;
            }
            let outbound = w.outbound.clone();
            let newcomer = Newcomer {
                id,
                name: w.name,
                key: w.key,
                remote: w.remote,
                outbound: w.outbound,
                moderator: false,
            };
            match self.enter(&mut inner, room, room_key.clone(), newcomer) {
                Ok(joined) => {
                    info!(room, %id, by = %from, "admitted");
                    outbound.send(ToParticipant::Admitted(Box::new(joined)));
                    if let Some(r) = inner.rooms.get(room) {
                        self.announce(room, r, &by, &format!("{} let {name} in", by.name));
                    }
                }
                Err(e) => {
                    outbound.message(ServerMessage::Error {
                        code: e.code,
                        message: e.message,
                        fatal: true,
                    });
                    outbound.send(ToParticipant::Removed);
                }
            }
        }
        Ok(())
    }

    /// A joiner waiting in `room`'s lobby went away.
    pub fn leave_lobby(&self, room: &str, id: ParticipantId) {
        let mut inner = self.lock();
        let Some(r) = inner.rooms.get_mut(room) else {
            return;
        };
        if r.policy.lobby.remove(&id).is_some() {
            info!(room, %id, "left the lobby");
            r.tell_lobby();
        }
        // A room opened by its lobby closes with it.
        if r.members.is_empty() && r.policy.lobby.is_empty() {
            let key = r.key.clone();
            inner.rooms.remove(room);
            inner.room_names.remove(&key);
            info!(room, "room closed");
        }
    }

    /// Makes sure `room` has a moderator: if none is left, the longest-present
    /// participant (a viewer only when nobody else is there) becomes one; not in a
    /// room with a moderator password.
    pub(crate) fn ensure_moderator(&self, room: &str, r: &mut Room) {
        if r.moderators() > 0 || !r.appoints_moderators() {
            return;
        }
        let pick = r
            .members
            .values()
            .find(|m| m.info.role != Role::Viewer)
            .or_else(|| r.members.values().next())
            .map(|m| m.info.id);
        let Some(id) = pick else {
            return;
        };
        if let Err(e) = self.set_role_in(r, id, Role::Moderator) {
            warn!(room, %id, "cannot hand over the moderator's role: {e}");
            return;
        }
        if let Some(m) = r.members.get(&id) {
            let by = reference(m);
            info!(room, %id, "now the moderator");
            // Not a moderator's action: shown, not kept (a server shutting down hands
            // the role on as it lets each member go).
            self.tell(r, &by, &format!("{} is now a moderator", by.name));
        }
    }

    /// Stops forwarding `target`'s `source` (ending a screen share), under the lock.
    fn mute_in(
        &self,
        r: &mut Room,
        room: &str,
        target: ParticipantId,
        source: TrackSource,
        block: bool,
    ) -> Result<(), Refused> {
        if source == TrackSource::Screen {
            if r.members.get(&target).is_some_and(|m| m.info.screen) {
                self.set_screen_in(r, room, target, false)?;
            }
        } else {
            let command = WorkerCommand::Block {
                id: target,
                source,
                blocked: true,
            };
            self.worker(r, target)
                .try_send(command)
                .map_err(|e| Refused::new(ErrorCode::Unavailable, e.to_string()))?;
        }
        let Some(m) = r.members.get_mut(&target) else {
            return Ok(());
        };
        m.muted.retain(|(s, _)| *s != source);
        // A screen share simply ends: nothing is held back unless blocked.
        if source != TrackSource::Screen || block {
            m.muted.push((source, block));
        }
        match source {
            TrackSource::Microphone => m.info.microphone = false,
            TrackSource::Camera => m.info.camera = false,
            TrackSource::Screen => return Ok(()),
        }
        let participant = m.info.clone();
        broadcast(
            &r.members,
            ServerMessage::ParticipantUpdated { participant },
        );
        Ok(())
    }

    /// Gives `target` `role`, under the lock. The only moderator cannot step down.
    fn set_role_in(&self, r: &mut Room, target: ParticipantId, role: Role) -> Result<(), Refused> {
        let old = r.target(target)?.info.role;
        if old == role {
            return Ok(());
        }
        if old == Role::Moderator && r.moderators() == 1 {
            return Err(Refused::new(
                ErrorCode::Forbidden,
                "The room needs a moderator: make someone else a moderator first.",
            ));
        }
        if role == Role::Viewer || old == Role::Viewer {
            let command = WorkerCommand::MayPublish {
                id: target,
                may_publish: role != Role::Viewer,
            };
            self.worker(r, target)
                .try_send(command)
                .map_err(|e| Refused::new(ErrorCode::Unavailable, e.to_string()))?;
        }
        if role == Role::Viewer && r.members.get(&target).is_some_and(|m| m.info.screen) {
            let command = WorkerCommand::Presenter {
                id: target,
                presenting: false,
            };
            self.worker(r, target)
                .try_send(command)
                .map_err(|e| Refused::new(ErrorCode::Unavailable, e.to_string()))?;
        }
        // What is held back follows the role: a moderator publishes whatever the room's
        // settings or a block held back; a moderator made participant again is held to
        // the room's settings like any participant.
        let sources = [TrackSource::Camera, TrackSource::Microphone];
        let (release, hold): (Vec<TrackSource>, Vec<TrackSource>) = match role {
            Role::Moderator => (
                r.members
                    .get(&target)
                    .map(|m| m.muted.iter().map(|(s, _)| *s).collect())
                    .unwrap_or_default(),
                Vec::new(),
            ),
            Role::Participant => (
                Vec::new(),
                r.settings
                    .as_ref()
                    .map(|s| {
                        let mut all = sources.to_vec();
                        all.push(TrackSource::Screen);
                        all.into_iter().filter(|t| !s.may_publish(*t)).collect()
                    })
                    .unwrap_or_default(),
            ),
            Role::Viewer => (Vec::new(), Vec::new()),
        };
        for (source, blocked) in release
            .iter()
            .map(|s| (*s, false))
            .chain(hold.iter().map(|s| (*s, true)))
            .filter(|(s, _)| *s != TrackSource::Screen)
        {
            let command = WorkerCommand::Block {
                id: target,
                source,
                blocked,
            };
            self.worker(r, target)
                .try_send(command)
                .map_err(|e| Refused::new(ErrorCode::Unavailable, e.to_string()))?;
        }
        let Some(m) = r.members.get_mut(&target) else {
            return Ok(());
        };
        m.info.role = role;
        if role == Role::Moderator {
            m.muted.clear();
        }
        for source in &hold {
            m.muted.retain(|(s, _)| s != source);
            m.muted.push((*source, true));
            match source {
                TrackSource::Camera => m.info.camera = false,
                TrackSource::Microphone => m.info.microphone = false,
                // A share under way ends when its presenter stops it; a new one is refused.
                TrackSource::Screen => {}
            }
        }
        if role == Role::Viewer {
            m.info.camera = false;
            m.info.microphone = false;
            m.info.screen = false;
            m.muted.clear();
        }
        let participant = m.info.clone();
        broadcast(
            &r.members,
            ServerMessage::ParticipantUpdated { participant },
        );
        if role == Role::Moderator && !r.policy.lobby.is_empty() {
            r.tell_lobby();
        }
        Ok(())
    }

    /// Takes `target` out of `room` for `reason`, telling it why; its session stays
    /// refused, and with a ban its name too, while the room exists.
    fn remove_member(
        &self,
        inner: &mut Inner,
        room: &str,
        target: ParticipantId,
        reason: RemovedReason,
        by: Option<&ParticipantRef>,
    ) {
        let Some(member) = self.remove(inner, room, target, LeaveReason::Removed) else {
            return;
        };
        if let Some(r) = inner.rooms.get_mut(room) {
            let banned = reason == RemovedReason::Banned;
            r.policy
                .removed_sessions
                .insert(member.token.clone(), banned);
            if banned {
                r.policy.banned_names.insert(member.key.clone());
            }
        }
        let who = by.map_or("A moderator", |b| b.name.as_str());
        let message = match reason {
            RemovedReason::Removed => format!("{who} removed you from the room."),
            RemovedReason::Banned => {
                format!("{who} removed you from the room; you cannot come back while the meeting lasts.")
            }
            RemovedReason::Ended => format!("{who} ended the meeting."),
            RemovedReason::Denied => format!("{who} did not let you in."),
        };
        member.outbound.message(ServerMessage::Removed {
            reason,
            by: by.cloned(),
            message,
        });
        member.outbound.send(ToParticipant::Removed);
    }

    /// The worker carrying member `id`'s connections.
    fn worker(&self, r: &Room, id: ParticipantId) -> &WorkerHandle {
        &self.workers()[r.worker_of(id)]
    }

    /// Announces `text` by `by` in `room`'s chat and keeps it in the history.
    fn announce(&self, room: &str, r: &Room, by: &ParticipantRef, text: &str) {
        let ts = crate::chat::now_ms();
        let person = Person {
            id: by.id.0,
            name: by.name.clone(),
        };
        if let Err(e) = self.store.add_notice(room, &person, text, ts) {
            warn!("storing a moderation notice: {e}");
        }
        self.tell_at(r, by, text, ts);
    }

    /// Shows `text` by `by` in `r`'s chat without keeping it.
    fn tell(&self, r: &Room, by: &ParticipantRef, text: &str) {
        self.tell_at(r, by, text, crate::chat::now_ms());
    }

    fn tell_at(&self, r: &Room, by: &ParticipantRef, text: &str, ts: u64) {
        let message = ChatMessage {
            ts,
            from: by.clone(),
            to: Vec::new(),
            text: text.to_string(),
            file: None,
            notice: true,
        };
        broadcast(&r.members, ServerMessage::Chat { message });
    }
}

fn room_of<'a>(inner: &'a mut Inner, room: &str) -> Result<&'a mut Room, Refused> {
    inner
        .rooms
        .get_mut(room)
        .ok_or_else(|| Refused::new(ErrorCode::WrongState, "Join a room first."))
}
