//! The few Win32 calls `windows-service` does not wrap: the computer name
//! .NET reports, and writing to the Event Log. The only unsafe code in
//! rowhook.

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt as _;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::EventLog::{
    DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
    EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
};
use windows_sys::Win32::System::SystemInformation::{ComputerNameNetBIOS, GetComputerNameExW};

/// `GetComputerNameExW(ComputerNameNetBIOS)`, which .NET's
/// `Environment.MachineName` (and so Open Dental) reads.
pub fn netbios_name() -> Option<String> {
    // NetBIOS names are at most 15 characters; room to spare.
    let mut buffer = [0u16; 64];
    let mut len = buffer.len() as u32;
    // SAFETY: the buffer is valid for `len` UTF-16 units; on success `len`
    // is set to the number written, without the terminating NUL.
    let ok = unsafe { GetComputerNameExW(ComputerNameNetBIOS, buffer.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return None;
    }
    let name = String::from_utf16(buffer.get(..len as usize)?).ok()?;
    (!name.is_empty()).then_some(name)
}

/// How an event is shown in Event Viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Information,
}

/// A registered Event Log source (`RegisterEventSourceW`).
pub struct EventSource(HANDLE);

// SAFETY: an event log handle may be used from any thread; ReportEventW is
// documented thread-safe.
unsafe impl Send for EventSource {}
unsafe impl Sync for EventSource {}

/// The Event Log keeps at most 31,839 characters of one string.
const MAX_EVENT_CHARS: usize = 31_000;

fn wide(text: &str) -> Vec<u16> {
    OsStr::new(text)
        .encode_wide()
        .map(|c| if c == 0 { u16::from(b' ') } else { c })
        .chain(std::iter::once(0))
        .collect()
}

impl EventSource {
    pub fn register(name: &str) -> std::io::Result<Self> {
        let name = wide(name);
        // SAFETY: `name` is NUL-terminated and outlives the call; a null
        // server name means this computer.
        let handle = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
        if handle.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self(handle))
    }

    /// Writes one event (event ID 0, whose message is the text itself in
    /// the .NET message file the source is registered with).
    pub fn report(&self, severity: Severity, text: &str) {
        let kind = match severity {
            Severity::Error => EVENTLOG_ERROR_TYPE,
            Severity::Warning => EVENTLOG_WARNING_TYPE,
            Severity::Information => EVENTLOG_INFORMATION_TYPE,
        };
        let cut = text
            .char_indices()
            .nth(MAX_EVENT_CHARS)
            .map_or(text, |(i, _)| &text[..i]);
        let message = wide(cut);
        let strings = [message.as_ptr()];
        // SAFETY: one NUL-terminated string, alive for the call; no SID and
        // no raw data. A failed write has nowhere better to be reported.
        unsafe {
            ReportEventW(
                self.0,
                kind,
                0,
                0,
                std::ptr::null_mut(),
                1,
                0,
                strings.as_ptr(),
                std::ptr::null(),
            );
        }
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegisterEventSourceW and is closed once.
        unsafe {
            DeregisterEventSource(self.0);
        }
    }
}
