//! Progress reporting, injected so that libraries stay silent and the CLI draws bars.

/// Receives progress of long work. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A new phase of work begins, with its total in units (bytes, items) when known.
    fn start(&self, _what: &str, _total: Option<u64>) {}
    /// `units` more were done.
    fn advance(&self, _units: u64) {}
    /// A line for the person watching.
    fn message(&self, _text: &str) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
