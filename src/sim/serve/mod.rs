//! Rendering the simulated world in each source's wire format, for the local API servers.

pub mod adison;
pub mod apple_search_ads;
pub mod appsflyer;
pub mod campaign_days;
pub mod google_ads;
pub mod meta;
pub mod mixpanel;
pub mod naver;
pub mod sheets;
