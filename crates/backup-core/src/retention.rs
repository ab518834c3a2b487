//! Count- and time-based retention (`forget --keep-*`), as a pure function.
//!
//! The rules count successful snapshots only, so a run of failed backups can never push the
//! last good snapshot out; the newest successful snapshot is always kept, whatever the policy.

use crate::model::{Snapshot, SnapshotId};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which snapshots to keep. Zero means "this rule keeps nothing".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetentionPolicy {
    /// Keep the newest N successful snapshots.
    pub keep_last: u32,
    /// Keep the newest successful snapshot of each of the last N hours that have one.
    pub keep_hourly: u32,
    /// ... of each of the last N days.
    pub keep_daily: u32,
    /// ... of each of the last N ISO weeks.
    pub keep_weekly: u32,
    /// ... of each of the last N months.
    pub keep_monthly: u32,
    /// ... of each of the last N years.
    pub keep_yearly: u32,
    /// Keep successful snapshots younger than this (relative to the newest snapshot).
    #[serde(with = "optional_duration")]
    pub keep_within: Option<Duration>,
    /// Keep every snapshot carrying one of these tags.
    pub keep_tags: Vec<String>,
    /// Keep the newest N snapshots that did not succeed (for diagnosis).
    pub keep_failed: u32,
}

/// What the policy says of one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionDecision {
    /// The snapshot.
    pub id: SnapshotId,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// Whether it stays.
    pub keep: bool,
    /// The rules that keep it (empty when it goes).
    pub reasons: Vec<String>,
}

impl RetentionPolicy {
    /// Whether the policy has at least one rule (an empty policy would delete everything
    /// but the newest good snapshot, so callers refuse it).
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        counts.iter().all(|&n| n == 0) && self.keep_within.is_none() && self.keep_tags.is_empty()
    }

    /// Decides, newest first, which snapshots to keep.
    pub fn apply(&self, snapshots: &[Snapshot]) -> Vec<RetentionDecision> {
        let mut sorted: Vec<&Snapshot> = snapshots.iter().collect();
        sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
        let newest = sorted.first().map(|s| s.time);

        type BucketFn = fn(&DateTime<Utc>) -> i64;
        let bucket_rules: [(&str, u32, BucketFn); 6] = [
            ("last", self.keep_last, |t| {
                t.timestamp_nanos_opt().unwrap_or(t.timestamp())
            }),
            ("hourly", self.keep_hourly, |t| t.timestamp() / 3600),
            ("daily", self.keep_daily, |t| {
                i64::from(t.num_days_from_ce())
            }),
            ("weekly", self.keep_weekly, |t| {
                let w = t.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }),
            ("monthly", self.keep_monthly, |t| {
                i64::from(t.year()) * 100 + i64::from(t.month())
            }),
            ("yearly", self.keep_yearly, |t| i64::from(t.year())),
        ];
        let mut remaining: Vec<u32> = bucket_rules.iter().map(|r| r.1).collect();
        let mut last_bucket: Vec<Option<i64>> = vec![None; bucket_rules.len()];
        let mut failed_left = self.keep_failed;
        let mut newest_good_kept = false;

        sorted
            .into_iter()
            .map(|snapshot| {
                let mut reasons = Vec::new();
                if snapshot.is_successful() {
                    for (i, (name, _, bucket_of)) in bucket_rules.iter().enumerate() {
                        let bucket = bucket_of(&snapshot.time);
                        if remaining[i] > 0 && last_bucket[i] != Some(bucket) {
                            remaining[i] -= 1;
                            last_bucket[i] = Some(bucket);
                            reasons.push(format!("keep-{name}"));
                        }
                    }
                    let age = newest.and_then(|newest| (newest - snapshot.time).to_std().ok());
                    if let (Some(within), Some(age)) = (self.keep_within, age)
                        && age <= within
                    {
                        reasons.push("keep-within".to_owned());
                    }
                    if !newest_good_kept {
                        newest_good_kept = true;
                        reasons.push("newest successful snapshot".to_owned());
                    }
                } else if failed_left > 0 {
                    failed_left -= 1;
                    reasons.push("keep-failed".to_owned());
                }
                if let Some(tag) = self.keep_tags.iter().find(|t| snapshot.tags.contains(*t)) {
                    reasons.push(format!("keep-tag {tag}"));
                }
                RetentionDecision {
                    id: snapshot.id.clone(),
                    time: snapshot.time,
                    keep: !reasons.is_empty(),
                    reasons,
                }
            })
            .collect()
    }
}

