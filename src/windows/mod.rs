//! Windows only: the NetBIOS computer name, the Event Log, and the service
//! that runs `rowhook run` under the Service Control Manager.

pub mod event_log;
#[allow(unsafe_code)]
pub mod ffi;
pub mod service;
