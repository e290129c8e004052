//! Where a page of rows becomes request bodies.
//!
//! A page is read several batches at a time (see [`crate::window::read_ahead`])
//! and cut here into consecutive batches of at most `--batch-size` rows whose
//! JSON body also stays within `--max-request-bytes`: a table with large
//! TEXT or BLOB columns can make even a batch bigger than any receiver
//! accepts. A single row that is larger than
//! that on its own can never be sent: it is set aside (`SKIPPED` in the
//! delivery log), reported with its key, and the rest of the window goes on
//! (raise the limit and `replay` to send it); one huge BLOB cannot stall a
//! subscription forever.
//!
//! A batch's id comes from its content: the first 16 bytes of SHA-256 over
//! the subscription, the table and each row's (stamp, key). A retry of the
//! same rows has the same id with no state to keep, and a batch that
//! differs by one row has another: a retry that finds more rows in the
//! window (the batch was not full) is a different batch, and says so.

use std::fmt::Write;

use bytes::Bytes;
use chrono::Timelike;
use sha2::{Digest, Sha256};

use crate::domain::datetime;

use crate::db::Page;
use crate::domain::progress::Cursor;
use crate::domain::subscription::SubscriptionId;

/// One request's worth of rows: their positions and the JSON array body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub keys: Vec<Cursor>,
    /// Shared, not copied, by every subscription sending the same page.
    pub body: Bytes,
}

/// A row too large to send on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    pub at: Cursor,
    pub bytes: usize,
}

/// What a page became, in row order: batches to send and rows set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Send(Batch),
    Skip(Oversized),
}

impl Batch {
    pub fn first(&self) -> Option<Cursor> {
        self.keys.first().copied()
    }

    pub fn last(&self) -> Option<Cursor> {
        self.keys.last().copied()
    }

