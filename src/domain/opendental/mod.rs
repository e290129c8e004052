//! Open Dental's own event bodies: for each Database-event WatchTable, the
//! JSON element Open Dental itself POSTs, so a receiver written for Open
//! Dental works unchanged.
//!
//! # What Open Dental sends
//!
//! Open Dental does not send a row's columns. Its API-events worker reads a
//! page with `SELECT *`, converts each row into a DTO class of its API
//! (`ODApi.Appointment`, `ODApi.Patient`, …) and serializes the list with
//! Newtonsoft.Json's defaults. The element of a WatchTable is therefore the
//! DTO its REST GET returns:
//!
//! * a fixed list of keys — some columns dropped (`SecurityHash`, the
//!   `Hist*` columns of a deletion), derived keys added next to their
//!   source (`confirmed`, `provAbbr`, `clinicAbbr`, `siteDesc`, lower-camel
//!   because they are not columns);
//! * enums as member names (`"AptStatus":"Scheduled"`; an undefined value
//!   as its digits, `"9"`), bools as the strings `"true"`/`"false"`, NULL
//!   text as `""`, colours as `"R,G,B"`, doubles with a point (`0.0`),
//!   `time` as `hh:mm:ss`, dates as stored (zero or invalid as
//!   `0001-01-01…`; no pre-1880 clamp when Open Dental reads);
//! * lookups from Open Dental's caches: a definition's name by category
//!   (hidden definitions included), provider and clinic abbreviations, a
//!   site's description; `""` for 0 or a missing row.
//!
//! # Why key order matters
//!
//! Newtonsoft writes fields in declaration order, so every Open Dental
//! element of a WatchTable has the same keys in the same order. Receivers
//! in typed languages that read positionally or stream, and golden-file
//! tests that compare bodies byte for byte, depend on it. A
//! [`shapes::Shape`] is that order as data, and a [`Plan`] renders it
//! without building a map.
//!
//! # Where the shapes come from
//!
//! From `opendental-event-bodies.md` (the project's reference), which read
//! them from Open Dental's 24.3 source and its shipped `ODApi.dll`. Where
//! Open Dental's docs and its binary disagree (PatField's key order,
//! ToothInitial's colour key, Provider's `SigOnFile`) the binary wins: it
//! is what is sent. The shapes are for Open Dental 24.3; a key a later
//! version adds is one line in [`shapes`], and a table that lacks a key's
//! column (an older version) leaves the key out.
//!
//! **ToothInitial's shape is not confirmed.** The event arrived in Open
//! Dental 24.4.30, after the last source the reference could read; the
//! shape here is the most likely one, the `ODApi.ToothInitial` DTO that
//! `GET /toothinitials` uses (`colorDraw`, as the binary spells it, where
//! the docs write `ColorDraw`). [`shapes::Shape::confirmed`] says so.
//!
//! # Using it
//!
//! 1. [`shape_for`] the subscription's `WatchTable` (`None`: any other
//!    table, which gets the raw-column body).
//! 2. [`Shape::plan`] it once against the table's real columns; read only
//!    [`Plan::columns`], in that order, and load [`Plan::lookups`] (each
//!    [`LookupKind::source`] says which table and columns) into a
//!    [`Lookups`], refreshed as the caller sees fit.
//! 3. Per row, [`Plan::render`] the values as [`SourceValue`]s. The
//!    cursor's stamp and key are read beside them as today: Operatory and
//!    Schedule do not send their `DateTStamp`, so it is not in the plan.
//!
//! Reading values: integers as `Int`; `double`/`float` as `Float` (or their
//! text); strings, `time` and `decimal` as `Text`; dates as `Text` from the
//! text protocol, or through [`value::from_mysql_binary_date`] from the
//! binary one; SQLite's integers, reals and text as they come. Each rule
//! parses what it needs ([`value`] says how each treats odd input).
//!
//! `fixtures/opendental/` holds, per WatchTable, rows of known values for
//! the 24.3 schema and the exact elements Open Dental would send for them;
//! a test here renders the same rows and compares.

pub mod enums;
mod render;
pub mod shapes;
pub mod value;

#[cfg(test)]
mod fixtures;

pub use render::{Lookups, Plan};
pub use shapes::{shape_for, DefCat, Field, LookupKind, LookupSource, Rule, Shape};
pub use value::SourceValue;
