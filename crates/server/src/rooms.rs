//! The room registry on the signaling side: who is in which room under which name, who
//! presents (shares a screen), which worker carries the room's media, and the fan-out of
//! membership changes.
//!
//! A std mutex guards it: every operation is a few map updates and channel sends, never
//! an await, so holding it is short and cannot deadlock across tasks.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use lanmeet_proto::{
    validate, ErrorCode, LeaveReason, MediaSignal, Participant, ParticipantId, ParticipantRef,
    Role, ServerMessage, TrackSource,
};
use lanmeet_sfu::WorkerId;
use lanmeet_store::Store;
use tracing::{info, warn};

use crate::config::FileSharing;
use crate::media::{ToParticipant, WorkerBusy, WorkerCommand, WorkerHandle};
use crate::moderation::Policy;
use crate::outbound::Outbound;
use crate::persistent::{Access, RoomSettings};

/// A refused join, with the code and message the client shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JoinError {
    /// Protocol error code.
    pub code: ErrorCode,
    /// Text for the user.
    pub message: String,
}

pub use crate::moderation::Refused;

/// A successful join.
#[derive(Debug)]
pub struct Joined {
    /// The new participant's id.
    pub id: ParticipantId,
    /// The validated room name.
    pub room: String,
    /// Everyone else already there.
    pub others: Vec<Participant>,
    /// Bearer token for HTTP requests.
    pub token: String,
    /// Its role.
    pub role: Role,
    /// Whether the room is locked.
    pub locked: bool,
}

/// What a join led to.
#[derive(Debug)]
pub enum Entry {
    /// In the room.
    Joined(Joined),
    /// In the room's lobby, waiting for a moderator; admitted, it gets
    /// [`ToParticipant::Admitted`].
    Waiting {
        /// The id it will have.
        id: ParticipantId,
        /// The room's name.
        room: String,
    },
}

/// Someone about to become a member.
pub(crate) struct Newcomer {
    pub id: ParticipantId,
    pub name: String,
    pub key: String,
    pub remote: Option<SocketAddr>,
    pub outbound: Outbound,
    /// It gave the room's moderator password.
    pub moderator: bool,
}

pub(crate) struct Member {
    pub info: Participant,
    /// Its name's key ([`validate::Name::key`]): no two members of a room share one.
    pub key: String,
    /// Where its WebSocket comes from (admin only: never shown to participants).
    pub remote: Option<SocketAddr>,
    /// When it joined, milliseconds since the Unix epoch.
    pub joined_ms: u64,
    pub outbound: Outbound,
    pub token: String,
    /// Sources a moderator muted and the server holds back until it switches them on
    /// again, with whether it may (`true`: blocked, it may not).
    pub muted: Vec<(TrackSource, bool)>,
    /// The media worker carrying its connections: the room's own, or another once the
    /// room outgrew it ([`Registry::with_fanout_spill`]).
    pub worker: usize,
}

/// Who an HTTP bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Room.
    pub room: String,
    /// Participant.
    pub id: ParticipantId,
    /// Its name.
    pub name: String,
}

pub(crate) struct Room {
    /// Its name's key ([`validate::Name::key`]).
    pub key: String,
    /// Its home worker: where its members go until there are
    /// [`Registry::with_fanout_spill`] of them.
    pub worker: usize,
    pub members: BTreeMap<ParticipantId, Member>,
    /// Lock, lobby, bans and raised hands ([`crate::moderation`]).
    pub policy: Policy,
    /// A persistent room's settings as they were when it opened.
    pub settings: Option<Arc<RoomSettings>>,
}

impl Room {
    /// The worker carrying member `id`'s connections (the room's own if it is no
    /// member).
    pub(crate) fn worker_of(&self, id: ParticipantId) -> usize {
        self.members.get(&id).map_or(self.worker, |m| m.worker)
    }

    /// Whether the room hands the moderator's role to its first or longest-present
    /// member (not when it has a moderator password: only its holders moderate).
    pub(crate) fn appoints_moderators(&self) -> bool {
        self.settings
            .as_ref()
            .is_none_or(|s| s.moderator_password.is_none())
    }
}

