//! Logging to stderr through `tracing`, as text for people or JSON lines for machines.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use super::{GlobalArgs, LogFormat};

/// Installs the global subscriber. `RUST_LOG` wins over -v/-q when set.
pub fn init_logging(global: &GlobalArgs) {
    let level = match (global.verbose, global.quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("ltv={level},warn")));
    // At -v and more, each closed span reports its busy and idle time: the cheapest profile
    // of where a stage spends its time.
    let spans = if global.verbose > 0 {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(std::io::stderr);
    match global.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
