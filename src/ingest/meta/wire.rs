//! The small Graph API shapes besides insights rows: the error object every failed call
//! answers with, the report run a POST creates, and the run's status.

use serde::Deserialize;

/// `{"error": {message, type, code, error_subcode, fbtrace_id, is_transient}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    #[serde(default)]
    pub is_transient: bool,
    /// Shown to people in Ads Manager; often the clearer of the two messages.
    #[serde(default)]
    pub error_user_msg: Option<String>,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Graph error code {}", self.code)?;
        if let Some(sub) = self.error_subcode {
            write!(f, "/{sub}")?;
        }
        write!(f, " ({}): {}", self.kind, self.message)?;
        if let Some(m) = &self.error_user_msg {
            write!(f, " ({m})")?;
        }
        if let Some(t) = &self.fbtrace_id {
            write!(f, " [fbtrace_id {t}]")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: GraphError,
}

/// The Graph error of a body, when it is one.
pub fn parse_graph_error(body: &[u8]) -> Option<GraphError> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
}

/// `POST act_<id>/insights` answers `{"report_run_id": "..."}`.
pub fn parse_run_id(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Created {
        report_run_id: serde_json::Value,
    }
    let created: Created = serde_json::from_slice(body)
        .map_err(|e| format!("not a report run creation answer: {e}"))?;
    match created.report_run_id {
        serde_json::Value::String(s) if !s.is_empty() => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("report_run_id is {other}, not an id")),
    }
}

/// `GET <report_run_id>`: the run's progress.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReportRun {
    pub id: String,
    /// `Job Not Started`, `Job Started`, `Job Running`, `Job Completed`, `Job Failed`,
    /// `Job Skipped`.
    pub async_status: String,
    #[serde(default)]
    pub async_percent_completion: f64,
}

impl ReportRun {
    pub fn completed(&self) -> bool {
        self.async_status == "Job Completed"
    }

    /// A run that will never complete: start another.
    pub fn dead(&self) -> bool {
        matches!(self.async_status.as_str(), "Job Failed" | "Job Skipped")
    }
}

pub fn parse_report_run(body: &[u8]) -> Result<ReportRun, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a report run status: {e}"))
}
