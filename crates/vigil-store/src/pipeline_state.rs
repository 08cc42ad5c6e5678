//! The alert pipeline's saved state: one opaque JSON document in a singleton row. The
//! store keeps it and hands it back; decoding it (and deciding what to do when that fails)
//! is the server's job.

use chrono::{DateTime, Utc};

use crate::{Store, StoreError, ms};

/// The pipeline state as last saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedPipelineState {
    /// When it was saved (server clock).
    pub saved_at: DateTime<Utc>,
    /// The document, as given to [`Store::save_pipeline_state`].
    pub state: String,
}

impl Store {
    /// The pipeline state last saved, if any.
    pub async fn load_pipeline_state(&self) -> Result<Option<SavedPipelineState>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as("SELECT saved_at, state FROM pipeline_state WHERE id = 1")
            .fetch_optional(&self.inner.reader)
            .await
            .map_err(self.query_err("load pipeline state"))?;
        Ok(row.map(|(at, state)| SavedPipelineState {
            saved_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            state,
        }))
    }

    /// Replaces the saved pipeline state with `state`.
    pub async fn save_pipeline_state(&self, state: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pipeline_state (id, saved_at, state) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, state = excluded.state",
        )
        .bind(ms(at))
        .bind(state)
        .execute(&self.inner.writer)
        .await
        .map_err(self.query_err("save pipeline state"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saves_replaces_and_loads_one_document() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db")).await.unwrap();
        assert_eq!(store.load_pipeline_state().await.unwrap(), None);
        let t = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        store.save_pipeline_state("{\"a\":1}", t).await.unwrap();
        store.save_pipeline_state("{\"a\":2}", t + chrono::Duration::seconds(60)).await.unwrap();
        let got = store.load_pipeline_state().await.unwrap().unwrap();
        assert_eq!(got.state, "{\"a\":2}");
        assert_eq!(got.saved_at, t + chrono::Duration::seconds(60));
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM pipeline_state").fetch_one(&store.inner.reader).await.unwrap();
        assert_eq!(n, 1);
    }
}
