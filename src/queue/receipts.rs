//! The acknowledgements an index node holds: one per delivered message whose records are in
//! its memtables but not yet in registered files.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::message::{AckKind, Acker};
use tokio_util::sync::CancellationToken;

/// Held acknowledgements by stream sequence. Cheap to clone.
///
/// A message is acknowledged only once its files are registered ([`Receipts::settle`]), so a
/// node that dies holding some loses nothing: JetStream gives them to another node after the
/// consumer's ack wait. Meanwhile [`Receipts::keep_alive`] tells JetStream every third of
/// that wait that they are still being worked on, so a flush slower than the wait does not
/// hand them to a second node.
#[derive(Clone, Default)]
pub struct Receipts {
    held: Arc<Mutex<BTreeMap<u64, Arc<Acker>>>>,
}

impl Receipts {
    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Acker>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `acker` for message `seq`; `false` if it is already held (a redelivery of a
    /// message this node is working on), in which case the caller skips the message.
    pub fn hold(&self, seq: u64, acker: Acker) -> bool {
        let mut held = self.held();
        if held.contains_key(&seq) {
            return false;
        }
        held.insert(seq, Arc::new(acker));
        true
    }

    /// Acknowledges the messages `seqs` (their files are registered) and forgets them. An
    /// acknowledgement that does not arrive only means a redelivery, which the metastore's
    /// record of indexed sequences turns away.
    pub async fn settle(&self, seqs: &[u64]) {
        let ackers: Vec<Arc<Acker>> = {
            let mut held = self.held();
            seqs.iter().filter_map(|s| held.remove(s)).collect()
        };
        for acker in ackers {
            if let Err(e) = acker.ack().await {
                tracing::warn!("could not acknowledge a queue message (it will be redelivered and skipped): {e}");
            }
        }
    }

    /// Marks every held message in progress every `every` until `stop`.
    pub async fn keep_alive(self, every: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let held: Vec<Arc<Acker>> = self.held().values().cloned().collect();
            for acker in held {
                let _ = acker.ack_with(AckKind::Progress).await;
            }
        }
    }
}
