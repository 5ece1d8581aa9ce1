//! Broadcasters inside the [`Sfu`]: a publisher whose offer comes from outside
//! signaling (a WHIP client streaming to a live station) and who receives nothing.
//!
//! A broadcaster is a participant of the station's room with a publish connection and
//! no subscribe connection. Its packets take the camera's path (`Sfu::forward_rtp`):
//! viewers get subscriptions to its tracks, simulcast layers chosen for their view and
//! estimate, NACK repair, and keyframe requests go to the broadcaster. Since no
//! signaling socket watches it, the SFU reports it gone ([`Output::MediaFailed`]) when
//! its ICE connection times out, as well as when its connection fails.

use std::time::Instant;

use lanmeet_proto::ParticipantId;
use str0m::change::SdpOffer;
use str0m::IceConnectionState;
use tracing::{debug, info};

use super::{Output, Sfu};
use crate::negotiation;
use crate::peer::{Connection, Leg};

impl Sfu {
    /// Adds broadcaster `id` to `room` with a publish connection that accepts `sdp`, an
    /// offer that only sends (audio and video, simulcast allowed). Viewers in `room`
    /// are subscribed to its tracks as they appear, exactly as to a participant's
    /// camera; it is subscribed to nothing. Returns the SDP answer (ICE-lite, with the
    /// worker's host candidates). An offer that cannot be used changes nothing and
    /// gives the reason, fit to show to whoever sent it.
    pub fn broadcast_offer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        room: &str,
        sdp: &str,
    ) -> Result<String, String> {
        if self.peers.contains_key(&id) {
            return Err(format!("Participant {id} is already on this worker."));
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| {
            debug!(%id, "broadcast offer unparsable: {e}");
            negotiation::sdp_problem("The offer", &e)
        })?;
        if offer.media_lines.is_empty() {
            return Err("The offer has no media section: send audio, video or both.".into());
        }
        negotiation::check_publish_offer(&offer, &[])?;
        let mut rtc = self.new_rtc(now, Leg::Publish, &[]);
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| {
            debug!(%id, "broadcast offer refused: {e}");
            negotiation::sdp_problem("The offer", &e)
        })?;
        self.join(now, room, id);
        let Some(peer) = self.peers.get_mut(&id) else {
            return Err("The broadcaster could not be added.".into());
        };
        // It receives nothing: its subscribe connection is never polled.
        peer.subscribe.dead = true;
        peer.subscriptions.clear();
        peer.publish = Some(Connection::new(rtc, now));
        self.broadcasters.insert(id);
        self.stats.publish_connections_built += 1;
        info!(%id, %room, "broadcaster joined");
        self.dirty.push((id, Leg::Publish));
        self.drive(now);
        Ok(answer.to_sdp_string())
    }

    /// Whether `id` is a broadcaster (see [`Sfu::broadcast_offer`]).
    pub fn is_broadcaster(&self, id: ParticipantId) -> bool {
        self.broadcasters.contains(&id)
    }

    /// A broadcaster's ICE state changed: an ICE-lite connection is disconnected once
    /// no connectivity check arrived for 15 s, and nothing else would notice that the
    /// broadcaster is gone.
    pub(super) fn broadcaster_ice(&mut self, id: ParticipantId, state: IceConnectionState) {
        if state != IceConnectionState::Disconnected || !self.broadcasters.contains(&id) {
            return;
        }
        let Some(conn) = self.peers.get_mut(&id).and_then(|p| p.publish.as_mut()) else {
            return;
        };
        if !conn.dead {
            conn.dead = true;
            info!(%id, "broadcaster's connection timed out");
            self.outputs.push_back(Output::MediaFailed(id));
        }
    }
}
