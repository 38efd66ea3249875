//! Google Ads API: daily campaign metrics per customer through `googleAds:searchStream`, landed
//! in `raw.google_ads_campaign_daily`.
//!
//! One report day of one customer is one request: `POST /{version}/customers/{id}/
//! googleAds:searchStream` with a GAQL query over `campaign` segmented by `segments.date`,
//! selecting the customer's `currency_code` so every row carries the currency of its
//! `cost_micros`. The stream holds every row, so there is no paging. Requests carry the OAuth
//! access token (`Authorization: Bearer`), the `developer-token` header and, when the customer
//! is reached through a manager account, `login-customer-id`.
//!
//! The access token comes from Google's refresh-token grant (`POST
//! https://oauth2.googleapis.com/token` with the client id, client secret and refresh token).
//! When the API root is not `https://googleads.googleapis.com` (the local simulated server),
//! the token endpoint is `<api root>/token`, so one base URL points the connector at a whole
//! stand-in.

mod connector;
mod wire;

pub use connector::{API_ROOT, GoogleAdsConnector, TOKEN_URL, token_url_for};
pub use wire::{
    ApiError, FIELDS, LONGEST_WAIT, STREAM, TABLE, is_token_refusal, json_path,
    parse_search_stream, query, verdict,
};