#[derive(Default)]
pub(crate) struct Inner {
    /// By the name the room was opened under.
    pub rooms: HashMap<String, Room>,
    /// Room name key → the name the room was opened under: a join naming a room that
    /// looks the same (`Physics`, `ｐｈｙｓｉｃｓ`) enters that room.
    pub room_names: HashMap<String, String>,
    /// Bearer token → (room, participant).
    pub sessions: HashMap<String, (String, ParticipantId)>,
    /// Persistent rooms by name key.
    pub persistent: HashMap<String, Arc<RoomSettings>>,
    /// Rooms not persistent are refused.
    pub no_adhoc: bool,
}

/// A room as the admin dashboard sees it.
#[derive(Debug, Clone)]
pub struct RoomSnapshot {
    /// Its name.
    pub name: String,
    /// The media worker carrying it.
    pub worker: usize,
    /// Its members in id order.
    pub members: Vec<MemberSnapshot>,
}

/// A member as the admin dashboard sees it.
#[derive(Debug, Clone)]
pub struct MemberSnapshot {
    /// Id, name and media state.
    pub participant: Participant,
    /// Its WebSocket's remote address.
    pub remote: Option<SocketAddr>,
    /// When it joined, milliseconds since the Unix epoch.
    pub joined_ms: u64,
}

/// Participant ids reserved from the database's counter, a block at a time.
struct IdBlock {
    next: u64,
    end: u64,
}

/// Ids reserved per database write: a join rarely waits for the disk.
const ID_BLOCK: u64 = 64;

/// Every room on this server.
pub struct Registry {
    inner: Mutex<Inner>,
    workers: Vec<WorkerHandle>,
    /// Ids never repeat, also across restarts and whatever the clock says: stored
    /// private files name their recipients by id, so a later participant must never
    /// inherit one. The counter lives in the database.
    ids: Mutex<IdBlock>,
    pub(crate) store: Arc<Store>,
    /// Members a room has before later joiners go to the least loaded worker.
    fanout_spill: usize,
    /// Most participants of one room sharing a screen at once (at least 1).
    max_presenters: usize,
}

impl Registry {
    /// A registry placing rooms on `workers`, letting up to `max_presenters`
    /// participants per room share a screen at once, and taking participant ids from
    /// `store`'s counter.
    pub fn new(workers: Vec<WorkerHandle>, max_presenters: usize, store: Arc<Store>) -> Self {
        assert!(!workers.is_empty(), "at least one media worker");
        Registry {
            max_presenters: max_presenters.max(1),
            inner: Mutex::new(Inner::default()),
            workers,
            ids: Mutex::new(IdBlock { next: 0, end: 0 }),
            store,
            fanout_spill: usize::MAX,
        }
    }

    /// Lets a room spread over the workers: once it has `n` members, later joiners go
    /// to the least loaded worker, and its workers hand each other its media
    /// (docs/media.md, "Cross-worker fan-out"). Without it, a room stays on one worker.
    pub fn with_fanout_spill(mut self, n: usize) -> Self {
        self.fanout_spill = n.max(1);
        self
    }

    /// A participant id never handed out before, for a station (`stations.rs`).
    pub fn reserve_id(&self) -> Result<ParticipantId, JoinError> {
        self.new_id()
    }

