//! One user's life: install, onboarding path, daily activity, purchases, and what each
//! source records of it (Mixpanel events and profile, AppsFlyer install and in-app events,
//! the paying channel's delivery numbers), with dirty rows injected at the configured rates
//! and labelled.

use rand::Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::SimError;
use super::columns::{AfEventCols, DirtyCols, EventCols, InstallCols, ProfileCols, TruthUserCols};
use super::fx::{FxSeries, TIER_USD, tier_price_micros, to_usd_micros};
use super::plan::{Campaign, ENGAGEMENT_SHAPE, PLANTED_PATHS, Quality};
use super::sink::TableSink;
use super::{HORIZONS, ids};
use crate::config::SimRates;
use crate::lake::Lake;

pub const DAY_MS: i64 = 86_400_000;

/// Installs in one fraud burst: drawn uniformly from this range.
pub const BURST_SIZE: std::ops::Range<u32> = 25..41;
/// Mean of [`BURST_SIZE`].
pub const BURST_MEAN: f64 = 32.5;

/// Row ids of garbled resends start here, apart from every other row's: the other rows are
/// numbered the same whatever the `malformed_event` rate. 2^62 rather than 2^63 keeps the ids
/// within a signed 64-bit integer (a Polars integer literal, a MySQL `BIGINT`).
pub const GARBLED_ROW_BASE: u64 = 1 << 62;

/// How a garbled resend (`[sim.rates] malformed_event`) is broken on the wire. The world
/// keeps the original send's values and names the kind in `sim.events.malformed`; the local
/// Mixpanel server breaks the line as it renders it, the way a buggy client or proxy would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garble {
    /// `time` sent as a word (`"yesterday"`): the connector cannot read the event's time.
    TimeText,
    /// `revenue` sent as a word (`"lots"`), on a purchase or added to any other event.
    RevenueText,
    /// The purchase's revenue negated.
    RevenueNegative,
    /// The purchase in `XXX` (ISO 4217's "no currency"), which no FX table prices.
    CurrencyUnknown,
}

impl Garble {
    pub const ALL: [Garble; 4] = [
        Garble::TimeText,
        Garble::RevenueText,
        Garble::RevenueNegative,
        Garble::CurrencyUnknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Garble::TimeText => "time_text",
            Garble::RevenueText => "revenue_text",
            Garble::RevenueNegative => "revenue_negative",
            Garble::CurrencyUnknown => "currency_unknown",
        }
    }

    /// The kind named by [`Garble::label`].
    pub fn from_label(label: &str) -> Option<Garble> {
        Garble::ALL.into_iter().find(|g| g.label() == label)
    }

    /// Whether the kind only makes sense for an event that carries revenue.
    pub fn needs_revenue(self) -> bool {
        matches!(self, Garble::RevenueNegative | Garble::CurrencyUnknown)
    }

    /// The kind of a resend from its hash: any of the four for an event with revenue, a
    /// broken time or a word for revenue otherwise.
    fn pick(hash: u64, has_revenue: bool) -> Garble {
        let kinds = if has_revenue { 4 } else { 2 };
        Garble::ALL[(hash % kinds) as usize]
    }
}

/// The hashes below which a send gets a garbled resend: a share `rate` of all 64-bit values.
pub fn garble_threshold(rate: f64) -> u64 {
    // `as` saturates: a rate of 1 or more selects every send.
    (rate.max(0.0) * 18_446_744_073_709_551_616.0) as u64
}

/// One Mixpanel send's values, which its resends repeat.
struct Send {
    name: &'static str,
    login: Option<u64>,
    insert_id: u64,
    revenue: Option<i64>,
    currency: Option<&'static str>,
}

/// A resend of a [`Send`]: when, how it is broken (if it is), and its `truth.dirty_rows`
/// label.
struct Resend {
    day: i64,
    t: i64,
    garbled: Option<Garble>,
    label: &'static str,
    /// Whether the send lost its user id, which the resend then lacks too.
    dropped_login: bool,
}