    /// The batch's id: the same for a retry of the same rows (same keys,
    /// same stamps), different for any other rows. Receivers de-duplicate on
    /// it; it travels as `Rowhook-Batch-Id` and `webhook-id`.
    pub fn id(&self, subscription: SubscriptionId, table: &str) -> String {
        let mut hash = Sha256::new();
        hash.update(format!("{subscription}|{table}"));
        let mut entry = String::with_capacity(48);
        for at in &self.keys {
            // `|<stamp>#<key>`, the stamp as chrono displays it; whole
            // seconds (every stamp MySQL has) take the fast formatter.
            entry.clear();
            entry.push('|');
            match at.stamp.nanosecond() {
                0 => entry.push_str(&datetime::format(at.stamp)),
                _ => {
                    let _ = write!(entry, "{}", at.stamp);
                }
            }
            let _ = write!(entry, "#{}", at.key);
            hash.update(entry.as_bytes());
        }
        hash.finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Piece {
    /// The position after this piece: where the window stands once it is
    /// sent or set aside.
    pub fn last(&self) -> Option<Cursor> {
        match self {
            Self::Send(batch) => batch.last(),
            Self::Skip(oversized) => Some(oversized.at),
        }
    }
}

/// Cuts a page into batches of at most `rows` rows and `limit` body bytes,
/// keeping order.
pub fn split(page: &Page, rows: usize, limit: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut open = Open::at(0);
    for (i, (encoded, &at)) in page.rows.iter().zip(&page.keys).enumerate() {
        // "[" + row + "]" is the smallest body that holds it.
        if encoded.len() + 2 > limit {
            open.close(page, &mut pieces);
            pieces.push(Piece::Skip(Oversized {
                at,
                bytes: encoded.len() + 2,
            }));
            open = Open::at(i + 1);
            continue;
        }
        if !open.fits(encoded.len(), rows, limit) {
            open.close(page, &mut pieces);
            open = Open::at(i);
        }
        open.add(encoded.len());
    }
    open.close(page, &mut pieces);
    pieces
}

/// The rows `from..to` of a page that will make one batch, and the size of
/// their body: `[`, the rows with commas between them, `]`.
struct Open {
    from: usize,
    to: usize,
    bytes: usize,
}

impl Open {
    fn at(i: usize) -> Self {
        Self {
            from: i,
            to: i,
            bytes: 2,
        }
    }

    fn fits(&self, row: usize, rows: usize, limit: usize) -> bool {
        self.to - self.from < rows && self.bytes + usize::from(self.to > self.from) + row <= limit
    }

    fn add(&mut self, row: usize) {
        self.bytes += usize::from(self.to > self.from) + row;
        self.to += 1;
    }

    /// Writes the body once, at its final size, and adds the batch.
    fn close(&self, page: &Page, pieces: &mut Vec<Piece>) {
        if self.to == self.from {
            return;
        }
        let mut body = Vec::with_capacity(self.bytes);
        body.push(b'[');
        for (n, row) in page.rows[self.from..self.to].iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            body.extend_from_slice(row);
        }
        body.push(b']');
        pieces.push(Piece::Send(Batch {
            keys: page.keys[self.from..self.to].to_vec(),
            body: Bytes::from(body),
        }));
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;
    use serde_json::{json, Value};

    use super::*;

    fn page(sizes: &[usize]) -> Page {
        let stamp = NaiveDateTime::parse_from_str(
            "2024-01-01 00:00:00",
            crate::domain::datetime::DATETIME_FORMAT,
        )
        .unwrap();
        Page {
            rows: sizes
                .iter()
                .map(|n| json!({ "t": "x".repeat(*n) }).to_string().into_bytes())
                .collect(),
            keys: (1..=sizes.len() as i64)
                .map(|key| Cursor { stamp, key })
                .collect(),
            more: false,
        }
    }

    fn described(pieces: &[Piece]) -> Vec<(char, Vec<i64>)> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Send(b) => ('S', b.keys.iter().map(|c| c.key).collect()),
                Piece::Skip(o) => ('X', vec![o.at.key]),
            })
            .collect()
    }

    #[test]
    fn a_small_page_is_one_batch_whose_body_is_the_json_array() {
        let p = page(&[1, 2, 3]);
        let expected = format!(
            "[{}]",
            p.rows
                .iter()
                .map(|r| String::from_utf8_lossy(r))
                .collect::<Vec<_>>()
                .join(",")
        )
        .into_bytes();
        let pieces = split(&p, 1000, 1 << 20);
        assert_eq!(described(&pieces), [('S', vec![1, 2, 3])]);
        let Piece::Send(batch) = &pieces[0] else {
            unreachable!()
        };
        assert_eq!(batch.body, expected);
    }

    #[test]
    fn a_big_page_is_cut_in_order_and_every_body_fits() {
        // Each row encodes as {"t":"xxxx…"}: 8 bytes + its text.
        let pieces = split(&page(&[40, 40, 40, 40, 40]), 1000, 100);
        assert_eq!(
            described(&pieces),
            [('S', vec![1, 2]), ('S', vec![3, 4]), ('S', vec![5])]
        );
        for piece in &pieces {
            let Piece::Send(batch) = piece else {
                unreachable!()
            };
            assert!(batch.body.len() <= 100);
            let parsed: Vec<Value> = serde_json::from_slice(&batch.body).unwrap();
            assert_eq!(parsed.len(), batch.keys.len());
        }
    }

    #[test]
    fn a_page_of_several_batches_is_cut_at_the_batch_size_and_by_bytes() {
        let pieces = split(&page(&[1, 1, 1, 1, 1, 1, 1, 90, 1]), 3, 100);
        assert_eq!(
            described(&pieces),
            [
                ('S', vec![1, 2, 3]),
                ('S', vec![4, 5, 6]),
                ('S', vec![7]),
                ('S', vec![8]),
                ('S', vec![9])
            ]
        );
        let last: Vec<_> = pieces.iter().map(|p| p.last().map(|c| c.key)).collect();
        assert_eq!(last, [Some(3), Some(6), Some(7), Some(8), Some(9)]);
    }

    #[test]
    fn a_row_too_big_alone_is_set_aside_and_the_rest_still_go() {
        let pieces = split(&page(&[10, 500, 10]), 1000, 100);
        assert_eq!(
            described(&pieces),
            [('S', vec![1]), ('X', vec![2]), ('S', vec![3])]
        );
        let Piece::Skip(skipped) = pieces[1] else {
            unreachable!()
        };
        assert_eq!(skipped.bytes, 500 + 8 + 2);
    }

    #[test]
    fn ids_are_the_hash_of_each_rows_displayed_stamp_and_key() {
        let stamps = [
            "2024-01-01 00:00:00",
            "0001-01-01 00:00:00",
            "0999-12-31 23:59:59",
            "2024-02-29 13:05:09.250",
        ];
        let keys: Vec<Cursor> = stamps
            .iter()
            .enumerate()
            .map(|(i, s)| Cursor {
                stamp: NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap(),
                key: i as i64 * 1_000_003 - 7,
            })
            .collect();
        let mut hash = Sha256::new();
        hash.update("7|Patient");
        for at in &keys {
            hash.update(format!("|{}#{}", at.stamp, at.key));
        }
        let want: String = hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let batch = Batch {
            keys,
            body: Bytes::new(),
        };
        assert_eq!(batch.id(SubscriptionId(7), "Patient"), want);
    }

    #[test]
    fn ids_depend_on_the_rows_only() {
        let a = split(&page(&[1, 2]), 1000, 1000);
        let b = split(&page(&[1, 2]), 1000, 1000);
        let c = split(&page(&[1]), 1000, 1000);
        let id = |p: &[Piece]| match &p[0] {
            Piece::Send(batch) => batch.id(SubscriptionId(1), "Appointment"),
            Piece::Skip(_) => unreachable!(),
        };
        assert_eq!(id(&a), id(&b));
        assert_ne!(id(&a), id(&c));
        let Piece::Send(batch) = &a[0] else {
            unreachable!()
        };
        assert_ne!(
            batch.id(SubscriptionId(1), "Appointment"),
            batch.id(SubscriptionId(2), "Appointment")
        );
    }
}
