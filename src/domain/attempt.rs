//! One POST attempt as the delivery log (`rowhook_delivery`) keeps it: which
//! rows of which window, and how it ended. Payloads are not kept (they are
//! patient data); the window and the first and last key find the rows again.

use std::fmt;

use chrono::NaiveDateTime;

use super::progress::Window;
use super::subscription::SubscriptionId;

/// How an attempt ended, as stored in `rowhook_delivery.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// The receiver answered 200.
    Sent,
    /// Anything else; the batch is retried.
    Failed,
    /// A row too large for any request, passed over and reported.
    Skipped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
        }
    }

    /// The stored text back; anything unknown reads as a failure, the
    /// status an operator should look at.
    pub fn parse(text: &str) -> Self {
        match text {
            "SENT" => Self::Sent,
            "SKIPPED" => Self::Skipped,
            _ => Self::Failed,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt failed, in a word, for logs, the delivery log and alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// An HTTP reply other than 200.
    Non200,
    Timeout,
    /// The connection was refused.
    Refused,
    Dns,
    Tls,
    /// Another connection error.
    Connect,
    /// Any other request error.
    Request,
    /// The network policy refused the receiver's address.
    Blocked,
}

impl FailureClass {
    pub const ALL: [Self; 8] = [
        Self::Non200,
        Self::Timeout,
        Self::Refused,
        Self::Dns,
        Self::Tls,
        Self::Connect,
        Self::Request,
        Self::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Non200 => "non-200",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Connect => "connect",
            Self::Request => "request",
            Self::Blocked => "blocked",
        }
    }

    /// The stored name back; an unknown one reads as `request`.
    pub fn parse(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or(Self::Request)
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one attempt ended, with what the log keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Sent,
    Failed {
        class: FailureClass,
        http_status: Option<u16>,
        error: String,
    },
    Skipped {
        reason: String,
    },
}

/// The rows an attempt carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    pub first_key: Option<i64>,
    pub last_key: Option<i64>,
    pub rows: u32,
}

/// One POST attempt, as `rowhook_delivery` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub subscription: SubscriptionId,
    /// Empty for a skipped row, which was never sent.
    pub batch_id: String,
    pub watch_table: String,
    pub window_start: NaiveDateTime,
    pub window_stop: NaiveDateTime,
    pub first_key: Option<i64>,
    pub last_key: Option<i64>,
    pub rows: u32,
    /// Filled in when the record is written: 1 + earlier attempts of the
    /// same batch.
    pub attempt: u32,
    pub status: DeliveryStatus,
    pub http_status: Option<u16>,
    pub error_class: Option<FailureClass>,
    pub error: String,
    pub elapsed_ms: u64,
    pub attempted_at: NaiveDateTime,
}

/// Who made an attempt, on which window: the part of a record that is the
/// same for every attempt of a window.
#[derive(Debug, Clone, Copy)]
pub struct AttemptOf<'a> {
    pub subscription: SubscriptionId,
    pub watch_table: &'a str,
    pub window: Window,
}

impl DeliveryRecord {
    /// The one way an attempt becomes a record.
    pub fn new(
        of: AttemptOf<'_>,
        batch_id: String,
        carried: Carried,
        verdict: Verdict,
        elapsed_ms: u64,
        attempted_at: NaiveDateTime,
    ) -> Self {
        let (status, http_status, error_class, error) = match verdict {
            Verdict::Sent => (DeliveryStatus::Sent, Some(200), None, String::new()),
            Verdict::Failed {
                class,
                http_status,
                error,
            } => (DeliveryStatus::Failed, http_status, Some(class), error),
            Verdict::Skipped { reason } => (DeliveryStatus::Skipped, None, None, reason),
        };
        Self {
            subscription: of.subscription,
            batch_id,
            watch_table: of.watch_table.to_owned(),
            window_start: of.window.start,
            window_stop: of.window.stop,
            first_key: carried.first_key,
            last_key: carried.last_key,
            rows: carried.rows,
            attempt: 0,
            status,
            http_status,
            error_class,
            error,
            elapsed_ms,
            attempted_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_classes_read_back_as_written() {
        for status in [
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
            DeliveryStatus::Skipped,
        ] {
            assert_eq!(DeliveryStatus::parse(status.as_str()), status);
        }
        for class in FailureClass::ALL {
            assert_eq!(FailureClass::parse(class.as_str()), class);
        }
        assert_eq!(FailureClass::parse("gremlins"), FailureClass::Request);
        assert_eq!(DeliveryStatus::parse("?"), DeliveryStatus::Failed);
    }
}
