//! Logging when running as a service: each line that would go to stderr
//! (the journal, on Linux) becomes one Event Log event from source
//! `rowhook`, its severity from the line's level.

use std::io;
use std::sync::Arc;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::win32::{EventSource, Severity};

/// The Event Log source name, registered by `rowhook service install`.
pub const SOURCE: &str = "rowhook";

/// Makes one [`Entry`] per formatted log line.
#[derive(Clone)]
pub struct EventLog {
    source: Arc<EventSource>,
}

impl EventLog {
    pub fn open() -> io::Result<Self> {
        Ok(Self {
            source: Arc::new(EventSource::register(SOURCE)?),
        })
    }
}

/// One event: the formatter writes the line into it, and it is reported
/// when the formatter drops it.
pub struct Entry {
    source: Arc<EventSource>,
    severity: Severity,
    text: Vec<u8>,
}

impl io::Write for Entry {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        let text = text.trim();
        if !text.is_empty() {
            self.source.report(self.severity, text);
        }
    }
}

impl<'a> MakeWriter<'a> for EventLog {
    type Writer = Entry;

    fn make_writer(&'a self) -> Entry {
        self.entry(Severity::Information)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Entry {
        self.entry(match *meta.level() {
            Level::ERROR => Severity::Error,
            Level::WARN => Severity::Warning,
            _ => Severity::Information,
        })
    }
}

impl EventLog {
    fn entry(&self, severity: Severity) -> Entry {
        Entry {
            source: Arc::clone(&self.source),
            severity,
            text: Vec::new(),
        }
    }
}
