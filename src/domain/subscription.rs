//! One `apisubscription` row, parsed once into a value the rest of rowhook
//! can trust.
//!
//! The database layer hands over a [`SubscriptionRow`] exactly as stored
//! (text and numbers, zero dates included). [`SubscriptionRow::parse`] turns
//! it into a [`Subscription`] — or says, in one sentence, why it cannot. The
//! tick logs that sentence once and skips the row; other rows go on.
//!
//! Parse, don't validate: a [`Subscription`] holds an `Endpoint` (an
//! http/https URL), a `CustomerKey` (a valid header value, redacted in
//! `Debug`), a `WorkstationFilter`, a `WatchTarget`, a `Duration` and parsed
//! times, and a [`SubscriptionError`] names the column that failed, so no
//! later code checks a raw column again.

use std::fmt;
use std::time::Duration;

use chrono::{Datelike, NaiveDateTime};
use reqwest::header::HeaderValue;
use url::Url;

use super::progress::StartText;
use super::watch_table::{WatchTableError, WatchTarget};

/// `apisubscription` as stored: Open Dental's columns, no interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub num: i64,
    pub endpoint_url: String,
    pub workstation: String,
    pub customer_key: String,
    pub watch_table: String,
    pub polling_seconds: i64,
    pub ui_event_type: String,
    /// `DateTimeStart` as the server prints it (`CAST(... AS CHAR)`), so a
    /// zero date survives and the compare-and-set can use the exact value.
    pub date_time_start: String,
    pub date_time_stop: String,
}

/// `ApiSubscriptionNum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub i64);

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An `http`/`https` URL, kept exactly as stored (query string included).
/// Its `Display` hides any password in it.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint(Url);

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Self, SubscriptionError> {
        // U+FFFD is what the database layer leaves of bytes that were not
        // UTF-8: sending patient rows to a guessed address is worse than not
        // sending them.
        if raw.contains(char::REPLACEMENT_CHARACTER) {
            return Err(SubscriptionError::NotText("EndPointUrl"));
        }
        let url = Url::parse(raw.trim()).map_err(|e| SubscriptionError::BadUrl(e.to_string()))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(Self(url)),
            "http" | "https" => Err(SubscriptionError::BadUrl("no host".into())),
            other => Err(SubscriptionError::BadScheme(other.to_owned())),
        }
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("REDACTED"));
        }
        f.write_str(shown.as_str())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

/// The integrator's key, sent as the raw `Authorization` header. Never
/// printed.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey(Option<HeaderValue>);

impl CustomerKey {
    fn parse(raw: &str) -> Result<Self, SubscriptionError> {
        if raw.is_empty() {
            return Ok(Self(None));
        }
        if raw.contains(char::REPLACEMENT_CHARACTER) {
            return Err(SubscriptionError::NotText("CustomerKey"));
        }
        let mut value =
            HeaderValue::from_str(raw).map_err(|_| SubscriptionError::BadCustomerKey)?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }

    pub fn header(&self) -> Option<&HeaderValue> {
        self.0.as_ref()
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "CustomerKey(REDACTED)"
        } else {
            "CustomerKey(none)"
        })
    }
}

/// Which agents may process a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkstationFilter {
    /// Blank `Workstation`: every agent fires (and duplicates, as in Open Dental).
    Any,
    Named(String),
}

impl WorkstationFilter {
    /// Open Dental compares lower-cased names.
    pub fn matches(&self, ours: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Named(name) => same_name(name, ours),
        }
    }
}

/// Two workstation names compared lower-cased, as Open Dental does, without
/// building the lower-cased strings (this runs for every row of every
/// tick).
fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// `DateTimeStop`: a year before 1880 means the subscription never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    At(NaiveDateTime),
}

/// A database-event subscription that rowhook can process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub endpoint: Endpoint,
    pub workstation: WorkstationFilter,
    pub customer_key: CustomerKey,
    pub target: WatchTarget,
    /// `PollingSeconds`. Negative is refused ([`SubscriptionError::NegativePolling`]);
    /// zero makes the subscription due on every tick (Open Dental's own due
    /// check, `now >= DateTimeStart + PollingSeconds`, with nothing added);
    /// a value so large that `DateTimeStart + PollingSeconds` cannot be
    /// represented is never due (`int`'s maximum, 68 years, is simply not
    /// due yet).
    pub polling: Duration,
    /// `DateTimeStart` as a time; zero and pre-1880 dates read as 0001-01-01.
    pub start: NaiveDateTime,
    /// `DateTimeStart` exactly as read, for the compare-and-set.
    pub start_raw: StartText,
    pub expiry: Expiry,
}

