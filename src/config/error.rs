//! Errors from loading a pipeline config. Every message names the file (or `embedded demo`) and,
//! where it can, the key and line; none contains a credential value.

use std::fmt;
use std::path::PathBuf;

/// Why a pipeline config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read pipeline config {}: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or section, wrong type, or a value that does not parse
    /// (date, time zone, currency, regex, URL...). Line and column are 1-based.
    #[error("{origin}:{line}:{column}: {}{message}", key_prefix(key.as_deref()))]
    Parse {
        /// The file (or `embedded demo`).
        origin: String,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column (in characters) of the offending text.
        column: usize,
        /// The dotted key at that line, when it could be determined.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The file parsed but breaks one or more rules (ranges, cross-field checks, missing
    /// environment variables). All problems found are listed.
    #[error("{origin}: {}", render_problems(problems))]
    Invalid {
        /// The file (or `embedded demo`).
        origin: String,
        /// Each broken rule, with its key.
        problems: Vec<Problem>,
    },
    /// A credential's environment variable is unset or empty.
    #[error(
        "source {source_name}: environment variable {variable} is {} ({field})",
        if *empty { "empty" } else { "not set" }
    )]
    MissingEnv {
        /// The source (`meta`) or section (`mysql`) that needs it.
        source_name: String,
        /// The setting naming the variable (`access_token_env`).
        field: String,
        /// The variable's name (`META_ACCESS_TOKEN`).
        variable: String,
        /// True when set but empty.
        empty: bool,
    },
}

/// One broken rule: the dotted key it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `analysis.horizons` or `sources.meta.access_token_env`.
    pub key: String,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn key_prefix(key: Option<&str>) -> String {
    key.map(|k| format!("{k}: ")).unwrap_or_default()
}

fn render_problems(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut out = format!("{} problems:", many.len());
            for p in many {
                out.push_str("\n  - ");
                out.push_str(&p.to_string());
            }
            out
        }
    }
}

impl ConfigError {
    /// Turns a toml/serde error into [`ConfigError::Parse`], computing line and column from the
    /// span. The source line is deliberately not quoted (it might hold a pasted credential);
    /// only the key left of `=` is shown.
    pub(crate) fn from_toml(origin: &str, text: &str, err: &toml::de::Error) -> ConfigError {
        let offset = err.span().map(|s| s.start).unwrap_or(0).min(text.len());
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before
            .get(line_start..)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        ConfigError::Parse {
            origin: origin.to_owned(),
            line,
            column,
            key: key_at(text, line),
            message: err.message().trim().to_owned(),
        }
    }
}

/// Best-effort dotted key for `line` (1-based): the nearest `[table]` header above it plus the
/// bare key left of `=` on the line itself.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = line.checked_sub(1)?;
    let this = lines.get(idx)?.trim();
    let header = |l: &str| -> Option<String> {
        let l = l.trim();
        if l.starts_with('[') {
            let inner = l.trim_start_matches('[');
            let end = inner.find(']')?;
            inner.get(..end).map(|s| s.trim().to_owned())
        } else {
            None
        }
    };
    if let Some(h) = header(this) {
        return Some(h);
    }
    let (lhs, _) = this.split_once('=')?;
    let lhs = lhs.trim();
    if lhs.is_empty()
        || !lhs
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"'))
    {
        return None;
    }
    let table = lines.get(..idx)?.iter().rev().find_map(|l| header(l));
    Some(match table {
        Some(t) => format!("{t}.{lhs}"),
        None => lhs.to_owned(),
    })
}
