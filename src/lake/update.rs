//! Read-modify-write of a `_state/` document that several processes may update at once
//! (two `ltv recompute` jobs on one lake): a conditional put, never last-writer-wins.
//!
//! The put only succeeds if the document is still the version that was read (`If-Match` on
//! S3, the version check of the in-memory store) or, for a new document, still absent
//! (`If-None-Match: *`, an exclusive create on a local disk). A lost race reads again and
//! retries. A local folder cannot compare versions, so there the update holds a lock object
//! made by an exclusive create; a lock older than [`STALE_LOCK`] belonged to a process that
//! died and is broken.

use std::time::Duration;

use chrono::Utc;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Lake, LakeError};

/// Attempts before a contended update gives up.
const MAX_ATTEMPTS: u32 = 200;
/// A lock this old is a dead process's.
pub const STALE_LOCK: chrono::Duration = chrono::Duration::minutes(5);

impl Lake {
    /// Replaces `_state/<key>.json` with `change(current)` atomically with respect to other
    /// updaters: no update is lost when several processes update the key at once. Returns the
    /// value written.
    pub async fn update_state<T, F>(&self, key: &str, change: F) -> Result<T, LakeError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T,
    {
        let rel = format!("_state/{key}.json");
        let path = self.path(&rel);
        for attempt in 0..MAX_ATTEMPTS {
            let (current, version) = match self.store.get(&path).await {
                Ok(res) => {
                    let version = UpdateVersion {
                        e_tag: res.meta.e_tag.clone(),
                        version: res.meta.version.clone(),
                    };
                    let bytes = res
                        .bytes()
                        .await
                        .map_err(|e| self.store_error("read", &rel, e))?;
                    let value: T =
                        serde_json::from_slice(&bytes).map_err(|source| LakeError::BadState {
                            key: key.to_string(),
                            source,
                        })?;
                    (Some(value), Some(version))
                }
                Err(object_store::Error::NotFound { .. }) => (None, None),
                Err(e) => return Err(self.store_error("read", &rel, e)),
            };
            let next = change(current);
            let body = serde_json::to_vec_pretty(&next).map_err(|source| LakeError::BadState {
                key: key.to_string(),
                source,
            })?;
            let mode = match version {
                Some(v) => PutMode::Update(v),
                None => PutMode::Create,
            };
            match self
                .store
                .put_opts(&path, PutPayload::from(body), PutOptions::from(mode))
                .await
            {
                Ok(_) => return Ok(next),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {
                    tracing::debug!(key, attempt, "State changed under us; reading again.");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(object_store::Error::NotImplemented { .. }) => {
                    return self.update_state_locked(key, &change).await;
                }
                Err(e) => return Err(self.store_error("write", &rel, e)),
            }
        }
        Err(LakeError::Contended {
            key: key.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The update under a lock object, for stores that cannot compare versions.
    async fn update_state_locked<T, F>(&self, key: &str, change: &F) -> Result<T, LakeError>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T,
    {
        let lock_rel = format!("_state/{key}.lock");
        let lock = self.path(&lock_rel);
        for attempt in 0..MAX_ATTEMPTS {
            let stamp = Utc::now().to_rfc3339();
            match self
                .store
                .put_opts(
                    &lock,
                    PutPayload::from(stamp.into_bytes()),
                    PutOptions::from(PutMode::Create),
                )
                .await
            {
                Ok(_) => {
                    let result = async {
                        let current = self.read_state::<T>(key).await?;
                        let next = change(current);
                        self.write_state(key, &next).await?;
                        Ok(next)
                    }
                    .await;
                    // Release even when the update failed; a failed release leaves a lock
                    // that goes stale.
                    if let Err(e) = self.store.delete(&lock).await {
                        tracing::warn!(key, error = %e, "Could not release the state lock.");
                    }
                    return result;
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    if let Ok(meta) = self.store.head(&lock).await
                        && Utc::now() - meta.last_modified > STALE_LOCK
                    {
                        tracing::warn!(key, "Breaking a stale state lock.");
                        let _ = self.store.delete(&lock).await;
                        continue;
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(self.store_error("lock", &lock_rel, e)),
            }
        }
        Err(LakeError::Contended {
            key: key.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }
}

/// A short, growing, jittered pause between attempts.
fn backoff(attempt: u32) -> Duration {
    let base = 2u64.saturating_pow(attempt.min(6));
    let jitter = u64::from(Utc::now().timestamp_subsec_micros() % 7);
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn increments(lake: Lake) {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let lake = lake.clone();
                tokio::spawn(async move {
                    for _ in 0..25 {
                        lake.update_state::<u64, _>("counter", |c| c.unwrap_or(0) + 1)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(lake.read_state::<u64>("counter").await.unwrap(), Some(100));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_update_is_lost_in_memory() {
        increments(Lake::open("memory://").unwrap()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_update_is_lost_on_a_local_disk() {
        let dir = tempfile::tempdir().unwrap();
        increments(Lake::open(dir.path().to_str().unwrap()).unwrap()).await;
        assert!(!dir.path().join("_state/counter.lock").exists());
    }
}
