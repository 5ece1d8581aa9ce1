//! A room on one media worker: who is in it, in join order, and who speaks.

use lanmeet_proto::ParticipantId;

use crate::sfu::WorkerId;
use crate::speaker::SpeakerDetector;

/// A room's members and its active-speaker detector.
#[derive(Debug, Default)]
pub(crate) struct Room {
    /// Participants, in join order: this worker's own, and the publishers of other
    /// workers whose tracks are relayed here (`Sfu::relayed`).
    pub members: Vec<ParticipantId>,
    /// Active speaker detection from the members' audio levels.
    pub speakers: SpeakerDetector,
    /// The room's other workers (see `sfu::relay`).
    pub relay: RoomRelay,
}

/// Which other workers share a room with this one.
#[derive(Debug, Default)]
pub(crate) struct RoomRelay {
    /// Workers with members of the room that asked for this worker's tracks: every
    /// packet of a publisher here is handed to each of them once.
    pub to: Vec<WorkerId>,
    /// Workers this one asked for their tracks (`RelayControl::Join`) since its first
    /// member of the room arrived.
    pub told: Vec<WorkerId>,
}

impl Room {
    /// Everyone but `id`, in join order.
    pub(crate) fn others(&self, id: ParticipantId) -> Vec<ParticipantId> {
        self.members.iter().copied().filter(|p| *p != id).collect()
    }
}
