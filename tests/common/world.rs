//! A simulated world in a memory lake, pulled into the raw layer by the real connectors
//! through the local servers: the starting point of the tests of later stages.

use std::time::Duration;

use ltv::config::{PipelineConfig, std_env};
use ltv::ingest::http::RetryPolicy;
use ltv::ingest::schedule::{Mode, Progress};
use ltv::ingest::sources::{drop_simulated_adison_files, world_days};
use ltv::ingest::{IngestRequest, run_ingest};
use ltv::lake::{DateRange, Lake};

/// Simulates `config.sim` and ingests `range` of it; every stream must succeed.
pub async fn ingested_world(config: &PipelineConfig, range: DateRange) -> Lake {
    let lake = Lake::open("memory://").unwrap();
    ltv::sim::simulate(config.sim.as_ref().unwrap(), &lake)
        .await
        .unwrap();
    let days = world_days(&lake).await.unwrap().unwrap();
    drop_simulated_adison_files(config, &lake, days)
        .await
        .unwrap();
    let request = IngestRequest {
        retry: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..IngestRequest::new(Mode::Range {
            from: range.from,
            to: range.to,
            today: range.to + chrono::Duration::days(1),
        })
    };
    let summary = run_ingest(config, &lake, request, &std_env, &Progress::hidden())
        .await
        .unwrap();
    for (name, s) in &summary.streams {
        assert!(s.failure.is_none(), "{name}: {:?}", s.failure);
    }
    lake
}