/// Why a user is in the data although no campaign's real value should count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    QaDevice,
    QaAccount,
    TestCampaign,
    InternalBuild,
}

impl TestKind {
    pub fn label(self) -> &'static str {
        match self {
            TestKind::QaDevice => "qa_device",
            TestKind::QaAccount => "qa_account",
            TestKind::TestCampaign => "test_campaign",
            TestKind::InternalBuild => "internal_build",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FraudKind {
    P360Blocked,
    P360Detection,
    ClickInjection,
    ClickFlooding,
    Burst,
    NoActivity,
}

impl FraudKind {
    pub fn label(self) -> &'static str {
        match self {
            FraudKind::P360Blocked => "p360_blocked",
            FraudKind::P360Detection => "p360_detection",
            FraudKind::ClickInjection => "click_injection",
            FraudKind::ClickFlooding => "click_flooding",
            FraudKind::Burst => "burst",
            FraudKind::NoActivity => "no_activity",
        }
    }

    /// Fake devices (bots and farms) open the app at most once; stolen-attribution fraud
    /// (click injection and flooding) hijacks real organic users, who then live normally.
    fn is_bot(self) -> bool {
        matches!(
            self,
            FraudKind::P360Blocked | FraudKind::P360Detection | FraudKind::Burst
        )
    }

    /// Draws a fraud kind for a paid install, or none, at the configured rates. A burst
    /// is drawn once for a whole farm of [`BURST_MEAN`] installs on average, so bursts too
    /// make up their configured share of paid installs.
    pub fn draw(rates: &SimRates, rng: &mut Xoshiro256PlusPlus) -> Option<FraudKind> {
        let mut u: f64 = rng.random();
        for (rate, kind) in [
            (rates.fraud_p360_blocked, FraudKind::P360Blocked),
            (rates.fraud_p360_detection, FraudKind::P360Detection),
            (rates.fraud_click_injection, FraudKind::ClickInjection),
            (rates.fraud_click_flooding, FraudKind::ClickFlooding),
            (rates.fraud_burst / BURST_MEAN, FraudKind::Burst),
            (rates.fraud_no_activity, FraudKind::NoActivity),
        ] {
            if u < rate {
                return Some(kind);
            }
            u -= rate;
        }
        None
    }
}

/// Everything decided about an install before its life is lived.
pub struct Install<'a> {
    pub user_id: u64,
    /// World day of the install (days since the world's first day).
    pub day: u32,
    pub install_ms: i64,
    pub click_ms: Option<i64>,
    pub campaign: Option<&'a Campaign>,
    pub ad_index: usize,
    pub quality: &'a Quality,
    pub platform: &'static str,
    pub country: &'static str,
    pub currency: &'static str,
    pub device_id: u64,
    pub advertising_id: Option<String>,
    pub appsflyer_id: String,
    pub ip: String,
    pub app_version: &'static str,
    pub test: Option<TestKind>,
    pub fraud: Option<FraudKind>,
}

/// What the ad-delivery aggregation needs to know of a paid install's purchases.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conversions {
    /// Purchases within 1, 7 and 28 days of the click, and view-through within 1 day.
    pub purchases: [i64; 4],
    /// Their value in US dollar micros.
    pub value_usd_micros: [i64; 4],
}

/// Per-cohort generator state: the row counters of every table and the cohort's RNG.
pub struct Life<'w> {
    pub rates: &'w SimRates,
    pub fx: &'w FxSeries,
    /// World day after which rows are the future: lived (for the truth) but not written.
    pub last_day: u32,
    pub start_ms: i64,
    pub next_event_row: u64,
    pub next_af_row: u64,
    pub next_insert_id: u64,
    /// Garbled resends so far: the next one's row id is [`GARBLED_ROW_BASE`] plus this.
    pub next_garbled_row: u64,
    /// Mixed into each send's `$insert_id` to decide its garbled resend, so that which sends
    /// get one differs between seeds.
    pub garble_salt: u64,
    /// [`garble_threshold`] of the `malformed_event` rate.
    pub garble_below: u64,
}

