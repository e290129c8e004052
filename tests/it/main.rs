//! Integration tests: real MariaDB (a fresh database per test), real SQLite,
//! real HTTP on loopback, and the real `rowhook` binary where a process must
//! be killed or its output read.
//!
//! MariaDB is reached at `ROWHOOK_TEST_MYSQL` (default
//! `mysql://root@127.0.0.1:3306`).

mod app;
#[cfg(unix)]
mod blip;
mod chaos;
mod clock_step;
mod commands;
mod config_file;
mod cut_proxy;
mod delivery;
mod delivery_log;
mod destinations;
mod encoding;
mod exactness;
mod health;
mod helpers;
mod hostile_rows;
mod http;
mod layers;
#[cfg(unix)]
mod leases;
mod opendental;
mod paging;
mod privilege;
mod process;
mod quiet;
mod selection;
mod sharing;
mod signing;
mod subscriptions_live;
#[cfg(unix)]
mod supervise;
mod tls;
mod windows;
