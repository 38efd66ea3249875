//! Small validated value types used by the pipeline configuration, and the serde helpers that
//! parse them from TOML (dates, time zones, currencies, regexes, URLs, object-store locations).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;
use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use url::Url;

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// Parses a calendar date written either as a string (`"2026-01-01"`) or as a bare TOML local
/// date (`2026-01-01`). Impossible dates such as `2026-02-30` are rejected.
pub(crate) fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|e| format!("invalid date `{text}` ({e}); expected YYYY-MM-DD, e.g. 2026-01-01"))
}

fn date_from_toml(value: toml::Value) -> Result<NaiveDate, String> {
    match value {
        toml::Value::String(s) => parse_date(&s),
        toml::Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
            (Some(d), None, None) => {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                    .ok_or_else(|| format!("invalid date `{dt}`: no such day in the calendar"))
            }
            _ => Err(format!(
                "expected a date like 2026-01-01, found date-time `{dt}`"
            )),
        },
        other => Err(format!(
            "expected a date like \"2026-01-01\", found {}",
            other.type_str()
        )),
    }
}

pub(crate) fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    date_from_toml(toml::Value::deserialize(d)?).map_err(de::Error::custom)
}

pub(crate) fn de_opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    de_date(d).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Time zones
// ---------------------------------------------------------------------------------------------

/// Parses an IANA time-zone name (`Asia/Seoul`, `UTC`).
pub(crate) fn parse_tz(text: &str) -> Result<Tz, String> {
    Tz::from_str(text).map_err(|_| {
        format!("unknown time zone `{text}`; use an IANA name such as Asia/Seoul, America/Los_Angeles or UTC")
    })
}

pub(crate) fn de_tz<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let s = String::deserialize(d)?;
    parse_tz(&s).map_err(de::Error::custom)
}

pub(crate) fn de_opt_tz<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
    de_tz(d).map(Some)
}

// ---------------------------------------------------------------------------------------------
// Currencies
// ---------------------------------------------------------------------------------------------

macro_rules! currencies {
    ($($code:ident = $minor:expr, $name:expr;)*) => {
        /// An ISO 4217 currency from the small list the pipeline knows how to convert.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Currency { $(#[doc = $name] $code,)* }

        impl Currency {
            /// Every known currency.
            pub const ALL: &'static [Currency] = &[$(Currency::$code,)*];

            /// The ISO 4217 alphabetic code, e.g. `"USD"`.
            pub fn code(self) -> &'static str {
                match self { $(Currency::$code => stringify!($code),)* }
            }

            /// Number of minor-unit digits (ISO 4217 exponent): 2 for USD, 0 for KRW and JPY.
            pub fn minor_units(self) -> u32 {
                match self { $(Currency::$code => $minor,)* }
            }
        }
    };
}

currencies! {
    USD = 2, "US dollar";
    KRW = 0, "South Korean won";
    JPY = 0, "Japanese yen";
    EUR = 2, "Euro";
    GBP = 2, "Pound sterling";
    CNY = 2, "Chinese yuan renminbi";
    TWD = 2, "New Taiwan dollar";
    HKD = 2, "Hong Kong dollar";
    SGD = 2, "Singapore dollar";
    THB = 2, "Thai baht";
    VND = 0, "Vietnamese dong";
    IDR = 2, "Indonesian rupiah";
    PHP = 2, "Philippine peso";
    MYR = 2, "Malaysian ringgit";
    INR = 2, "Indian rupee";
    AUD = 2, "Australian dollar";
    CAD = 2, "Canadian dollar";
    CHF = 2, "Swiss franc";
    BRL = 2, "Brazilian real";
    MXN = 2, "Mexican peso";
}

#[allow(clippy::derivable_impls)] // the enum is macro-generated
impl Default for Currency {
    fn default() -> Self {
        Currency::USD
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .iter()
            .copied()
            .find(|c| c.code() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Currency::ALL.iter().map(|c| c.code()).collect();
                format!(
                    "unknown currency `{s}`; expected an upper-case ISO 4217 code, one of: {}",
                    known.join(", ")
                )
            })
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Regex patterns
// ---------------------------------------------------------------------------------------------

/// A regular expression from the config, compiled once at load time. Keeps its source text
/// (`as_str`) so it can also be handed to Polars' `str().contains(..)`.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`; the error names the pattern.
    pub fn new(source: &str) -> Result<Pattern, String> {
        Regex::new(source)
            .map(|regex| Pattern {
                source: source.to_owned(),
                regex,
            })
            .map_err(|e| format!("invalid regex `{source}`: {e}"))
    }

    /// The pattern as written in the config (Rust `regex` syntax).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled expression.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP base URLs
// ---------------------------------------------------------------------------------------------

/// Parses an `http://` or `https://` base URL. URLs carrying a user name or password are
/// rejected without echoing them: credentials belong in environment variables.
pub(crate) fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid URL `{text}`: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "URL must not embed a user name or password (value not shown); \
                    put credentials in environment variables"
                .to_owned(),
        );
    }
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "URL `{text}` has scheme `{other}`; expected http or https"
        )),
    }
}

pub(crate) fn de_opt_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
    let s = String::deserialize(d)?;
    parse_http_url(&s).map(Some).map_err(de::Error::custom)
}

// ---------------------------------------------------------------------------------------------
// Object-store locations
// ---------------------------------------------------------------------------------------------

/// Where a set of files lives: the lake, or a partner's drop folder.
///
/// Written as a local path (`./lake`, relative to the process's working directory),
/// `file:///abs/path`, `s3://bucket/prefix` or `memory://` (an in-process store, for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A directory on the local file system.
    Local(PathBuf),
    /// An S3 bucket and key prefix (without leading or trailing `/`; may be empty).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket, without leading/trailing slashes.
        prefix: String,
    },
    /// An in-memory store that lives as long as the process.
    Memory,
}

impl FromStr for StoreLocation {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("location must not be empty".to_owned());
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(StoreLocation::Local(PathBuf::from(text)));
        };
        match scheme {
            "memory" => Ok(StoreLocation::Memory),
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(format!(
                        "`{text}` has no bucket; expected s3://bucket/prefix"
                    ));
                }
                Ok(StoreLocation::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                })
            }
            "file" => {
                let url =
                    Url::parse(text).map_err(|e| format!("invalid file URL `{text}`: {e}"))?;
                url.to_file_path()
                    .map(StoreLocation::Local)
                    .map_err(|()| format!("`{text}` is not an absolute file URL (file:///path)"))
            }
            other => Err(format!(
                "unsupported location scheme `{other}` in `{text}`; use a path, file://, s3:// or memory://"
            )),
        }
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Local(p) => write!(f, "{}", p.display()),
            StoreLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            StoreLocation::Memory => f.write_str("memory://"),
        }
    }
}

impl<'de> Deserialize<'de> for StoreLocation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

pub(crate) fn de_opt_store<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<StoreLocation>, D::Error> {
    StoreLocation::deserialize(d).map(Some)
}
