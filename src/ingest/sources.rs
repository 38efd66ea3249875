//! Building the run's connectors from the pipeline config: each source's base URL (the real
//! API, or the local server for simulated sources), its credentials (read from the
//! environment variables the config names, never from the config itself), its budget and
//! its concurrency.

use chrono::NaiveDate;

use super::adison::{AdisonConnector, SIM_DROP_PREFIX};
use super::apple_search_ads::AppleSearchAdsConnector;
use super::appsflyer::AppsFlyerConnector;
use super::budget::SourceBudget;
use super::connector::Connector;
use super::google_ads::GoogleAdsConnector;
use super::http::RetryPolicy;
use super::meta::MetaConnector;
use super::mixpanel::MixpanelConnector;
use super::naver::NaverConnector;
use super::schedule::{
    Mode, PlanSettings, Progress, RunSummary, ScheduleError, Scheduler, SourceRun,
};
use super::sheets::SheetsConnector;
use crate::config::{
    ConfigError, PipelineConfig, Secret, SourceKind, SourceSettings, resolve_secret,
};
use crate::lake::{DateRange, Lake, LakeError};
use crate::schema::{Registry, SchemaError};
use crate::sim::server::{ServerOptions, SimServer, credentials};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("source {0} is not configured or not enabled in this pipeline")]
    NotEnabled(SourceKind),
    #[error(
        "simulated sources need the simulated world, but lake {lake} has none: run `ltv simulate` first"
    )]
    NoWorld { lake: String },
    #[error("cannot start the local API server for simulated sources")]
    Server(#[source] std::io::Error),
    #[error("cannot render the simulated Adison file")]
    SimDrop(#[from] crate::sim::serve::adison::AdisonServeError),
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Everything one ingest run needs.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub mode: Mode,
    /// Only this source (`--source`); all enabled sources when `None`.
    pub only: Option<SourceKind>,
    pub retry: RetryPolicy,
    /// How the local server behaves for simulated sources (tests inject faults here).
    pub local_server: ServerOptions,
}

impl IngestRequest {
    pub fn new(mode: Mode) -> Self {
        IngestRequest {
            mode,
            only: None,
            retry: RetryPolicy::default(),
            local_server: ServerOptions::default(),
        }
    }
}

/// Runs ingest for the config: starts the local server when a chosen source is simulated,
/// builds the connectors and schedules the pulls.
pub async fn run_ingest(
    config: &PipelineConfig,
    lake: &Lake,
    request: IngestRequest,
    env: &dyn Fn(&str) -> Option<String>,
    progress: &Progress,
) -> Result<RunSummary, IngestError> {
    let chosen: Vec<&dyn SourceSettings> = match request.only {
        Some(kind) => vec![
            config
                .sources
                .enabled()
                .into_iter()
                .find(|s| s.kind() == kind)
                .ok_or(IngestError::NotEnabled(kind))?,
        ],
        None => config.sources.enabled(),
    };
    let server = if chosen.iter().any(|s| s.is_simulated()) {
        Some(start_local_server(config, lake, request.local_server.clone()).await?)
    } else {
        None
    };
    // Timeouts are per source, set on each request.
    let client = reqwest::Client::builder()
        .build()
        .map_err(IngestError::Client)?;
    let mut runs = Vec::new();
    for settings in chosen {
        let Some(connector) = build_connector(config, lake, settings.kind(), server.as_ref(), env)?
        else {
            tracing::warn!(source = %settings.kind(), "No connector for this source yet; skipped.");
            continue;
        };
        runs.push(SourceRun {
            connector,
            budget: SourceBudget::load(lake, settings.kind().name(), settings.common().budget)
                .await?,
            concurrency: settings.common().concurrency.get() as usize,
            timeout: settings.common().timeout(),
        });
    }
    let scheduler = Scheduler {
        lake: lake.clone(),
        client,
        policy: request.retry,
        settings: PlanSettings {
            restatement_days: config.analysis.restatement_days,
            history_start: config.pipeline.history_start,
        },
    };
    Ok(scheduler.run(request.mode, &runs, progress).await?)
}

/// Starts the local server over the lake's simulated world.
async fn start_local_server(
    config: &PipelineConfig,
    lake: &Lake,
    mut options: ServerOptions,
) -> Result<SimServer, IngestError> {
    let events = Registry::embedded()?.get("sim.installs")?;
    if lake.partitions(events).await?.is_empty() {
        return Err(IngestError::NoWorld {
            lake: lake.url().to_string(),
        });
    }
    // The simulated project exports time the way the config says the project does.
    options.mixpanel_project_timezone = config
        .sources
        .mixpanel
        .as_ref()
        .and_then(|m| m.project_timezone);
    let server = SimServer::start(lake.clone(), options)
        .await
        .map_err(IngestError::Server)?;
    tracing::info!(url = %server.base_url, "Local API server serving the simulated world.");
    Ok(server)
}

/// A credential: from the environment for a real source, the local server's for a
/// simulated one.
fn secret(
    settings: &dyn SourceSettings,
    field: &str,
    env_name: &str,
    simulated: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, ConfigError> {
    if settings.is_simulated() {
        return Ok(Secret::new(simulated));
    }
    resolve_secret(settings.kind().name(), field, env_name, env)
}

/// The API root of a source: its `base_url`, or the local server's route for it.
fn base_url(settings: &dyn SourceSettings, server: Option<&SimServer>, route: &str) -> String {
    match (&settings.common().base_url, server) {
        (Some(url), _) => url.as_str().trim_end_matches('/').to_string(),
        (None, Some(server)) => server.url(route),
        // Validation only lets a source be simulated when the run starts the server.
        (None, None) => String::new(),
    }
}

/// The connector of one source, or `None` for a source that has none yet.
pub fn build_connector(
    config: &PipelineConfig,
    lake: &Lake,
    kind: SourceKind,
    server: Option<&SimServer>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Box<dyn Connector>>, IngestError> {
    let s = &config.sources;
    let connector: Box<dyn Connector> = match kind {
        SourceKind::Mixpanel => {
            let Some(m) = &s.mixpanel else {
                return Ok(None);
            };
            let user = secret(
                m,
                "service_account_user_env",
                &m.service_account_user_env,
                credentials::MIXPANEL_USER,
                env,
            )?;
            let pass = secret(
                m,
                "service_account_secret_env",
                &m.service_account_secret_env,
                credentials::MIXPANEL_SECRET,
                env,
            )?;
            Box::new(MixpanelConnector::new(
                m,
                &base_url(m, server, "mixpanel"),
                user,
                pass,
            )?)
        }
        SourceKind::AppsFlyer => {
            let Some(a) = &s.appsflyer else {
                return Ok(None);
            };
            let token = secret(
                a,
                "api_token_env",
                &a.api_token_env,
                credentials::APPSFLYER_TOKEN,
                env,
            )?;
            Box::new(AppsFlyerConnector::new(
                a,
                &base_url(a, server, "appsflyer"),
                token,
            )?)
        }
        SourceKind::GoogleSheets => {
            let Some(g) = &s.google_sheets else {
                return Ok(None);
            };
            let key = secret(
                g,
                "api_key_env",
                &g.api_key_env,
                credentials::SHEETS_API_KEY,
                env,
            )?;
            Box::new(SheetsConnector::new(
                g,
                &base_url(g, server, "sheets"),
                key,
            )?)
        }
        SourceKind::Adison => {
            let Some(a) = &s.adison else { return Ok(None) };
            match &a.drop_url {
                Some(location) => {
                    Box::new(AdisonConnector::new(a, Lake::open_location(location)?, "")?)
                }
                None => Box::new(AdisonConnector::new(a, lake.clone(), SIM_DROP_PREFIX)?),
            }
        }
        SourceKind::GoogleAds => {
            let Some(g) = &s.google_ads else {
                return Ok(None);
            };
            Box::new(GoogleAdsConnector::new(
                g,
                &base_url(g, server, "google_ads"),
                secret(
                    g,
                    "developer_token_env",
                    &g.developer_token_env,
                    credentials::GOOGLE_ADS_DEVELOPER_TOKEN,
                    env,
                )?,
                secret(
                    g,
                    "client_id_env",
                    &g.client_id_env,
                    credentials::GOOGLE_ADS_CLIENT_ID,
                    env,
                )?,
                secret(
                    g,
                    "client_secret_env",
                    &g.client_secret_env,
                    credentials::GOOGLE_ADS_CLIENT_SECRET,
                    env,
                )?,
                secret(
                    g,
                    "refresh_token_env",
                    &g.refresh_token_env,
                    credentials::GOOGLE_ADS_REFRESH_TOKEN,
                    env,
                )?,
            )?)
        }
        SourceKind::AppleSearchAds => {
            let Some(a) = &s.apple_search_ads else {
                return Ok(None);
            };
            Box::new(AppleSearchAdsConnector::new(
                a,
                &base_url(a, server, "apple_search_ads"),
                secret(
                    a,
                    "client_id_env",
                    &a.client_id_env,
                    credentials::APPLE_CLIENT_ID,
                    env,
                )?,
                secret(
                    a,
                    "team_id_env",
                    &a.team_id_env,
                    credentials::APPLE_TEAM_ID,
                    env,
                )?,
                secret(
                    a,
                    "key_id_env",
                    &a.key_id_env,
                    credentials::APPLE_KEY_ID,
                    env,
                )?,
                secret(
                    a,
                    "private_key_pem_env",
                    &a.private_key_pem_env,
                    credentials::APPLE_PRIVATE_KEY_PEM,
                    env,
                )?,
            )?)
        }
        SourceKind::Meta => {
            let Some(m) = &s.meta else { return Ok(None) };
            let token = secret(
                m,
                "access_token_env",
                &m.access_token_env,
                credentials::META_ACCESS_TOKEN,
                env,
            )?;
            Box::new(MetaConnector::new(m, &base_url(m, server, "meta"), token)?)
        }
        SourceKind::Naver => {
            let Some(n) = &s.naver else { return Ok(None) };
            let key = secret(
                n,
                "api_key_env",
                &n.api_key_env,
                credentials::NAVER_API_KEY,
                env,
            )?;
            let signing = secret(
                n,
                "secret_key_env",
                &n.secret_key_env,
                credentials::NAVER_SECRET_KEY,
                env,
            )?;
            Box::new(NaverConnector::new(
                n,
                &base_url(n, server, "naver"),
                key,
                signing,
            )?)
        }
    };
    Ok(Some(connector))
}

/// Drops the simulated world's Adison files where the simulated Adison source looks for them,
/// as the partner would: one file per day of the world.
pub async fn drop_simulated_adison_files(
    config: &PipelineConfig,
    lake: &Lake,
    days: DateRange,
) -> Result<u32, IngestError> {
    let Some(adison) = config
        .sources
        .adison
        .as_ref()
        .filter(|a| a.drop_url.is_none())
    else {
        return Ok(0);
    };
    let mut n = 0;
    for day in days.days() {
        let body = crate::sim::serve::adison::render_report(lake, day).await?;
        lake.write_object(
            &format!("{SIM_DROP_PREFIX}/{}", adison.file_name(day)),
            body,
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

/// The first and last day of the simulated world in the lake, if any.
pub async fn world_days(lake: &Lake) -> Result<Option<DateRange>, IngestError> {
    let table = Registry::embedded()?.get("sim.ad_daily")?;
    let days: Vec<NaiveDate> = lake.partitions(table).await?;
    Ok(match (days.first(), days.last()) {
        (Some(a), Some(b)) => Some(DateRange::new(*a, *b)),
        _ => None,
    })
}
