//! A room on one media worker: who is in it, in join order, and who speaks.

use lanmeet_proto::ParticipantId;

use crate::speaker::SpeakerDetector;

/// A room's members and its active-speaker detector.
#[derive(Debug, Default)]
pub(crate) struct Room {
    /// Participants, in join order.
    pub members: Vec<ParticipantId>,
    /// Active speaker detection from the members' audio levels.
    pub speakers: SpeakerDetector,
}

impl Room {
    /// Everyone but `id`, in join order.
    pub(crate) fn others(&self, id: ParticipantId) -> Vec<ParticipantId> {
        self.members.iter().copied().filter(|p| *p != id).collect()
    }
}