    /// A participant id never handed out before.
    fn new_id(&self) -> Result<ParticipantId, JoinError> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.next == ids.end {
            let first = self.store.reserve_participant_ids(ID_BLOCK).map_err(|e| {
                warn!("reserving participant ids: {e}");
                JoinError {
                    code: ErrorCode::Unavailable,
                    message: "The server cannot admit anyone right now; please try again.".into(),
                }
            })?;
            *ids = IdBlock {
                next: first,
                end: first + ID_BLOCK,
            };
        }
        let id = ids.next;
        ids.next += 1;
        Ok(ParticipantId(id))
    }

    /// Loads the persistent rooms from the database, after storing `configured` (the
    /// config file's rooms, replacing stored ones of the same name); with `adhoc` off,
    /// only they can be joined.
    pub fn open_rooms(
        &self,
        adhoc: bool,
        configured: Vec<RoomSettings>,
    ) -> Result<(), lanmeet_store::StoreError> {
        for room in &configured {
            self.store.upsert_room(&room.record())?;
        }
        let stored = self.store.rooms()?;
        let mut inner = self.lock();
        inner.no_adhoc = !adhoc;
        inner.persistent = stored
            .into_iter()
            .map(|r| (r.key.clone(), Arc::new(RoomSettings::from_record(r))))
            .collect();
        info!(rooms = inner.persistent.len(), adhoc, "persistent rooms");
        Ok(())
    }

    /// Every persistent room, by key.
    pub fn persistent_rooms(&self) -> Vec<Arc<RoomSettings>> {
        let mut rooms: Vec<_> = self.lock().persistent.values().cloned().collect();
        rooms.sort_by(|a, b| a.key.cmp(&b.key));
        rooms
    }

    /// Creates or replaces persistent room `room.key`, in the database first. A room
    /// open now keeps the lobby and permissions it opened with; passwords and the
    /// participant limit apply to the next join.
    pub fn put_room(&self, room: RoomSettings) -> Result<(), lanmeet_store::StoreError> {
        self.store.upsert_room(&room.record())?;
        info!(room = room.name, "persistent room saved");
        self.lock()
            .persistent
            .insert(room.key.clone(), Arc::new(room));
        Ok(())
    }

    /// Deletes persistent room `key`; returns whether there was one. People in it stay;
    /// once it empties, its name is an ad-hoc room (if those are allowed).
    pub fn delete_room(&self, key: &str) -> Result<bool, lanmeet_store::StoreError> {
        let stored = self.store.delete_room(key)?;
        let known = self.lock().persistent.remove(key).is_some();
        Ok(stored || known)
    }

    /// The settings of persistent room `room` (any name that looks the same).
    pub fn settings(&self, room: &str) -> Option<Arc<RoomSettings>> {
        let key = validate::room_name(room).ok()?.key;
        self.lock().persistent.get(&key).cloned()
    }

    /// Whether member `id` of `room` may share files there.
    pub fn may_share_files(&self, room: &str, id: ParticipantId) -> Result<(), Refused> {
        let inner = self.lock();
        let Some(r) = inner.rooms.get(room) else {
            return Ok(());
        };
        let moderator = r
            .members
            .get(&id)
            .is_some_and(|m| m.info.role == Role::Moderator);
        let allowed = match r.settings.as_ref().map(|s| s.files) {
            None | Some(FileSharing::Everyone) => true,
            Some(FileSharing::Moderators) => moderator,
            Some(FileSharing::Nobody) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused {
                code: ErrorCode::Forbidden,
                message: "Sharing files is not allowed in this room.".into(),
            })
        }
    }

    /// The media workers.
    pub fn workers(&self) -> &[WorkerHandle] {
        &self.workers
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves maps that are still consistent (every
        // update is a single insert or remove), so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `name` into `room`, creating the room on the least loaded worker if needed
    /// (its first member is its moderator).
    /// A room whose name looks the same as `room` (the same [`validate::Name::key`]) is
    /// that room, and [`Joined::room`] gives its name; a name that looks the same as a
    /// member's (or a waiting joiner's) is taken.
    /// `resume` is the token of this client's previous session in the room: if the
    /// server still holds it (the old connection has not timed out yet), it is removed
    /// first so that its name is free. A banned name, or the token of a removed session,
    /// is refused. A locked room puts the joiner in its lobby ([`Entry::Waiting`]).
    /// `access` is what the joiner's password admitted it to
    /// ([`RoomSettings::check`], done before: it is slow); a moderator skips the lobby.
    /// A room that is not persistent is refused when ad-hoc rooms are off, and a full
    /// persistent room always.
    pub fn join(
        &self,
        room: &str,
        name: &str,
        resume: Option<&str>,
        remote: Option<SocketAddr>,
        outbound: Outbound,
        access: Access,
    ) -> Result<Entry, JoinError> {
        let invalid = |message| JoinError {
            code: ErrorCode::InvalidName,
            message,
        };
        let room_name = validate::room_name(room).map_err(invalid)?;
        let name = validate::participant_name(name).map_err(invalid)?;
        let mut inner = self.lock();
        let settings = inner.persistent.get(&room_name.key).cloned();
        if settings.is_none() && inner.no_adhoc {
            return Err(JoinError {
                code: ErrorCode::RoomClosed,
                message: format!(
                    "There is no room called {}: this server only opens the rooms its admin set up.",
                    room_name.display
                ),
            });
        }
        let room = match (inner.room_names.get(&room_name.key), &settings) {
            (Some(open), _) => open.clone(),
            (None, Some(s)) => s.name.clone(),
            (None, None) => room_name.display,
        };
        if let Some(r) = inner.rooms.get(&room) {
            r.policy.check_entry(&room, &name.key, resume)?;
        }
        if let Some((old_room, old_id)) = resume.and_then(|t| inner.sessions.get(t)).cloned() {
            if old_room == room {
                info!(id = %old_id, room, "replaced by its rejoin");
                if let Some(old) = self.remove(&mut inner, &room, old_id, LeaveReason::Disconnected)
                {
                    old.outbound.send(ToParticipant::Replaced);
                }
            }
        }
        if let Some(r) = inner.rooms.get(&room) {
            let taken = r
                .members
                .values()
                .map(|m| (&m.key, &m.info.name))
                .chain(r.policy.lobby.values().map(|w| (&w.key, &w.name)))
                .find(|(key, _)| **key == name.key);
            if let Some((_, other)) = taken {
                return Err(JoinError {
                    code: ErrorCode::NameTaken,
                    message: name_taken_message(&name.display, other, &room),
                });
            }
        }
        let max = settings.as_ref().map_or(0, |s| s.max_participants) as usize;
        if let Some(r) = inner.rooms.get(&room) {
            if max > 0 && r.members.len() + r.policy.lobby.len() >= max {
                return Err(JoinError {
                    code: ErrorCode::RoomFull,
                    message: format!("Room {room} is full: it admits {max} participants at once."),
                });
            }
        }
        let moderator = access == Access::Moderator;
        let id = self.new_id()?;
        // A persistent room with a lobby and a moderator password opens with its
        // lobby: participants arriving before a moderator wait for one.
        if let Some(s) = settings.filter(|s| s.lobby && s.moderator_password.is_some()) {
            if !moderator && !inner.rooms.contains_key(&room) {
                let worker = least_loaded(&inner.rooms, self.workers.len());
                inner.room_names.insert(room_name.key.clone(), room.clone());
                inner.rooms.insert(
                    room.clone(),
                    Room {
                        key: room_name.key.clone(),
                        worker,
                        members: BTreeMap::new(),
                        policy: Policy {
                            locked: true,
                            ..Policy::default()
                        },
                        settings: Some(s),
                    },
                );
            }
        }
        if let Some(r) = inner.rooms.get_mut(&room) {
            if r.policy.locked && !moderator {
                r.wait(id, name.display, name.key, remote, outbound);
                info!(%id, room, "waiting in the lobby");
                return Ok(Entry::Waiting { id, room });
            }
        }
        let newcomer = Newcomer {
            id,
            name: name.display,
            key: name.key,
            remote,
            outbound,
            moderator,
        };
        self.enter(&mut inner, &room, room_name.key, newcomer)
            .map(Entry::Joined)
    }

    /// Makes `who` a member of `room` (opening it, with `who` as its moderator, if it is
    /// new) and tells the others.
    pub(crate) fn enter(
        &self,
        inner: &mut Inner,
        room: &str,
        room_key: String,
        who: Newcomer,
    ) -> Result<Joined, JoinError> {
        let Inner {
            rooms,
            sessions,
            room_names,
            persistent,
            ..
        } = inner;
        let Newcomer {
            id,
            name,
            key,
            remote,
            outbound,
            moderator,
        } = who;
        // A room stays on its worker while it is small: a meeting never pays a hop
        // between threads. Beyond the spill size, joiners go where the load is least.
        let worker = match rooms.get(room) {
            Some(r) if r.members.len() >= self.fanout_spill => {
                least_loaded(rooms, self.workers.len())
            }
            Some(r) => r.worker,
            None => least_loaded(rooms, self.workers.len()),
        };
        let mut others: Vec<WorkerId> = rooms
            .get(room)
            .map(|r| r.members.values().map(|m| m.worker))
            .into_iter()
            .flatten()
            .filter(|w| *w != worker)
            .map(WorkerId)
            .collect();
        others.sort_unstable();
        others.dedup();
        // The worker hears of the join first: if its command queue is full, the join is
        // refused before anyone is told about it.
        let command = WorkerCommand::Join {
            room: room.to_string(),
            id,
            outbound: outbound.clone(),
            others,
        };
        if let Err(e) = self.workers[worker].try_send(command) {
            return Err(JoinError {
                code: ErrorCode::Unavailable,
                message: e.to_string(),
            });
        }
        let entry = rooms.entry(room.to_string()).or_insert_with(|| {
            room_names.insert(room_key.clone(), room.to_string());
            let settings = persistent.get(&room_key).cloned();
            Room {
                key: room_key,
                worker,
                members: BTreeMap::new(),
                policy: Policy {
                    locked: settings.as_ref().is_some_and(|s| s.lobby),
                    ..Policy::default()
                },
                settings,
            }
        });
        let mut role = if moderator || (entry.members.is_empty() && entry.appoints_moderators()) {
            Role::Moderator
        } else {
            Role::Participant
        };
        // What a persistent room does not let participants publish is blocked from the
        // start, as a moderator's block would (a room allowing nothing makes viewers).
        let mut muted = Vec::new();
        if let Some(s) = entry.settings.as_ref().filter(|_| role != Role::Moderator) {
            let sources = [
                TrackSource::Camera,
                TrackSource::Microphone,
                TrackSource::Screen,
            ];
            let refused: Vec<TrackSource> =
                sources.into_iter().filter(|t| !s.may_publish(*t)).collect();
            let commands: Vec<WorkerCommand> = if refused.len() == sources.len() {
                role = Role::Viewer;
                vec![WorkerCommand::MayPublish {
                    id,
                    may_publish: false,
                }]
            } else {
                muted = refused.iter().map(|t| (*t, true)).collect();
                refused
                    .iter()
                    .filter(|t| **t != TrackSource::Screen)
                    .map(|t| WorkerCommand::Block {
                        id,
                        source: *t,
                        blocked: true,
                    })
                    .collect()
            };
            for command in commands {
                if let Err(e) = self.workers[worker].try_send(command) {
                    self.workers[worker].leave(id);
                    return Err(JoinError {
                        code: ErrorCode::Unavailable,
                        message: e.to_string(),
                    });
                }
            }
        }
        let held = |t| role == Role::Viewer || muted.contains(&(t, true));
        let info = Participant {
            id,
            name,
            camera: !held(TrackSource::Camera),
            microphone: !held(TrackSource::Microphone),
            screen: false,
            role,
            hand: None,
        };
        let others: Vec<Participant> = entry.members.values().map(|m| m.info.clone()).collect();
        broadcast(
            &entry.members,
            ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
        );
        let token = new_token();
        sessions.insert(token.clone(), (room.to_string(), id));
        entry.members.insert(
            id,
            Member {
                info,
                key,
                remote,
                joined_ms: crate::chat::now_ms(),
                outbound,
                token: token.clone(),
                muted,
                worker,
            },
        );
        if role == Role::Moderator && !entry.policy.lobby.is_empty() {
            entry.tell_lobby();
        }
        info!(%id, room, worker, ?role, "joined");
        Ok(Joined {
            id,
            room: room.to_string(),
            others,
            token,
            role,
            locked: entry.policy.locked,
        })
    }

    /// Removes `id` from `room`, telling the others why. Idempotent.
    pub fn leave(&self, room: &str, id: ParticipantId, reason: LeaveReason) {
        let mut inner = self.lock();
        self.remove(&mut inner, room, id, reason);
    }

    /// Removes `id` from `room` under the lock; returns the member if it was there.
    pub(crate) fn remove(
        &self,
        inner: &mut Inner,
        room: &str,
        id: ParticipantId,
        reason: LeaveReason,
    ) -> Option<Member> {
        let Inner {
            rooms,
            sessions,
            room_names,
            ..
        } = inner;
        let r = rooms.get_mut(room)?;
        let member = r.members.remove(&id)?;
        sessions.remove(&member.token);
        self.workers[member.worker].leave(id);
        broadcast(&r.members, ServerMessage::ParticipantLeft { id, reason });
        info!(%id, room, ?reason, "left");
        if r.members.is_empty() {
            r.close_lobby();
            room_names.remove(&r.key);
            rooms.remove(room);
            info!(room, "room closed");
        } else if member.info.role == Role::Moderator {
            self.ensure_moderator(room, r);
        }
        Some(member)
    }

    /// Records a camera/microphone switch and tells the others.
    /// Switching on a source a moderator blocked, or anything as a viewer, is refused
    /// and changes nothing; switching on one a moderator muted lets it through again.
    pub fn set_media_state(
        &self,
        room: &str,
        id: ParticipantId,
        camera: bool,
        microphone: bool,
    ) -> Result<(), Refused> {
        let mut inner = self.lock();
        let Some(r) = inner.rooms.get_mut(room) else {
            return Ok(());
        };
        let worker = &self.workers[r.worker_of(id)];
        let Some(m) = r.members.get_mut(&id) else {
            return Ok(());
        };
        let wanted = [
            (TrackSource::Camera, camera),
            (TrackSource::Microphone, microphone),
        ];
        for (source, on) in wanted {
            crate::moderation::may_switch_on(m, source, on)?;
        }
        for (source, on) in wanted {
            crate::moderation::switched_on(m, source, on, worker)?;
        }
        m.info.camera = camera;
        m.info.microphone = microphone;
        let participant = m.info.clone();
        for (other, member) in &r.members {
            if *other != id {
                member.outbound.message(ServerMessage::ParticipantUpdated {
                    participant: participant.clone(),
                });
            }
        }
        Ok(())
    }

    /// Starts (`active`) or stops screen sharing for `id`. On success everyone in the room,
    /// `id` included, gets `participant_updated`: the sender takes it as the confirmation.
    /// Starting is refused while the room has `max_presenters` other presenters; starting
    /// again while presenting confirms again; stopping when not presenting does nothing.
    /// A presenter who leaves frees the slot with the membership itself.
    /// A viewer, or a participant whose screen a moderator blocked, is refused.
    pub fn set_screen(&self, room: &str, id: ParticipantId, active: bool) -> Result<(), Refused> {
        let mut inner = self.lock();
        let Some(r) = inner.rooms.get_mut(room) else {
            return Ok(());
        };
        self.set_screen_in(r, room, id, active)
    }

    /// [`Registry::set_screen`] under the lock.
    pub(crate) fn set_screen_in(
        &self,
        r: &mut Room,
        room: &str,
        id: ParticipantId,
        active: bool,
    ) -> Result<(), Refused> {
        let Some(m) = r.members.get_mut(&id) else {
            return Ok(());
        };
        crate::moderation::may_switch_on(m, TrackSource::Screen, active)?;
        m.muted
            .retain(|(s, blocked)| *s != TrackSource::Screen || *blocked);
        let current = m.info.screen;
        if !active && !current {
            return Ok(());
        }
        if active && !current {
            let presenters: Vec<&str> = r
                .members
                .values()
                .filter(|m| m.info.screen)
                .map(|m| m.info.name.as_str())
                .collect();
            if presenters.len() >= self.max_presenters {
                return Err(Refused {
                    code: ErrorCode::PresenterBusy,
                    message: busy_message(&presenters),
                });
            }
        }
        if !r.members.contains_key(&id) {
            return Ok(());
        }
        // The worker learns it before anyone hears of it, so the presenter's next
        // publish offer (with its screen) finds the seat granted there too. A worker too
        // busy to hear it refuses the change rather than lose it.
        let command = WorkerCommand::Presenter {
            id,
            presenting: active,
        };
        if let Err(e) = self.workers[r.worker_of(id)].try_send(command) {
            return Err(Refused {
                code: ErrorCode::Unavailable,
                message: e.to_string(),
            });
        }
        let Some(m) = r.members.get_mut(&id) else {
            return Ok(());
        };
        m.info.screen = active;
        let participant = m.info.clone();
        info!(%id, room, active, "screen share");
        broadcast(
            &r.members,
            ServerMessage::ParticipantUpdated { participant },
        );
        Ok(())
    }

    /// Passes participant `id`'s media message to the worker carrying `room`. Refused,
    /// with a message for the client, when the worker's command queue is full.
    pub fn media_signal(
        &self,
        room: &str,
        id: ParticipantId,
        signal: MediaSignal,
    ) -> Result<(), WorkerBusy> {
        let worker = self.lock().rooms.get(room).map(|r| r.worker_of(id));
        match worker {
            Some(w) => self.workers[w].try_send(WorkerCommand::Signal { id, signal }),
            None => Ok(()),
        }
    }

    /// Stops every media worker thread and waits for it (shutdown).
    pub fn stop_workers(&self) {
        for w in &self.workers {
            w.stop();
        }
    }

    /// (rooms, participants) right now.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let rooms = &inner.rooms;
        (rooms.len(), rooms.values().map(|r| r.members.len()).sum())
    }

    /// Every room with its members, for the admin dashboard, in name order.
    pub fn snapshot(&self) -> Vec<RoomSnapshot> {
        let inner = self.lock();
        let mut rooms: Vec<RoomSnapshot> = inner
            .rooms
            .iter()
            .map(|(name, r)| RoomSnapshot {
                name: name.clone(),
                worker: r.worker,
                members: r
                    .members
                    .values()
                    .map(|m| MemberSnapshot {
                        participant: m.info.clone(),
                        remote: m.remote,
                        joined_ms: m.joined_ms,
                    })
                    .collect(),
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }

    /// Who holds bearer token `token`, if it is a current participant.
    pub fn session(&self, token: &str) -> Option<SessionInfo> {
        let inner = self.lock();
        let (room, id) = inner.sessions.get(token)?;
        let member = inner.rooms.get(room)?.members.get(id)?;
        Some(SessionInfo {
            room: room.clone(),
            id: *id,
            name: member.info.name.clone(),
        })
    }

    /// Name of participant `id` in `room`.
    pub fn name_of(&self, room: &str, id: ParticipantId) -> Option<String> {
        let inner = self.lock();
        Some(inner.rooms.get(room)?.members.get(&id)?.info.name.clone())
    }

    /// Sends `msg` to `to` in `room` (everyone when `to` is `None`). Returns the
    /// recipients' references, or the ids that are not in the room (then nothing is sent).
    pub fn deliver(
        &self,
        room: &str,
        to: Option<&[ParticipantId]>,
        msg: impl Fn(&[ParticipantRef]) -> ServerMessage,
    ) -> Result<Vec<ParticipantRef>, Vec<ParticipantId>> {
        let inner = self.lock();
        let Some(r) = inner.rooms.get(room) else {
            return Err(to.map(<[_]>::to_vec).unwrap_or_default());
        };
        let targets: Vec<&Member> = match to {
            None => r.members.values().collect(),
            Some(ids) => {
                let missing: Vec<ParticipantId> = ids
                    .iter()
                    .copied()
                    .filter(|id| !r.members.contains_key(id))
                    .collect();
                if !missing.is_empty() {
                    return Err(missing);
                }
                ids.iter().filter_map(|id| r.members.get(id)).collect()
            }
        };
        let refs: Vec<ParticipantRef> = match to {
            None => Vec::new(),
            Some(_) => targets
                .iter()
                .map(|m| ParticipantRef {
                    id: m.info.id,
                    name: m.info.name.clone(),
                })
                .collect(),
        };
        let msg = msg(&refs);
        for m in targets {
            m.outbound.message(msg.clone());
        }
        Ok(refs)
    }
}

/// 128 random bits as hex: unguessable bearer and download tokens.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Why `wanted` cannot join `room`: `taken`, a member's name, looks the same.
fn name_taken_message(wanted: &str, taken: &str, room: &str) -> String {
    if wanted == taken {
        format!("Someone called \"{taken}\" is already in room {room}. Please choose another name.")
    } else {
        format!(
            "\"{wanted}\" looks the same as \"{taken}\", who is already in room {room}. \
             Please choose another name."
        )
    }
}

/// "Ada is presenting. …" or "Ada, Grace and Alan are presenting. …".
fn busy_message(presenters: &[&str]) -> String {
    let names = match presenters {
        [] => "Someone".to_string(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    let verb = if presenters.len() > 1 { "are" } else { "is" };
    format!("{names} {verb} presenting. Ask them to stop, or wait.")
}

pub(crate) fn broadcast(members: &BTreeMap<ParticipantId, Member>, msg: ServerMessage) {
    for m in members.values() {
        m.outbound.message(msg.clone());
    }
}

/// The worker with the fewest participants (a room without members counts one on its
/// own worker).
fn least_loaded(rooms: &HashMap<String, Room>, workers: usize) -> usize {
    let mut load = vec![0usize; workers];
    for r in rooms.values() {
        if r.members.is_empty() {
            load[r.worker] += 1;
        }
        for m in r.members.values() {
            load[m.worker] += 1;
        }
    }
    (0..workers).min_by_key(|w| load[*w]).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::busy_message;

    #[test]
    fn busy_message_names_every_presenter() {
        assert_eq!(
            busy_message(&["Ada"]),
            "Ada is presenting. Ask them to stop, or wait."
        );
        assert_eq!(
            busy_message(&["Ada", "Grace"]),
            "Ada and Grace are presenting. Ask them to stop, or wait."
        );
        assert_eq!(
            busy_message(&["Ada", "Grace", "Alan"]),
            "Ada, Grace and Alan are presenting. Ask them to stop, or wait."
        );
    }
}
