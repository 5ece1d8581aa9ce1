//! The signaling side of an engine: [`EngineHandle`] sends commands to the engine thread
//! (waking it through its `mio` waker) and awaits the replies; [`EngineEvent`]s come back
//! on each participant's own channel.

use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, Context};
use mio::{Poll, Waker};
use tokio::sync::{mpsc::UnboundedSender, oneshot};

use super::source::MediaProfile;
use super::{Engine, WAKER};
use crate::stats::EngineStats;

/// Which of a participant's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// Our media to the server.
    Publish,
    /// Everyone else's media from the server.
    Subscribe,
}

/// What the engine tells a participant's signaling task.
#[derive(Debug)]
pub enum EngineEvent {
    /// ICE and DTLS finished on this connection; media flows.
    Connected(Leg),
    /// The connection failed.
    Failed(Leg, String),
}

pub(super) type Reply<T> = oneshot::Sender<anyhow::Result<T>>;

pub(super) enum Command {
    Add {
        participant: u32,
        events: UnboundedSender<EngineEvent>,
    },
    PublishOffer {
        participant: u32,
        reply: Reply<String>,
    },
    PublishAnswer {
        participant: u32,
        sdp: String,
        reply: Reply<()>,
    },
    SubscribeOffer {
        participant: u32,
        sdp: String,
        new_connection: bool,
        reply: Reply<String>,
    },
    JoinRelay {
        participant: u32,
        relay: SocketAddr,
        room: String,
        publisher: bool,
        reply: Reply<()>,
    },
    Remove {
        participant: u32,
    },
    StartWindow,
    StopMedia,
    Collect {
        reply: oneshot::Sender<EngineStats>,
    },
}

/// Settings shared by every engine of a run.
#[derive(Clone)]
pub struct EngineConfig {
    /// Local address the connections bind to (their host candidate).
    pub bind_ip: IpAddr,
    /// What publishers send.
    pub profile: MediaProfile,
    /// Time zero for send timestamps; shared by all engines of the process.
    pub epoch: Instant,
    /// Participants watch a station: received packets are the station's own media,
    /// measured by their RTP headers ([`crate::station`]), not our payloads.
    pub station: bool,
}

/// The signaling side's handle on an engine thread.
pub struct EngineHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Starts engine thread number `index`.
    pub fn spawn(index: usize, config: EngineConfig) -> anyhow::Result<EngineHandle> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = mpsc::channel();
        let engine = Engine::new(poll, rx, config);
        let thread = std::thread::Builder::new()
            .name(format!("loadgen-media-{index}"))
            .spawn(move || engine.run())
            .context("starting a media engine thread")?;
        Ok(EngineHandle {
            commands: tx,
            waker,
            thread: Some(thread),
        })
    }

    fn send(&self, command: Command) -> anyhow::Result<()> {
        self.commands
            .send(command)
            .map_err(|_| anyhow!("media engine stopped"))?;
        // A failed wake only delays the command to the engine's next timer.
        let _ = self.waker.wake();
        Ok(())
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| anyhow!("media engine stopped"))?
    }

    /// Registers a participant; connection events go to `events`.
    pub fn add(&self, participant: u32, events: UnboundedSender<EngineEvent>) {
        let _ = self.send(Command::Add {
            participant,
            events,
        });
    }

    /// Creates the publish connection (sendonly audio and video) and returns its offer.
    pub async fn publish_offer(&self, participant: u32) -> anyhow::Result<String> {
        self.ask(|reply| Command::PublishOffer { participant, reply })
            .await
    }

    /// Applies the server's answer to the publish offer.
    pub async fn publish_answer(&self, participant: u32, sdp: String) -> anyhow::Result<()> {
        self.ask(|reply| Command::PublishAnswer {
            participant,
            sdp,
            reply,
        })
        .await
    }

    /// Applies an offer on the subscribe connection (creating it on the first, or
    /// replacing it when the offer is for a `new_connection`) and returns the answer.
    pub async fn subscribe_offer(
        &self,
        participant: u32,
        sdp: String,
        new_connection: bool,
    ) -> anyhow::Result<String> {
        self.ask(|reply| Command::SubscribeOffer {
            participant,
            sdp,
            new_connection,
            reply,
        })
        .await
    }

    /// Relay mode: opens a plain UDP socket registered with the relay in `room`.
    pub async fn join_relay(
        &self,
        participant: u32,
        relay: SocketAddr,
        room: String,
        publisher: bool,
    ) -> anyhow::Result<()> {
        self.ask(|reply| Command::JoinRelay {
            participant,
            relay,
            room,
            publisher,
            reply,
        })
        .await
    }

    /// Drops a participant's connections.
    pub fn remove(&self, participant: u32) {
        let _ = self.send(Command::Remove { participant });
    }

    /// Starts the measurement window: clears what was measured so far.
    pub fn start_window(&self) {
        let _ = self.send(Command::StartWindow);
    }

    /// Publishers stop sending; subscribers keep counting late arrivals.
    pub fn stop_media(&self) {
        let _ = self.send(Command::StopMedia);
    }

    /// Returns what was measured since [`EngineHandle::start_window`].
    pub async fn collect(&self) -> anyhow::Result<EngineStats> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Collect { reply: tx })?;
        rx.await.map_err(|_| anyhow!("media engine stopped"))
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        // Closing the channel stops the thread at its next wake-up.
        let (dead, _) = mpsc::channel();
        self.commands = dead;
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