/// Where a cohort's rows go: the streaming sinks of every table the users write to.
/// Dirty-row labels of all tables share one sink, partitioned by the dirty row's day.
pub struct Sinks {
    pub events: TableSink<EventCols>,
    pub af_events: TableSink<AfEventCols>,
    pub profiles: TableSink<ProfileCols>,
    pub installs: TableSink<InstallCols>,
    pub dirty: TableSink<DirtyCols>,
    pub truth: TableSink<TruthUserCols>,
}

impl Sinks {
    /// Writes out buffers that grew too large.
    pub async fn settle(&mut self, lake: &Lake) -> Result<(), SimError> {
        self.events.settle(lake).await?;
        self.af_events.settle(lake).await?;
        self.profiles.settle(lake).await?;
        self.installs.settle(lake).await?;
        self.dirty.settle(lake).await?;
        self.truth.settle(lake).await
    }

    /// Commits every table's partition of world day `day`: no later cohort writes into it.
    pub async fn complete(&mut self, lake: &Lake, day: i64) -> Result<(), SimError> {
        self.events.complete_through(lake, day, day).await?;
        self.af_events.complete_through(lake, day, day).await?;
        self.profiles.complete_through(lake, day, day).await?;
        self.installs.complete_through(lake, day, day).await?;
        self.dirty.complete_through(lake, day, day).await?;
        self.truth.complete_through(lake, day, day).await
    }
}

const EXTRA_ACTIONS: [(&str, f64); 4] = [
    ("level_up", 0.3),
    ("view_item", 0.35),
    ("ad_impression", 0.25),
    ("share", 0.1),
];
/// Chance of a second purchase on a day with a purchase.
const SECOND_PURCHASE: f64 = 0.1;
/// Spread of purchase amounts around the campaign's median (log scale).
const PURCHASE_SIGMA: f64 = 0.9;
const SIGN_UP_RATE: f64 = 0.55;
const TUTORIAL_BEGIN_RATE: f64 = 0.92;

