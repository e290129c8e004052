//! Noticing that the server's clock stepped back between two ticks.
//!
//! Change stamps come from the server's clock, and a window ends at a second
//! of that clock. If the clock steps back after a window has ended, rows
//! written after the step carry stamps the window has already passed. A step
//! large enough to put the clock behind `DateTimeStart` shows in the stamps
//! themselves ([`crate::window::plan`] rewinds such a window; [`super::rewinds`] moves
//! the progress records back), but a smaller
//! one — longer than the safety lag, shorter than about a second more — is
//! over by the next tick: the clock has caught up with `DateTimeStart`, and
//! the rows written meanwhile were silently behind it.
//!
//! So every tick compares the server's clock with this process's monotonic
//! clock, which no clock step moves. For each read, `offset` is the server's
//! time less the monotonic time the query was sent. The server reads its
//! clock after the query was sent, so the offset is the true one plus some
//! latency, never less: the smallest of the last few is the true offset, and
//! latency can only make a read look later, never earlier. An offset more
//! than [`STEP`] below that smallest one means the clock stepped back.
//!
//! A read delayed by latency can hide a step for one tick; the read after it
//! then shows it (against the delayed read's offset, if it was kept). Rows
//! written after the step carry stamps no earlier than the server's time of
//! the step, which is no earlier than the oldest kept read's monotonic time
//! in the new clock — hence where [`Step::rewind_to`] points.
//!
//! The last 8 reads are kept; a step of up to 40 ms can hide in latency for
//! good, and the safety lag covers it. Not seen: a step while rowhook is not
//! running (longer than its downtime), a step forward and back within 8
//! ticks, and SQLite's clock (read to the second; the demo's own machine).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Timelike};

/// How far below the smallest recent offset a read must fall to count as a
/// step. Latency cannot cause a false one; drift between two machines'
/// clocks (at most 0.5 ms/s) over [`KEPT`] reads cannot reach it. Steps up
/// to twice this may go unnoticed and must be covered by the safety lag.
pub const STEP: Duration = Duration::from_millis(20);

/// Reads kept to judge the next one by.
const KEPT: usize = 8;

/// A backward step of the server's clock, and where windows must restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// How far back, at least.
    pub back_by: Duration,
    /// No row written since the step has a stamp before this (the server's
    /// clock, UTC, a whole second; a second early for the stamps' rounding).
    pub rewind_to: NaiveDateTime,
}

/// Recent reads of the server's clock against the monotonic clock.
#[derive(Debug, Default)]
pub struct ClockWatch {
    /// (sent, offset in µs relative to the first read ever).
    reads: VecDeque<(Instant, i64)>,
    origin: Option<(Instant, NaiveDateTime)>,
}

impl ClockWatch {
    /// Takes one read: the query went out at `sent`, its answer came back at
    /// `received`, and the server's clock said `server`. Returns the step,
    /// if this read shows one.
    pub fn observe(
        &mut self,
        sent: Instant,
        received: Instant,
        server: NaiveDateTime,
    ) -> Option<Step> {
        let (origin_sent, origin_server) = *self.origin.get_or_insert((sent, server));
        let server_us = (server - origin_server).num_microseconds()?;
        let sent_us =
            i64::try_from(sent.saturating_duration_since(origin_sent).as_micros()).ok()?;
        let offset = server_us - sent_us;
        let lowest = self.reads.iter().map(|&(_, o)| o).min();
        let step = match (lowest, self.reads.front()) {
            (Some(lowest), Some(&(oldest, _))) if lowest - offset > micros(STEP) => {
                let since_oldest =
                    received.saturating_duration_since(oldest) + Duration::from_secs(1);
                let rewind_to = server - chrono::Duration::from_std(since_oldest).ok()?;
                Some(Step {
                    back_by: Duration::from_micros((lowest - offset).unsigned_abs()),
                    rewind_to: rewind_to.with_nanosecond(0)?,
                })
            }
            _ => None,
        };
        if step.is_some() {
            // Judged from here on against the new clock only.
            self.reads.clear();
        }
        if self.reads.len() == KEPT {
            self.reads.pop_front();
        }
        self.reads.push_back((sent, offset));
        step
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn after(t: NaiveDateTime, d: Duration) -> NaiveDateTime {
        t + chrono::Duration::from_std(d).unwrap()
    }

    /// Ticks a second apart; the server reads its clock `latency[i]` after
    /// each query is sent and answers as long again later; `clock[i]` is how
    /// far its clock is off at read `i` (negative: behind).
    fn run(latency: &[u64], clock: &[i64]) -> Vec<Option<Step>> {
        let base = Instant::now();
        let server0 = at("2026-12-01 10:00:00.000");
        let mut watch = ClockWatch::default();
        latency
            .iter()
            .zip(clock)
            .enumerate()
            .map(|(i, (&lat, &off))| {
                let sent = base + Duration::from_secs(i as u64);
                let read = after(server0, Duration::from_secs(i as u64) + ms(lat));
                let read = read + chrono::Duration::milliseconds(off);
                watch.observe(sent, sent + ms(2 * lat), read)
            })
            .collect()
    }

    #[test]
    fn latency_alone_is_never_a_step() {
        let steps = run(&[1, 40, 2, 300, 1, 0, 90, 1, 1, 1], &[0; 10]);
        assert!(steps.iter().all(Option::is_none), "{steps:?}");
    }

    #[test]
    fn a_step_back_is_seen_at_the_next_read_and_rewinds_before_it() {
        let steps = run(&[1; 6], &[0, 0, 0, -300, -300, -300]);
        assert_eq!(steps[..3], [None, None, None]);
        let step = steps[3].expect("seen at the first read after it");
        assert_eq!(step.back_by, ms(300));
        // The step happened after read 2 (10:00:02); rows written since
        // carry stamps from 10:00:01.7 on, in the new clock.
        assert!(step.rewind_to <= at("2026-12-01 10:00:01.700"), "{step:?}");
        assert_eq!(steps[4..], [None, None], "one step, said once");
    }

    #[test]
    fn a_step_hidden_by_a_slow_read_is_seen_at_the_next() {
        // Read 3 comes 290 ms late and hides all but 10 ms of a 300 ms step.
        let steps = run(&[1, 1, 1, 290, 1, 1], &[0, 0, 0, -300, -300, -300]);
        assert_eq!(steps[3], None);
        let step = steps[4].expect("seen one read later");
        assert!(step.back_by >= ms(280), "{step:?}");
        assert!(step.rewind_to <= at("2026-12-01 10:00:01.700"), "{step:?}");
    }

    #[test]
    fn small_drift_is_not_a_step_but_a_larger_jump_is() {
        let steps = run(&[1; 5], &[0, -2, -4, -6, -8]);
        assert!(steps.iter().all(Option::is_none), "{steps:?}");
        let steps = run(&[1; 3], &[0, 0, -25]);
        assert_eq!(steps[2].map(|s| s.back_by), Some(ms(25)));
    }

    #[test]
    fn a_step_forward_is_not_a_step_back() {
        let steps = run(&[1; 5], &[0, 0, 3_600_000, 3_600_000, 3_600_000]);
        assert!(steps.iter().all(Option::is_none), "{steps:?}");
    }
}
