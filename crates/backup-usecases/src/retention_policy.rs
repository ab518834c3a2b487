//! A RetentionPolicy object as the repository's retention rules (core's `RetentionPolicy`),
//! which the operator applies after each session.

use backup_api::RetentionPolicySpec;
use backup_core::RetentionPolicy;
use std::time::Duration;

/// An hour, in seconds.
const HOUR: u64 = 3600;

/// The rules of a RetentionPolicy object. Its period (`30d`) keeps successful snapshots
/// younger than that, counted from the newest; a month is 30 days and a year 365. An object
/// that keeps nothing keeps the newest successful snapshot (core keeps it whatever the rules).
pub fn retention_rules(spec: &RetentionPolicySpec) -> Result<RetentionPolicy, String> {
    let successful = spec.successful_snapshots.clone().unwrap_or_default();
    let keep_within = spec
        .max_retention_period
        .as_deref()
        .map(period)
        .transpose()?;
    Ok(RetentionPolicy {
        keep_last: successful.last.unwrap_or(0),
        keep_hourly: successful.hourly.unwrap_or(0),
        keep_daily: successful.daily.unwrap_or(0),
        keep_weekly: successful.weekly.unwrap_or(0),
        keep_monthly: successful.monthly.unwrap_or(0),
        keep_yearly: successful.yearly.unwrap_or(0),
        keep_within,
        keep_tags: Vec::new(),
        keep_failed: spec
            .failed_snapshots
            .as_ref()
            .and_then(|f| f.last)
            .unwrap_or(0),
    })
}

/// `12h`, `30d`, `8w`, `6mo`, `1y` as a duration.
fn period(text: &str) -> Result<Duration, String> {
    let bad = || format!("maxRetentionPeriod {text:?} is not a number and one of h, d, w, mo, y");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let hours = match unit {
        "h" => 1,
        "d" => 24,
        "w" => 7 * 24,
        "mo" => 30 * 24,
        "y" => 365 * 24,
        _ => return Err(bad()),
    };
    number
        .checked_mul(hours * HOUR)
        .filter(|_| number > 0)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_api::{FailedSnapshotsKeep, SuccessfulSnapshotsKeep};

    #[test]
    fn an_object_becomes_the_repository_rules() {
        let spec = RetentionPolicySpec {
            max_retention_period: Some("6mo".into()),
            successful_snapshots: Some(SuccessfulSnapshotsKeep {
                last: Some(3),
                daily: Some(7),
                ..SuccessfulSnapshotsKeep::default()
            }),
            failed_snapshots: Some(FailedSnapshotsKeep { last: Some(1) }),
            usage_policy: None,
        };
        let rules = retention_rules(&spec).unwrap();
        assert_eq!(
            (
                rules.keep_last,
                rules.keep_daily,
                rules.keep_weekly,
                rules.keep_failed
            ),
            (3, 7, 0, 1)
        );
        assert_eq!(
            rules.keep_within,
            Some(Duration::from_secs(180 * 24 * HOUR))
        );
        assert!(
            retention_rules(&RetentionPolicySpec::default())
                .unwrap()
                .is_empty()
        );
        for (text, hours) in [("12h", 12), ("30d", 720), ("8w", 1344), ("1y", 8760)] {
            assert_eq!(
                period(text),
                Ok(Duration::from_secs(hours * HOUR)),
                "{text}"
            );
        }
        for bad in ["", "d", "0d", "30days", "1.5y", "99999999999999999999y"] {
            assert!(period(bad).is_err(), "{bad}");
        }
    }
}