impl Life<'_> {
    /// Lives one install's whole life (up to `horizon` days) and appends its rows.
    pub fn live(
        &mut self,
        inst: &Install<'_>,
        horizon: u32,
        rng: &mut Xoshiro256PlusPlus,
        rows: &mut Sinks,
        conversions: &mut Conversions,
    ) {
        let engagement = Gamma::new(ENGAGEMENT_SHAPE, 1.0 / ENGAGEMENT_SHAPE)
            .map(|g| g.sample(rng))
            .unwrap_or(1.0);
        let mut state = UserState {
            login_id: None,
            realised: [0; 4],
        };
        let bot = inst.fraud.is_some_and(FraudKind::is_bot);
        let silent = inst.fraud == Some(FraudKind::NoActivity);
        let mut walked = false;
        let mut payer_probability = 0.0;
        if bot {
            if rng.random_bool(0.7) {
                self.event(
                    inst,
                    &mut state,
                    inst.install_ms + 1_000,
                    "app_open",
                    None,
                    rng,
                    rows,
                );
            }
            if inst.fraud == Some(FraudKind::P360Detection) {
                self.fake_inapp_purchases(inst, rng, rows);
            }
        } else if !silent {
            let q = inst.quality;
            let t = self.onboarding(inst, &mut state, engagement, rng, rows);
            walked = t.walked;
            payer_probability = payer_probability_of(q, walked);
            let payer = rng.random_bool(payer_probability);
            let median = q.purchase_median_usd;
            // Day 0 continues after onboarding; later days are active by hazard.
            // Past the world's last day only purchases matter (for the realised truth).
            let last_world_k = i64::from(self.last_day) - i64::from(inst.day) + 1;
            for k in 0..horizon {
                if !payer && i64::from(k) > last_world_k {
                    break;
                }
                if k > 0 {
                    let h = q.hazard.get(k as usize).copied().unwrap_or(0.0);
                    if !rng.random_bool(1.0 - (-engagement * h).exp()) {
                        continue;
                    }
                }
                let day_start = if k == 0 {
                    t.end_ms
                } else {
                    let jitter = rng.random_range(-6 * 3_600_000..6 * 3_600_000);
                    (inst.install_ms + i64::from(k) * DAY_MS + jitter).max(t.end_ms)
                };
                let sessions = 1 + Poisson::new(0.6 * engagement)
                    .map(|p| p.sample(rng) as u32)
                    .unwrap_or(0)
                    .min(4);
                let mut time = day_start;
                for s in 0..sessions {
                    if k > 0 || s > 0 {
                        self.event(inst, &mut state, time, "app_open", None, rng, rows);
                    }
                    let actions = 1 + Poisson::new(1.5).map(|p| p.sample(rng) as u32).unwrap_or(0);
                    for _ in 0..actions {
                        time += rng.random_range(30_000..300_000);
                        let name = pick(&EXTRA_ACTIONS, rng);
                        self.event(inst, &mut state, time, name, None, rng, rows);
                    }
                    if s == 0 && payer && rng.random_bool(q.purchase_rate) {
                        let buys = if rng.random_bool(SECOND_PURCHASE) {
                            2
                        } else {
                            1
                        };
                        for _ in 0..buys {
                            time += rng.random_range(20_000..120_000);
                            self.event(inst, &mut state, time, "add_to_cart", None, rng, rows);
                            time += rng.random_range(10_000..90_000);
                            self.purchase(inst, &mut state, time, median, rng, rows, conversions);
                        }
                    }
                    time += rng.random_range(600_000..4 * 3_600_000);
                }
            }
        }
        let expected = if bot || silent {
            [0; 4]
        } else {
            expected_revenue(inst.quality, engagement, payer_probability)
        };
        let truth = rows.truth.day(i64::from(inst.day));
        truth.user_id.push(inst.user_id);
        truth.channel.push(
            inst.campaign
                .map_or(super::plan::ORGANIC, |c| c.channel.key),
        );
        truth
            .campaign_id
            .push(inst.campaign.map(|c| c.campaign_id.clone()));
        truth.ad_id.push(
            inst.campaign
                .and_then(|c| c.ads.get(inst.ad_index))
                .map(|a| a.ad_id.clone()),
        );
        truth.platform.push(inst.platform);
        truth.country.push(inst.country);
        truth.local_currency.push(inst.currency);
        truth.is_test.push(inst.test.is_some());
        truth.test_kind.push(inst.test.map(TestKind::label));
        truth.fraud_kind.push(inst.fraud.map(FraudKind::label));
        truth.engagement.push(engagement);
        truth.payer_probability.push(payer_probability);
        truth.walked_planted_path.push(walked);
        truth.currency.push("USD");
        let [e7, e30, e90, e180] = expected;
        truth.expected_revenue_d7_micros.push(e7);
        truth.expected_revenue_d30_micros.push(e30);
        truth.expected_revenue_d90_micros.push(e90);
        truth.expected_revenue_d180_micros.push(e180);
        let [r7, r30, r90, r180] = state.realised;
        truth.revenue_d7_micros.push(r7);
        truth.revenue_d30_micros.push(r30);
        truth.revenue_d90_micros.push(r90);
        truth.revenue_d180_micros.push(r180);
    }

    /// The install day's first session: the path every new user walks some way along.
    fn onboarding(
        &mut self,
        inst: &Install<'_>,
        state: &mut UserState,
        engagement: f64,
        rng: &mut Xoshiro256PlusPlus,
        rows: &mut Sinks,
    ) -> Onboarding {
        let q = inst.quality;
        let mut t = inst.install_ms + rng.random_range(1_000..5_000);
        self.event(inst, state, t, "app_open", None, rng, rows);
        let mut tutorial_done = false;
        let mut walked = false;
        if rng.random_bool(TUTORIAL_BEGIN_RATE) {
            t += rng.random_range(5_000..40_000);
            self.event(inst, state, t, "tutorial_begin", None, rng, rows);
            if rng.random_bool(scaled(q.tutorial_rate, engagement)) {
                t += rng.random_range(60_000..400_000);
                self.event(inst, state, t, "tutorial_complete", None, rng, rows);
                tutorial_done = true;
            }
        }
        let must_sign_up = inst.test == Some(TestKind::QaAccount);
        if must_sign_up || rng.random_bool(SIGN_UP_RATE) {
            t += rng.random_range(20_000..200_000);
            self.sign_up(inst, state, t, rng, rows);
        }
        let levels = Poisson::new(0.5 + 1.5 * engagement)
            .map(|p| p.sample(rng) as u32)
            .unwrap_or(0)
            .min(8);
        for _ in 0..levels {
            t += rng.random_range(60_000..900_000);
            self.event(inst, state, t, "level_up", None, rng, rows);
        }
        if tutorial_done && rng.random_bool(scaled(q.guild_rate, engagement)) {
            t += rng.random_range(60_000..1_800_000);
            self.event(inst, state, t, "join_guild", None, rng, rows);
            walked = true;
        }
        Onboarding { end_ms: t, walked }
    }

    fn sign_up(
        &mut self,
        inst: &Install<'_>,
        state: &mut UserState,
        t: i64,
        rng: &mut Xoshiro256PlusPlus,
        rows: &mut Sinks,
    ) {
        let login = inst.user_id;
        state.login_id = Some(login);
        self.event(inst, state, t, "sign_up", None, rng, rows);
        let day = self.day_of(t);
        if day <= i64::from(self.last_day) {
            let (email, name) = if inst.test == Some(TestKind::QaAccount) {
                (
                    format!("qa+{login}@example-corp.com"),
                    format!("QA Tester {}", login % 1000),
                )
            } else {
                let domain = match inst.country {
                    "KR" => "naver.com",
                    "JP" => "yahoo.co.jp",
                    _ => "gmail.com",
                };
                (
                    format!("player{login}@{domain}"),
                    format!(
                        "{} {}",
                        NAMES[(login % NAMES.len() as u64) as usize],
                        login % 997
                    ),
                )
            };
            let p = rows.profiles.day(day);
            p.user_id.push(inst.user_id);
            p.login_id.push(login);
            p.device_id.push(inst.device_id);
            p.appsflyer_id.push(inst.appsflyer_id.clone());
            p.advertising_id.push(inst.advertising_id.clone());
            p.email.push(email);
            p.name.push(name);
            p.platform.push(inst.platform);
            p.country.push(inst.country);
            p.created_at.push(t);
        }
        self.af_event(
            inst,
            state,
            t,
            "af_complete_registration",
            None,
            None,
            rng,
            rows,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn purchase(
        &mut self,
        inst: &Install<'_>,
        state: &mut UserState,
        t: i64,
        median_usd: f64,
        rng: &mut Xoshiro256PlusPlus,
        rows: &mut Sinks,
        conversions: &mut Conversions,
    ) {
        let usd = LogNormal::new(median_usd.ln(), PURCHASE_SIGMA)
            .map(|d| d.sample(rng))
            .unwrap_or(median_usd);
        let tier = nearest_tier(usd);
        let price = tier_price_micros(inst.currency, tier);
        let day = self.day_of(t);
        let usd_micros = to_usd_micros(
            price,
            self.fx.usd_per_unit(day.max(0) as usize, inst.currency),
        );
        let since_install = t - inst.install_ms;
        for (i, h) in HORIZONS.iter().enumerate() {
            if since_install < i64::from(*h) * DAY_MS {
                state.realised[i] += usd_micros;
            }
        }
        if let Some(click) = inst.click_ms {
            let since_click = t - click;
            for (i, window_days) in [1, 7, 28].iter().enumerate() {
                if since_click < window_days * DAY_MS {
                    conversions.purchases[i] += 1;
                    conversions.value_usd_micros[i] += usd_micros;
                }
            }
            if since_click < DAY_MS && rng.random_bool(0.3) {
                conversions.purchases[3] += 1;
                conversions.value_usd_micros[3] += usd_micros;
            }
        }
        self.event(inst, state, t, "purchase", Some(price), rng, rows);
        self.af_event(inst, state, t, "af_purchase", Some(price), None, rng, rows);
    }

    /// In-app fraud of flagged devices: purchases AppsFlyer saw but the app never did.
    fn fake_inapp_purchases(
        &mut self,
        inst: &Install<'_>,
        rng: &mut Xoshiro256PlusPlus,
        rows: &mut Sinks,
    ) {
        let state = UserState {
            login_id: None,
            realised: [0; 4],
        };
        for _ in 0..rng.random_range(1..=3) {
            let t = inst.install_ms + rng.random_range(60_000..2 * DAY_MS);
            let price = tier_price_micros(inst.currency, rng.random_range(0..3));
            self.af_event(
                inst,
                &state,
                t,
                "af_purchase",
                Some(price),
                Some("post_inapp"),
                rng,
                rows,
            );
        }
    }

    /// Appends one Mixpanel event (and perhaps its duplicate and its garbled resend) if it
    /// lies in the world.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        inst: &Install<'_>,
        state: &mut UserState,
        t: i64,
        name: &'static str,
        revenue: Option<i64>,
        rng: &mut Xoshiro256PlusPlus,
        rows: &mut Sinks,
    ) {
        let day = self.day_of(t);
        if day > i64::from(self.last_day) {
            return;
        }
        let insert_id = ids::mix(self.next_insert_id ^ 0xA5A5_5A5A_0F0F_F0F0);
        self.next_insert_id += 1;
        let mut login = state.login_id;
        let dropped_login = login.is_some() && rng.random_bool(self.rates.missing_user_id);
        if dropped_login {
            login = None;
        }
        let send = Send {
            name,
            login,
            insert_id,
            revenue,
            currency: revenue.map(|_| inst.currency),
        };
        let row = self.push_event(rows.events.day(day), inst, t, &send, None);
        if dropped_login {
            rows.dirty
                .day(day)
                .push("sim.events", row, "missing_user_id");
        }
        if rng.random_bool(self.rates.duplicate_event) {
            // A resend: same $insert_id, same or a slightly later time on the same day.
            let dup_t = if rng.random_bool(0.6) {
                t
            } else {
                let end_of_day = self.start_ms + (day + 1) * DAY_MS - 1;
                (t + rng.random_range(1_000..600_000)).min(end_of_day)
            };
            let resend = Resend {
                day,
                t: dup_t,
                garbled: None,
                label: "duplicate_event",
                dropped_login,
            };
            self.resend(rows, inst, &send, resend);
        }
        // A garbled resend: the same send again at the same time, broken on the wire. Decided
        // by a hash of the send rather than by `rng`, and numbered apart (see `push_event`),
        // so that the rest of the world is row for row the same at any rate.
        let hash = ids::mix(insert_id ^ self.garble_salt);
        if hash < self.garble_below {
            let resend = Resend {
                day,
                t,
                garbled: Some(Garble::pick(hash, revenue.is_some())),
                label: "malformed_event",
                dropped_login,
            };
            self.resend(rows, inst, &send, resend);
        }
    }

    /// Appends a resend of `send` and labels it in `truth.dirty_rows` (and as missing its
    /// user id where the send lost it).
    fn resend(&mut self, rows: &mut Sinks, inst: &Install<'_>, send: &Send, resend: Resend) {
        let row = self.push_event(
            rows.events.day(resend.day),
            inst,
            resend.t,
            send,
            resend.garbled,
        );
        let dirty = rows.dirty.day(resend.day);
        dirty.push("sim.events", row, resend.label);
        if resend.dropped_login {
            dirty.push("sim.events", row, "missing_user_id");
        }
    }

    fn push_event(
        &mut self,
        cols: &mut EventCols,
        inst: &Install<'_>,
        t: i64,
        send: &Send,
        garbled: Option<Garble>,
    ) -> u64 {
        // Garbled resends count apart: adding them must not renumber any other row.
        let row = if garbled.is_some() {
            let row = GARBLED_ROW_BASE + self.next_garbled_row;
            self.next_garbled_row += 1;
            row
        } else {
            let row = self.next_event_row;
            self.next_event_row += 1;
            row
        };
        cols.row_id.push(row);
        cols.user_id.push(inst.user_id);
        cols.time.push(t);
        cols.event.push(send.name);
        cols.device_id.push(inst.device_id);
        cols.login_id.push(send.login);
        cols.insert_id.push(send.insert_id);
        cols.platform.push(inst.platform);
        cols.country.push(inst.country);
        cols.revenue_micros.push(send.revenue);
        cols.currency.push(send.currency);
        cols.malformed.push(garbled.map(Garble::label));
        row
    }

    #[allow(clippy::too_many_arguments)]
    fn af_event(
        &mut self,
        inst: &Install<'_>,
        state: &UserState,
        t: i64,
        name: &'static str,
        revenue: Option<i64>,
        fraud: Option<&'static str>,
        rng: &mut Xoshiro256PlusPlus,
        rows: &mut Sinks,
    ) {
        let day = self.day_of(t);
        if day > i64::from(self.last_day) {
            return;
        }
        let row = self.next_af_row;
        self.next_af_row += 1;
        let drop_adid = inst.advertising_id.is_some() && rng.random_bool(self.rates.missing_adid);
        let cols = rows.af_events.day(day);
        cols.row_id.push(row);
        cols.user_id.push(inst.user_id);
        cols.appsflyer_id.push(inst.appsflyer_id.clone());
        cols.advertising_id.push(if drop_adid {
            None
        } else {
            inst.advertising_id.clone()
        });
        cols.customer_user_id
            .push(state.login_id.map(ids::customer_user_id));
        cols.event_time.push(t);
        cols.event_name.push(name);
        cols.revenue_micros.push(revenue);
        cols.currency.push(revenue.map(|_| inst.currency));
        cols.af_fraud_report.push(fraud);
        if drop_adid {
            rows.dirty
                .day(day)
                .push("sim.af_events", row, "missing_adid");
        }
    }

    /// World day of a timestamp (UTC days since the world's first day).
    pub fn day_of(&self, t: i64) -> i64 {
        (t - self.start_ms).div_euclid(DAY_MS)
    }
}

