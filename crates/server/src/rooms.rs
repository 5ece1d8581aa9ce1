//! The room registry on the signaling side: who is in which room under which name, which
//! worker carries the room's media, and the fan-out of membership changes.
//!
//! A std mutex guards it: every operation is a few map updates and channel sends, never
//! an await, so holding it is short and cannot deadlock across tasks.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lanmeet_proto::{validate, ErrorCode, LeaveReason, Participant, ParticipantId, ServerMessage};
use tokio::sync::mpsc::UnboundedSender;
use tracing::info;

use crate::media::{ToParticipant, WorkerCommand, WorkerHandle};

/// A refused join, with the code and message the client shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct JoinError {
    /// Protocol error code.
    pub code: ErrorCode,
    /// Text for the user.
    pub message: String,
}

/// A successful join.
#[derive(Debug)]
pub struct Joined {
    /// The new participant's id.
    pub id: ParticipantId,
    /// The validated room name.
    pub room: String,
    /// Everyone else already there.
    pub others: Vec<Participant>,
}

struct Member {
    info: Participant,
    outbound: UnboundedSender<ToParticipant>,
}

struct Room {
    worker: usize,
    members: BTreeMap<ParticipantId, Member>,
}

/// Every room on this server.
pub struct Registry {
    rooms: Mutex<HashMap<String, Room>>,
    workers: Vec<WorkerHandle>,
    next_id: AtomicU64,
}

impl Registry {
    /// A registry placing rooms on `workers`.
    pub fn new(workers: Vec<WorkerHandle>) -> Self {
        assert!(!workers.is_empty(), "at least one media worker");
        Registry {
            rooms: Mutex::new(HashMap::new()),
            workers,
            next_id: AtomicU64::new(1),
        }
    }

    /// The media workers.
    pub fn workers(&self) -> &[WorkerHandle] {
        &self.workers
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Room>> {
        // A panic while holding the lock leaves maps that are still consistent (every
        // update is a single insert or remove), so a poisoned lock is safe to reuse.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts `name` into `room`, creating the room on the least loaded worker if needed.
    pub fn join(
        &self,
        room: &str,
        name: &str,
        outbound: UnboundedSender<ToParticipant>,
    ) -> Result<Joined, JoinError> {
        let invalid = |message| JoinError {
            code: ErrorCode::InvalidName,
            message,
        };
        let room = validate::room_name(room).map_err(invalid)?.to_string();
        let name = validate::participant_name(name)
            .map_err(invalid)?
            .to_string();
        let mut rooms = self.lock();
        if let Some(r) = rooms.get(&room) {
            if r.members
                .values()
                .any(|m| m.info.name.to_lowercase() == name.to_lowercase())
            {
                return Err(JoinError {
                    code: ErrorCode::NameTaken,
                    message: format!(
                        "Someone called \"{name}\" is already in room {room}. Please choose another name."
                    ),
                });
            }
        }
        let id = ParticipantId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let worker = match rooms.get(&room) {
            Some(r) => r.worker,
            None => least_loaded(&rooms, self.workers.len()),
        };
        let entry = rooms.entry(room.clone()).or_insert_with(|| Room {
            worker,
            members: BTreeMap::new(),
        });
        let info = Participant {
            id,
            name,
            camera: true,
            microphone: true,
        };
        let others: Vec<Participant> = entry.members.values().map(|m| m.info.clone()).collect();
        broadcast(
            &entry.members,
            ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
        );
        entry.members.insert(
            id,
            Member {
                info,
                outbound: outbound.clone(),
            },
        );
        self.workers[worker].send(WorkerCommand::Join {
            room: room.clone(),
            id,
            outbound,
        });
        info!(%id, room, worker, "joined");
        Ok(Joined { id, room, others })
    }

    /// Removes `id` from `room`, telling the others why. Idempotent.
    pub fn leave(&self, room: &str, id: ParticipantId, reason: LeaveReason) {
        let mut rooms = self.lock();
        let Some(r) = rooms.get_mut(room) else {
            return;
        };
        if r.members.remove(&id).is_none() {
            return;
        }
        self.workers[r.worker].send(WorkerCommand::Leave { id });
        broadcast(&r.members, ServerMessage::ParticipantLeft { id, reason });
        info!(%id, room, ?reason, "left");
        if r.members.is_empty() {
            rooms.remove(room);
            info!(room, "room closed");
        }
    }

    /// Records a camera/microphone switch and tells the others.
    pub fn set_media_state(&self, room: &str, id: ParticipantId, camera: bool, microphone: bool) {
        let mut rooms = self.lock();
        let Some(r) = rooms.get_mut(room) else {
            return;
        };
        let Some(m) = r.members.get_mut(&id) else {
            return;
        };
        m.info.camera = camera;
        m.info.microphone = microphone;
        let participant = m.info.clone();
        for (other, member) in &r.members {
            if *other != id {
                let _ = member.outbound.send(ToParticipant::Message(
                    ServerMessage::ParticipantUpdated {
                        participant: participant.clone(),
                    },
                ));
            }
        }
    }

    /// Passes a media command to the worker carrying `room`.
    pub fn to_worker(&self, room: &str, command: WorkerCommand) {
        let worker = self.lock().get(room).map(|r| r.worker);
        if let Some(w) = worker {
            self.workers[w].send(command);
        }
    }

    /// (rooms, participants) right now.
    pub fn counts(&self) -> (usize, usize) {
        let rooms = self.lock();
        (rooms.len(), rooms.values().map(|r| r.members.len()).sum())
    }
}

fn broadcast(members: &BTreeMap<ParticipantId, Member>, msg: ServerMessage) {
    for m in members.values() {
        let _ = m.outbound.send(ToParticipant::Message(msg.clone()));
    }
}

/// The worker with the fewest participants; rooms stay whole on one worker.
fn least_loaded(rooms: &HashMap<String, Room>, workers: usize) -> usize {
    let mut load = vec![0usize; workers];
    for r in rooms.values() {
        load[r.worker] += r.members.len().max(1);
    }
    (0..workers).min_by_key(|w| load[*w]).unwrap_or(0)
}