mod optional_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| humantime::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Component, Totals};

    fn snap(n: u32, time: &str, ok: bool) -> Snapshot {
        let component = Component::new("c", "e");
        let component = if ok {
            component.succeeded(1, Duration::ZERO)
        } else {
            component.failed("boom", Duration::ZERO)
        };
        Snapshot {
            id: SnapshotId::parse(&format!("{n:08x}")).unwrap(),
            time: time.parse().unwrap(),
            source: "test".into(),
            tags: Default::default(),
            labels: Default::default(),
            components: vec![component],
            totals: Totals::default(),
        }
    }

    fn kept(policy: &RetentionPolicy, snapshots: &[Snapshot]) -> Vec<u32> {
        policy
            .apply(snapshots)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| u32::from_str_radix(d.id.as_str(), 16).unwrap())
            .collect()
    }

    #[test]
    fn keep_last_counts_successful_snapshots_only() {
        let snapshots = vec![
            snap(1, "2026-11-01T03:00:00Z", true),
            snap(2, "2026-11-02T03:00:00Z", true),
            snap(3, "2026-11-03T03:00:00Z", false),
            snap(4, "2026-11-04T03:00:00Z", false),
        ];
        let policy = RetentionPolicy {
            keep_last: 2,
            ..Default::default()
        };
        assert_eq!(kept(&policy, &snapshots), vec![2, 1]);
    }

    #[test]
    fn the_newest_good_snapshot_survives_any_policy() {
        let snapshots = vec![
            snap(1, "2020-01-01T00:00:00Z", true),
            snap(2, "2026-11-04T03:00:00Z", false),
        ];
        let policy = RetentionPolicy {
            keep_within: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let decisions = policy.apply(&snapshots);
        let good = decisions
            .iter()
            .find(|d| d.id.as_str() == "00000001")
            .unwrap();
        assert!(good.keep);
        assert_eq!(good.reasons, vec!["newest successful snapshot"]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let snapshots = vec![
            snap(1, "2026-11-01T01:00:00Z", true),
            snap(2, "2026-11-01T23:00:00Z", true),
            snap(3, "2026-11-02T01:00:00Z", true),
            snap(4, "2026-11-03T01:00:00Z", true),
        ];
        let policy = RetentionPolicy {
            keep_daily: 2,
            ..Default::default()
        };
        assert_eq!(kept(&policy, &snapshots), vec![4, 3]);
        let policy = RetentionPolicy {
            keep_daily: 3,
            ..Default::default()
        };
        assert_eq!(kept(&policy, &snapshots), vec![4, 3, 2]);
    }

    #[test]
    fn monthly_yearly_and_weekly_buckets() {
        let snapshots = vec![
            snap(1, "2024-12-31T00:00:00Z", true),
            snap(2, "2025-06-01T00:00:00Z", true),
            snap(3, "2025-06-20T00:00:00Z", true),
            snap(4, "2025-07-01T00:00:00Z", true),
        ];
        assert_eq!(
            kept(
                &RetentionPolicy {
                    keep_monthly: 3,
                    ..Default::default()
                },
                &snapshots
            ),
            vec![4, 3, 1]
        );
        assert_eq!(
            kept(
                &RetentionPolicy {
                    keep_yearly: 5,
                    ..Default::default()
                },
                &snapshots
            ),
            vec![4, 1]
        );
        assert_eq!(
            kept(
                &RetentionPolicy {
                    keep_weekly: 2,
                    ..Default::default()
                },
                &snapshots
            ),
            vec![4, 3]
        );
    }

    #[test]
    fn tags_and_failed_snapshots() {
        let mut tagged = snap(1, "2026-01-01T00:00:00Z", true);
        tagged.tags.insert("keep".into());
        let snapshots = vec![
            tagged,
            snap(2, "2026-02-01T00:00:00Z", true),
            snap(3, "2026-03-01T00:00:00Z", false),
        ];
        let policy = RetentionPolicy {
            keep_tags: vec!["keep".into()],
            keep_failed: 1,
            ..Default::default()
        };
        assert_eq!(kept(&policy, &snapshots), vec![3, 2, 1]);
    }

    #[test]
    fn empty_policy_is_detected() {
        assert!(RetentionPolicy::default().is_empty());
        assert!(
            !RetentionPolicy {
                keep_last: 1,
                ..Default::default()
            }
            .is_empty()
        );
        assert!(
            RetentionPolicy {
                keep_failed: 1,
                ..Default::default()
            }
            .is_empty()
        );
    }

    #[test]
    fn policy_reads_from_json_with_human_durations() {
        let p: RetentionPolicy =
            serde_json::from_str(r#"{"keepLast": 3, "keepWithin": "30days"}"#).unwrap();
        assert_eq!(p.keep_last, 3);
        assert_eq!(p.keep_within, Some(Duration::from_secs(30 * 86400)));
    }
}
