//! Rendering the simulated world in each source's wire format, for the local API servers.

pub mod adison;
pub mod appsflyer;
pub mod meta;
pub mod mixpanel;
pub mod naver;
pub mod sheets;