struct UserState {
    login_id: Option<u64>,
    /// Realised revenue at each horizon, US dollar micros.
    realised: [i64; 4],
}

struct Onboarding {
    end_ms: i64,
    walked: bool,
}

/// Chance that a user of this quality and engagement walks the planted path on the
/// install day (tutorial begun, finished, then a guild joined).
pub fn walk_probability(q: &Quality, engagement: f64) -> f64 {
    TUTORIAL_BEGIN_RATE * scaled(q.tutorial_rate, engagement) * scaled(q.guild_rate, engagement)
}

/// Payer chance of a user, with the planted path's lift if they walked it.
pub fn payer_probability_of(q: &Quality, walked: bool) -> f64 {
    let lift = if walked {
        PLANTED_PATHS[0].payer_lift
    } else {
        1.0
    };
    (q.base_payer_rate * lift).min(0.95)
}

/// A chance that grows with engagement: `1 - (1 - p)^e`.
fn scaled(p: f64, engagement: f64) -> f64 {
    (1.0 - (1.0 - p).powf(engagement)).clamp(0.0, 1.0)
}

fn pick(options: &[(&'static str, f64)], rng: &mut Xoshiro256PlusPlus) -> &'static str {
    let mut u: f64 = rng.random();
    for (name, p) in options {
        if u < *p {
            return name;
        }
        u -= p;
    }
    options.last().map_or("app_open", |(n, _)| n)
}

fn nearest_tier(usd: f64) -> usize {
    let l = usd.ln();
    let mut best = 0;
    for (i, t) in TIER_USD.iter().enumerate() {
        if (t.ln() - l).abs() < (TIER_USD[best].ln() - l).abs() {
            best = i;
        }
    }
    best
}

/// Mean purchase value in US dollars for a log-normal amount snapped to the price tiers.
pub fn expected_purchase_usd(median_usd: f64) -> f64 {
    let mu = median_usd.ln();
    let logs: Vec<f64> = TIER_USD.iter().map(|t| t.ln()).collect();
    let mut total = 0.0;
    for (i, t) in TIER_USD.iter().enumerate() {
        let lo = if i == 0 {
            f64::NEG_INFINITY
        } else {
            (logs[i - 1] + logs[i]) / 2.0
        };
        let hi = if i + 1 == logs.len() {
            f64::INFINITY
        } else {
            (logs[i] + logs[i + 1]) / 2.0
        };
        let p = normal_cdf((hi - mu) / PURCHASE_SIGMA) - normal_cdf((lo - mu) / PURCHASE_SIGMA);
        total += p * t;
    }
    total
}

/// True expected revenue (US dollar micros) at each horizon for a user of this quality,
/// engagement and payer chance, at nominal exchange rates.
pub fn expected_revenue(q: &Quality, engagement: f64, payer_probability: f64) -> [i64; 4] {
    let per_active_day = payer_probability
        * q.purchase_rate
        * (1.0 + SECOND_PURCHASE)
        * q.mean_purchase_usd
        * 1_000_000.0;
    std::array::from_fn(|h| (per_active_day * q.active_days.at(h, engagement)).round() as i64)
}

/// Standard normal CDF via erfc (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
fn normal_cdf(x: f64) -> f64 {
    if x == f64::INFINITY {
        return 1.0;
    }
    if x == f64::NEG_INFINITY {
        return 0.0;
    }
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

const NAMES: [&str; 12] = [
    "Minjun", "Seoyeon", "Jiho", "Haruto", "Yui", "Emma", "Liam", "Olivia", "Doyun", "Sakura",
    "Noah", "Jiwoo",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975_002_1).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }

    #[test]
    fn garbled_kinds_have_labels_and_a_share_of_hashes() {
        for g in Garble::ALL {
            assert_eq!(Garble::from_label(g.label()), Some(g));
        }
        assert_eq!(Garble::from_label("duplicate"), None);
        // Without revenue only the kinds that need none.
        for h in 0..64 {
            assert!(!Garble::pick(h, false).needs_revenue());
        }
        let picked: std::collections::HashSet<&str> =
            (0..64).map(|h| Garble::pick(h, true).label()).collect();
        assert_eq!(picked.len(), 4);
        assert_eq!(garble_threshold(0.0), 0);
        assert_eq!(garble_threshold(0.5), 1 << 63);
        assert_eq!(garble_threshold(1.0), u64::MAX);
        // The share of well-mixed hashes under the threshold is the rate.
        let below = garble_threshold(0.002);
        let hits = (0..1_000_000u64).filter(|i| ids::mix(*i) < below).count();
        assert!((1_800..2_200).contains(&hits), "{hits}");
    }

    #[test]
    fn expected_purchase_lies_between_the_tiers() {
        let e = expected_purchase_usd(5.0);
        assert!(e > 0.99 && e < 99.99, "{e}");
        assert!(expected_purchase_usd(20.0) > e);
    }
}
