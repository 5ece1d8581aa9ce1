//! The server's lifecycle: one shutdown signal that every long-lived task watches, and
//! a tracker of those tasks so that shutting down can wait for them (the shape of
//! mini-redis's `server.rs`: each handler holds the shutdown signal and is counted until
//! it ends).
//!
//! Shutting down goes in this order (see [`crate::run`]): the listener stops accepting,
//! every participant's actor tells its client that the server is restarting and closes
//! its socket, the tracked tasks are awaited (at most [`SHUTDOWN_GRACE`]), the media
//! workers stop, and the database is closed.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The longest a graceful shutdown waits for participants' sockets and other tracked
/// tasks; the rest of the shutdown (workers, database) takes milliseconds.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// The shutdown signal and the tasks that must end before the server is down. Cheap to
/// clone; every clone sees the same signal.
#[derive(Clone, Default)]
pub struct Lifecycle {
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Lifecycle {
    /// A running lifecycle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown; idempotent.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// Whether shutting down has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Completes when shutting down starts.
    pub async fn shutting_down(&self) {
        self.shutdown.cancelled().await
    }

    /// `task`, counted until it ends: shutting down waits for it.
    pub fn track<F: Future>(&self, task: F) -> impl Future<Output = F::Output> {
        self.tasks.track_future(task)
    }

    /// Spawns `task`, counted until it ends.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Waits until every tracked task has ended, at most `grace`; true if they all did.
    pub async fn wait_for_tasks(&self, grace: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }

    /// Tracked tasks still running.
    pub fn running_tasks(&self) -> usize {
        self.tasks.len()
    }
}
