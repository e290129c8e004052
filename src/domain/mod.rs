//! The values rowhook reasons about, free of I/O: a parsed subscription,
//! the table it watches, where it stands, its health, its signing secret,
//! and what one delivery attempt was.
//!
//! Everything here is built once, at the edge where it is read (a row, a
//! flag, a stored secret), and cannot hold an invalid value afterwards.
//! This folder imports nothing else from the crate; every other layer
//! imports it.

pub mod attempt;
pub mod body;
pub mod datetime;
pub mod health;
pub mod lease;
pub mod opendental;
pub mod progress;
pub mod secret;
pub mod status;
pub mod subscription;
pub mod watch_table;
