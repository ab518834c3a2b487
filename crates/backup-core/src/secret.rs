//! A credential as text (an access key's secret, a password from a configuration): its
//! Debug never shows it, so no log, error or derived Debug of a type holding one does.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A credential: Debug shows `<redacted>`; [`Secret::expose`] is the one way to the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that hands it on (an SDK, a Kubernetes Secret).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
        let parsed: Secret = serde_json::from_str("\"s3cret\"").unwrap();
        assert_eq!(format!("{:?}", Some(parsed)), "Some(<redacted>)");
    }
}
