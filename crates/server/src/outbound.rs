//! A participant's outbound queue: what the registry, chat and the media workers send it,
//! waiting for its signaling actor to write it to the WebSocket.
//!
//! The queue is bounded and a send never waits: the senders hold the registry's lock or
//! are media worker threads, and one participant that does not read must not delay
//! anyone else. A send into a full queue drops the message and marks the participant as
//! unable to keep up; its actor then removes it (reason `timeout`, as for a participant
//! that went silent).

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{channel, Receiver, Sender};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::media::ToParticipant;

/// The sending side of a participant's queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound {
    tx: Sender<ToParticipant>,
    overflow: CancellationToken,
}

/// The actor's side: the queue, and the signal that it overflowed.
pub struct Inbox {
    /// Messages in the order they were sent.
    pub queue: Receiver<ToParticipant>,
    /// Cancelled when a send found the queue full.
    pub overflow: CancellationToken,
}

/// A queue holding at most `capacity` messages (at least 1).
pub fn queue(capacity: usize) -> (Outbound, Inbox) {
    let (tx, queue) = channel(capacity.max(1));
    let overflow = CancellationToken::new();
    let inbox = Inbox {
        queue,
        overflow: overflow.clone(),
    };
    (Outbound { tx, overflow }, inbox)
}

impl Outbound {
    /// Queues `msg` without waiting. A full queue drops it and marks the participant
    /// as unable to keep up; a closed one (the participant is gone) drops it silently.
    pub fn send(&self, msg: ToParticipant) {
        match self.tx.try_send(msg) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                if !self.overflow.is_cancelled() {
                    warn!(
                        capacity = self.tx.max_capacity(),
                        "outbound queue full: the participant does not keep up"
                    );
                    self.overflow.cancel();
                }
            }
        }
    }

    /// Queues a protocol message (see [`Outbound::send`]).
    pub fn message(&self, msg: lanmeet_proto::ServerMessage) {
        self.send(ToParticipant::Message(msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanmeet_proto::ServerMessage;

    #[test]
    fn a_full_queue_drops_and_signals_overflow_without_waiting() {
        let (out, mut inbox) = queue(2);
        for id in 0..5 {
            out.message(ServerMessage::Pong { id });
        }
        assert!(inbox.overflow.is_cancelled());
        let mut got = Vec::new();
        while let Ok(ToParticipant::Message(ServerMessage::Pong { id })) = inbox.queue.try_recv() {
            got.push(id);
        }
        assert_eq!(got, vec![0, 1]);
    }
}
