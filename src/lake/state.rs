//! Small JSON documents under `_state/` (ingest cursors, budget ledgers, run records),
//! each replaced with one atomic put.

use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Lake, LakeError};

const STATE_DIR: &str = "_state";

impl Lake {
    /// Reads `_state/<key>.json`; `None` when it was never written.
    pub async fn read_state<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, LakeError> {
        let rel = state_path(key);
        let Some(bytes) = self.get_optional(&rel).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| LakeError::BadState {
                key: key.to_string(),
                source,
            })
    }

    /// Replaces `_state/<key>.json` with one put: readers see the old or the new document,
    /// never a mix.
    pub async fn write_state<T: Serialize>(&self, key: &str, value: &T) -> Result<(), LakeError> {
        let rel = state_path(key);
        let body = serde_json::to_vec_pretty(value).map_err(|source| LakeError::BadState {
            key: key.to_string(),
            source,
        })?;
        self.store
            .put(&self.path(&rel), PutPayload::from(body))
            .await
            .map_err(|e| self.store_error("write", &rel, e))?;
        Ok(())
    }
}

fn state_path(key: &str) -> String {
    format!("{STATE_DIR}/{key}.json")
}

impl Lake {
    /// Reads any object under the lake's root (e.g. a partner's dropped file); `None` when
    /// there is no such object.
    pub async fn read_object(&self, relative: &str) -> Result<Option<bytes::Bytes>, LakeError> {
        self.get_optional(relative).await
    }

    /// Writes any object under the lake's root with one atomic put.
    pub async fn write_object(&self, relative: &str, body: Vec<u8>) -> Result<(), LakeError> {
        self.store
            .put(&self.path(relative), PutPayload::from(body))
            .await
            .map_err(|e| self.store_error("write", relative, e))?;
        Ok(())
    }

    /// Deletes any object under the lake's root; deleting one that is not there is not an
    /// error.
    pub async fn delete_object(&self, relative: &str) -> Result<(), LakeError> {
        match self.store.delete(&self.path(relative)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_error("delete", relative, e)),
        }
    }
}
