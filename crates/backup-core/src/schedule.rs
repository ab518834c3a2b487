//! Backup schedules: standard 5-field cron expressions (as Kubernetes CronJobs take them).

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A cron schedule in UTC, with the 5 fields of a Kubernetes CronJob
/// (minute hour day-of-month month day-of-week) and the usual aliases (`@daily`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Schedule {
    expression: String,
    cron: Cron,
}

/// A schedule that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid schedule '{expression}': {reason} (expected 5 cron fields: minute hour day-of-month month day-of-week)"
)]
pub struct ScheduleError {
    /// What was given.
    pub expression: String,
    /// The parser's reason.
    pub reason: String,
}

impl Schedule {
    /// Parses a 5-field expression; seconds and years are refused, as Kubernetes refuses them.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expression.trim()).map_err(|e| ScheduleError {
            expression: expression.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            expression: expression.trim().to_owned(),
            cron,
        })
    }

    /// The next time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.expression
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.expression)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl Eq for Schedule {}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> Self {
        s.expression
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn daily_at_three_like_the_stackstate_cronjob() {
        let s = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            s.next_after(at("2026-11-21T02:59:00Z")),
            Some(at("2026-11-21T03:00:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-11-21T03:00:00Z")),
            Some(at("2026-11-22T03:00:00Z"))
        );
    }

    #[test]
    fn aliases_and_steps() {
        let hourly = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            hourly.next_after(at("2026-11-21T10:15:00Z")),
            Some(at("2026-11-21T11:00:00Z"))
        );
        let every15 = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            every15.next_after(at("2026-11-21T10:16:00Z")),
            Some(at("2026-11-21T10:30:00Z"))
        );
    }

    #[test]
    fn refuses_seconds_and_garbage() {
        assert!(
            Schedule::parse("0 0 3 * * ?").is_err(),
            "the 6-field Elasticsearch form is not a CronJob schedule"
        );
        let e = Schedule::parse("61 * * * *").unwrap_err();
        assert!(e.to_string().contains("61 * * * *"));
        assert!(serde_json::from_str::<Schedule>("\"nonsense\"").is_err());
        assert_eq!(
            serde_json::from_str::<Schedule>("\"0 3 * * *\"")
                .unwrap()
                .as_str(),
            "0 3 * * *"
        );
    }
}
