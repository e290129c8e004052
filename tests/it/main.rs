//! Integration tests: real MariaDB (a fresh database per test), real SQLite,
//! real HTTP on loopback, and the real `rowhook` binary where a process must
//! be killed or its output read.
//!
//! MariaDB is reached at `ROWHOOK_TEST_MYSQL` (default
//! `mysql://root@127.0.0.1:3306`).

mod binary;
mod chaos;
mod clock_step;
mod config_file;
mod delivery;
mod destinations;
mod encoding;
mod exactness;
mod helpers;
mod hostile;
mod operations;
mod paging;
mod privilege;
mod quiet;
mod selection;
mod sharing;
mod signing;
mod subscriptions_live;
mod tls;
mod windows;
