//! Windows only: the Event Log, and the service that runs `rowhook run`
//! under the Service Control Manager. The raw Win32 calls are in
//! `win32.rs`.

pub mod event_log;
pub mod service;
