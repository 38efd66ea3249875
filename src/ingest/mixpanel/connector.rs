//! The Mixpanel connector: one export call per project day (`GET /api/2.0/export`, JSON Lines,
//! gzip), and the Engage profiles as a daily snapshot paged by `session_id` + `page`. Both
//! share the project's query budget (60 per hour, 3 per second), so they share one scope.

use async_trait::async_trait;
use chrono::NaiveDate;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, HeaderMap};

use super::{ENGAGE_STREAM, EXPORT_STREAM, ExportOptions, parse_engage_page, parse_export};
use crate::config::{MixpanelSource, Secret, SourceKind};
use crate::ingest::connector::{
    Connector, Cursor, PlannedCalls, PullContext, PullError, Pulled, StreamSpec, fetch_parsed,
    fetch_parsed_blocking, partition_label,
};
use crate::ingest::http::{Verdict, default_verdict, snippet};
use crate::ingest::state::StreamState;
use crate::schema::SchemaError;

/// Profiles per Engage page; Mixpanel's page size.
const ENGAGE_PAGE_SIZE: u64 = 1000;

/// Mixpanel's export and Engage APIs for one project.
#[derive(Debug)]
pub struct MixpanelConnector {
    export_url: String,
    engage_url: String,
    project_id: u64,
    user: Secret,
    secret: Secret,
    options: ExportOptions,
    /// `Accept-Encoding` of export calls: gzip over a network, where a day of events is
    /// hundreds of megabytes; `identity` from a server on this machine (the local simulated
    /// one), where compressing and inflating would only burn the CPU both ends share.
    export_encoding: &'static str,
    streams: Vec<StreamSpec>,
}

impl MixpanelConnector {
    /// `base_url` is the export host (`https://data.mixpanel.com`, or the local server's
    /// `/mixpanel`); Engage is served by the matching query host (`mixpanel.com`), which for
    /// any other base is the base itself.
    pub fn new(
        settings: &MixpanelSource,
        base_url: &str,
        user: Secret,
        secret: Secret,
    ) -> Result<Self, SchemaError> {
        let base = base_url.trim_end_matches('/');
        Ok(MixpanelConnector {
            export_url: format!("{base}/api/2.0/export"),
            engage_url: format!("{}/api/2.0/engage", query_host(base)),
            project_id: settings.project_id,
            user,
            secret,
            options: ExportOptions {
                time_in_ms: settings.time_in_ms,
                project_timezone: settings.project_timezone,
            },
            export_encoding: if is_loopback(base) {
                "identity"
            } else {
                "gzip"
            },
            streams: vec![
                StreamSpec::new(EXPORT_STREAM, "raw.mixpanel_export", Cursor::ReportDay)?,
                StreamSpec::new(ENGAGE_STREAM, "raw.mixpanel_engage", Cursor::Snapshot)?,
            ],
        })
    }

    async fn pull_export(
        &self,
        ctx: &PullContext<'_>,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        let partition = partition_label(day);
        let mut query = vec![
            ("project_id", self.project_id.to_string()),
            ("from_date", day.to_string()),
            ("to_date", day.to_string()),
        ];
        if self.options.time_in_ms {
            query.push(("time_in_ms", "true".into()));
        }
        let (options, pulled_at) = (self.options, ctx.pulled_at);
        let (frame, calls, retries) = fetch_parsed_blocking(
            ctx,
            SCOPE,
            || {
                ctx.client
                    .get(self.export_url.clone())
                    .query(&query)
                    .basic_auth(self.user.expose(), Some(self.secret.expose()))
                    .header(ACCEPT_ENCODING, self.export_encoding)
            },
            verdict,
            move |body| parse_export(body, &options, pulled_at, &partition),
        )
        .await?;
        Ok(Pulled {
            frames: vec![frame],
            calls,
            retries,
        })
    }