/// What a row turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Database(Box<Subscription>),
    /// Blank `WatchTable`: a UI event (`PatientSelected`), which only the
    /// Open Dental client can fire.
    UiEvent {
        ui_event_type: String,
    },
}

/// Why a row cannot be processed. Each message names the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("EndPointUrl is not a valid URL: {0}")]
    BadUrl(String),
    #[error("EndPointUrl scheme {0:?} is not http or https")]
    BadScheme(String),
    #[error("CustomerKey contains characters that cannot be sent in an HTTP header")]
    BadCustomerKey,
    /// The stored value held bytes that are not UTF-8 (possible in SQLite),
    /// which the database layer decoded as U+FFFD.
    #[error("{0} holds bytes that are not UTF-8 text")]
    NotText(&'static str),
    #[error("PollingSeconds is negative ({0})")]
    NegativePolling(i64),
    #[error("{column} {value:?} is not a date and time")]
    BadDate { column: &'static str, value: String },
    #[error(transparent)]
    WatchTable(#[from] WatchTableError),
}

impl SubscriptionRow {
    pub fn id(&self) -> SubscriptionId {
        SubscriptionId(self.num)
    }

    /// Which agents may process it, read even from a row that does not
    /// parse otherwise.
    fn workstation_filter(&self) -> WorkstationFilter {
        match self.workstation.trim() {
            "" => WorkstationFilter::Any,
            name => WorkstationFilter::Named(name.to_owned()),
        }
    }

    /// Whether the agent named `ours` may process it (the rule of
    /// [`WorkstationFilter::matches`], without building the filter).
    pub fn is_for(&self, ours: &str) -> bool {
        let named = self.workstation.trim();
        named.is_empty() || same_name(named, ours)
    }

    pub fn parse(&self) -> Result<Parsed, SubscriptionError> {
        let target = match WatchTarget::parse(&self.watch_table) {
            Err(WatchTableError::Blank) => {
                return Ok(Parsed::UiEvent {
                    ui_event_type: self.ui_event_type.clone(),
                })
            }
            other => other?,
        };
        if self.polling_seconds < 0 {
            return Err(SubscriptionError::NegativePolling(self.polling_seconds));
        }
        let workstation = self.workstation_filter();
        let stop = parse_od_datetime("DateTimeStop", &self.date_time_stop)?;
        Ok(Parsed::Database(Box::new(Subscription {
            id: self.id(),
            endpoint: Endpoint::parse(&self.endpoint_url)?,
            workstation,
            customer_key: CustomerKey::parse(&self.customer_key)?,
            target,
            polling: Duration::from_secs(self.polling_seconds.unsigned_abs()),
            start: parse_od_datetime("DateTimeStart", &self.date_time_start)?,
            start_raw: StartText::new(self.date_time_start.clone()),
            expiry: if stop.year() < 1880 {
                Expiry::Never
            } else {
                Expiry::At(stop)
            },
        })))
    }
}

impl Subscription {
    /// Expired once `DateTimeStop` is before the server's now.
    pub fn is_expired(&self, now: NaiveDateTime) -> bool {
        matches!(self.expiry, Expiry::At(stop) if stop < now)
    }

    /// Due when `now >= DateTimeStart + PollingSeconds`.
    pub fn is_due(&self, now: NaiveDateTime) -> bool {
        match chrono::Duration::from_std(self.polling) {
            Ok(polling) => self
                .start
                .checked_add_signed(polling)
                .is_some_and(|due| now >= due),
            Err(_) => false,
        }
    }
}

/// Parses a datetime as MySQL prints it. Zero dates (`0000-00-00 ...`) and
/// years before 1880 mean "unset" to Open Dental, which writes them as
/// 0001-01-01.
pub fn parse_od_datetime(
    column: &'static str,
    raw: &str,
) -> Result<NaiveDateTime, SubscriptionError> {
    let text = raw.trim();
    let text = text.split('.').next().unwrap_or(text); // drop fractional seconds
    if text.starts_with("0000-00-00") {
        return Ok(od_min_datetime());
    }
    match crate::domain::datetime::parse(text) {
        Ok(t) if t.year() < 1880 => Ok(od_min_datetime()),
        Ok(t) => Ok(t),
        Err(_) => Err(SubscriptionError::BadDate {
            column,
            value: raw.to_owned(),
        }),
    }
}

/// Open Dental's `DateTime.MinValue`: 0001-01-01 00:00:00.
pub fn od_min_datetime() -> NaiveDateTime {
    NaiveDateTime::MIN
        .with_year(1)
        .and_then(|t| t.with_month(1))
        .and_then(|t| t.with_day(1))
        .unwrap_or(NaiveDateTime::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> SubscriptionRow {
        SubscriptionRow {
            num: 7,
            endpoint_url: "https://crm.example/hooks/od?type=appt".into(),
            workstation: "OFFICE-SRV".into(),
            customer_key: "key123".into(),
            watch_table: "Appointment".into(),
            polling_seconds: 5,
            ui_event_type: String::new(),
            date_time_start: "2024-03-01 10:00:00".into(),
            date_time_stop: "0001-01-01 00:00:00".into(),
        }
    }

    fn parsed(r: &SubscriptionRow) -> Subscription {
        match r.parse() {
            Ok(Parsed::Database(s)) => *s,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, crate::domain::datetime::DATETIME_FORMAT).unwrap()
    }

    #[test]
    fn a_good_row_parses_and_keeps_its_url_exactly() {
        let s = parsed(&row());
        assert_eq!(
            s.endpoint.url().as_str(),
            "https://crm.example/hooks/od?type=appt"
        );
        assert_eq!(s.expiry, Expiry::Never);
        assert!(s.workstation.matches("office-srv"));
        assert!(!s.workstation.matches("front-desk"));
    }

    #[test]
    fn due_exactly_at_start_plus_polling() {
        let s = parsed(&row());
        assert!(!s.is_due(at("2024-03-01 10:00:04")));
        assert!(s.is_due(at("2024-03-01 10:00:05")));
    }

    #[test]
    fn expiry_uses_the_1880_rule() {
        let mut r = row();
        r.date_time_stop = "1800-01-01 00:00:00".into();
        assert_eq!(parsed(&r).expiry, Expiry::Never);
        r.date_time_stop = "2024-03-01 11:00:00".into();
        let s = parsed(&r);
        assert!(!s.is_expired(at("2024-03-01 11:00:00")));
        assert!(s.is_expired(at("2024-03-01 11:00:01")));
    }

    #[test]
    fn zero_start_reads_as_min_value() {
        let mut r = row();
        r.date_time_start = "0000-00-00 00:00:00".into();
        assert_eq!(parsed(&r).start, od_min_datetime());
    }

    #[test]
    fn bad_rows_say_why() {
        type Mutation = fn(&mut SubscriptionRow);
        let cases: Vec<(Mutation, &str)> = vec![
            (|r| r.endpoint_url = "ftp://x/y".into(), "scheme"),
            (|r| r.endpoint_url = "".into(), "not a valid URL"),
            (|r| r.polling_seconds = -1, "negative"),
            (|r| r.date_time_start = "yesterday".into(), "DateTimeStart"),
            (|r| r.customer_key = "a\nb".into(), "CustomerKey"),
            (|r| r.watch_table = "x;y".into(), "not a table name"),
            (|r| r.watch_table = "rowhook_secret".into(), "never watched"),
            (
                |r| r.endpoint_url = "https://crm.example/\u{FFFD}".into(),
                "EndPointUrl holds bytes",
            ),
            (
                |r| r.customer_key = "k\u{FFFD}".into(),
                "CustomerKey holds bytes",
            ),
        ];
        for (mutate, needle) in cases {
            let mut r = row();
            mutate(&mut r);
            let err = r.parse().unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn blank_watch_table_is_a_ui_event() {
        let mut r = row();
        r.watch_table = String::new();
        r.ui_event_type = "PatientSelected".into();
        assert_eq!(
            r.parse(),
            Ok(Parsed::UiEvent {
                ui_event_type: "PatientSelected".into()
            })
        );
    }

    #[test]
    fn credentials_in_urls_are_not_displayed() {
        let e = Endpoint::parse("https://user:hunter2@crm.example/x").unwrap();
        assert!(!e.to_string().contains("hunter2"));
        assert!(!format!("{:?}", CustomerKey::parse("key123").unwrap()).contains("key123"));
    }
}
