//! Mixpanel's Raw Event Export (JSON Lines) and Engage profile pages: the wire format
//! knowledge shared by the connector, which lands them in `raw.mixpanel_export` and
//! `raw.mixpanel_engage`, and by the local server, which renders the simulated world in it.
//!
//! Parsing is lossless (each event's whole `properties` object and each profile's whole
//! `$properties` are kept as JSON text) and all-or-nothing: a body cut short in transit fails
//! as retryable so partial data is never landed.

mod connector;
mod engage;
mod export;
mod wire;

pub use connector::MixpanelConnector;
pub use engage::{ENGAGE_STREAM, EngagePage, parse_engage_page};
pub use export::{EXPORT_STREAM, ExportOptions, parse_export};
pub use wire::{
    project_time_to_utc_ms, utc_ms_to_project_time, write_json_str, write_micros_decimal,
};