    /// Every profile, page by page. A failed page fails the snapshot: a partial list of
    /// profiles would look like users who vanished.
    async fn pull_engage(
        &self,
        ctx: &PullContext<'_>,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        let partition = partition_label(day);
        let mut pulled = Pulled::default();
        let mut page: u64 = 0;
        let mut session: Option<String> = None;
        loop {
            let mut form = vec![
                ("project_id", self.project_id.to_string()),
                ("page_size", ENGAGE_PAGE_SIZE.to_string()),
            ];
            if let Some(s) = &session {
                form.push(("session_id", s.clone()));
                form.push(("page", page.to_string()));
            }
            let (answer, calls, retries) = fetch_parsed(
                ctx,
                SCOPE,
                || {
                    ctx.client
                        .post(self.engage_url.clone())
                        .form(&form)
                        .basic_auth(self.user.expose(), Some(self.secret.expose()))
                },
                verdict,
                |body| parse_engage_page(body, ctx.pulled_at, &partition),
            )
            .await?;
            pulled.calls += calls;
            pulled.retries += retries;
            if answer.page != page {
                return Err(PullError::Source {
                    stream: ENGAGE_STREAM.into(),
                    partition,
                    message: format!(
                        "asked for page {page}, Mixpanel answered page {}",
                        answer.page
                    ),
                });
            }
            let last = answer.is_last();
            if answer.frame.height() > 0 {
                pulled.frames.push(answer.frame);
            }
            if last {
                return Ok(pulled);
            }
            if answer.session_id.is_empty() {
                return Err(PullError::Source {
                    stream: ENGAGE_STREAM.into(),
                    partition,
                    message: format!("page {page} is full but carries no session_id to page on"),
                });
            }
            session = Some(answer.session_id);
            page += 1;
        }
    }
}

/// Whether `base` names this machine (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The budget scope: Mixpanel's limits are per project, over export and query calls alike.
const SCOPE: &str = "mixpanel";

/// The Engage (query API) host for an export host: `data.mixpanel.com` → `mixpanel.com`,
/// `data-eu.mixpanel.com` → `eu.mixpanel.com`, `data-in.mixpanel.com` → `in.mixpanel.com`.
fn query_host(export_base: &str) -> String {
    for (data, query) in [
        ("://data.mixpanel.com", "://mixpanel.com"),
        ("://data-eu.mixpanel.com", "://eu.mixpanel.com"),
        ("://data-in.mixpanel.com", "://in.mixpanel.com"),
    ] {
        if export_base.contains(data) {
            return export_base.replacen(data, query, 1);
        }
    }
    export_base.to_string()
}

/// Mixpanel's answers: 429 (with a JSON error) is its rate limit; the rest as usual.
fn verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Verdict {
    match default_verdict(status, headers, body) {
        Verdict::Retry { after, .. } if status == StatusCode::TOO_MANY_REQUESTS => Verdict::Retry {
            after,
            reason: format!("HTTP 429 rate limited: {}", snippet(body)),
        },
        v => v,
    }
}

#[async_trait]
impl Connector for MixpanelConnector {
    fn source(&self) -> SourceKind {
        SourceKind::Mixpanel
    }

    fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    fn plan(
        &self,
        stream: &StreamSpec,
        _day: NaiveDate,
        history: &StreamState,
    ) -> Vec<PlannedCalls> {
        let calls = if stream.name == ENGAGE_STREAM {
            // One page per 1,000 profiles of the last snapshot, plus the empty last page.
            let last = history
                .partitions
                .values()
                .next_back()
                .map_or(0, |p| p.rows);
            u32::try_from(last / ENGAGE_PAGE_SIZE + 1).unwrap_or(u32::MAX)
        } else {
            1
        };
        vec![PlannedCalls {
            scope: SCOPE.into(),
            calls,
        }]
    }

    async fn pull(
        &self,
        ctx: &PullContext<'_>,
        stream: &StreamSpec,
        day: NaiveDate,
    ) -> Result<Pulled, PullError> {
        if stream.name == ENGAGE_STREAM {
            self.pull_engage(ctx, day).await
        } else {
            self.pull_export(ctx, day).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_compressed_except_from_this_machine() {
        assert!(is_loopback("http://127.0.0.1:4000/mixpanel"));
        assert!(is_loopback("http://localhost:4000"));
        assert!(is_loopback("http://[::1]:4000"));
        assert!(!is_loopback("https://data.mixpanel.com"));
        assert!(!is_loopback("https://data-eu.mixpanel.com"));
        assert!(!is_loopback("not a url"));
    }

    #[test]
    fn engage_lives_on_the_query_host_of_the_export_host() {
        assert_eq!(
            query_host("https://data.mixpanel.com"),
            "https://mixpanel.com"
        );
        assert_eq!(
            query_host("https://data-eu.mixpanel.com"),
            "https://eu.mixpanel.com"
        );
        assert_eq!(
            query_host("http://127.0.0.1:9/mixpanel"),
            "http://127.0.0.1:9/mixpanel"
        );
    }
}
