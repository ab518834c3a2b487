use crate::storage::ObjectMeta;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// One backup archive: a single object, or a multipart set `NAME.00`, `NAME.01`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    /// The archive's name (`sts-backup-20261121-0300.graph`), without part suffix.
    pub name: String,
    /// When it was taken, from the timestamp in its name.
    pub time: Option<DateTime<Utc>>,
    /// The newest LastModified of its objects, as the object store reports it.
    pub modified: Option<DateTime<Utc>>,
    /// Total size of all parts.
    pub size: u64,
    /// Object keys, in restore order (one for a single archive).
    pub parts: Vec<String>,
    /// Whether a multipart set has every part from `.00` on without gaps.
    pub complete: bool,
}

impl Archive {
    /// Whether it is split into parts.
    pub fn is_multipart(&self) -> bool {
        self.parts.iter().any(|p| part_of(p).is_some())
    }
}

/// Which archive is the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatestBy {
    /// The newest by the timestamp in its name (`sts-backup-YYYYMMDD-HHMM`), as `sts-backup`
    /// chooses: copying a bucket (`aws s3 sync`) gives every copy the same LastModified.
    #[default]
    Name,
    /// The newest by the LastModified of its objects.
    Modified,
}

/// Why an archive cannot be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// No archive of that name.
    #[error("archive '{name}' not found in {location} ({count} archives there; `list` shows them)")]
    NotFound {
        /// The name asked for.
        name: String,
        /// Where it was looked for.
        location: String,
        /// How many archives there are.
        count: usize,
    },
    /// No archive at all.
    #[error("no {suffix} archives in {location}")]
    Empty {
        /// The archive suffix.
        suffix: String,
        /// Where.
        location: String,
    },
    /// A backup directory without its completion marker: the backup did not finish.
    #[error("backup '{name}' is unfinished: its completion marker is missing")]
    Unfinished {
        /// The backup.
        name: String,
    },
    /// A multipart archive misses parts.
    #[error("archive '{name}' is incomplete: parts {present} present, part .{missing:02} missing")]
    Incomplete {
        /// The archive.
        name: String,
        /// Parts found.
        present: usize,
        /// The first missing part number.
        missing: usize,
    },
}

/// The archives of one bucket and prefix, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ArchiveCatalog {
    /// Archives, newest first by the timestamp in their names (names without one last).
    pub archives: Vec<Archive>,
}

/// `sts-backup-YYYYMMDD-HHMM` anywhere in a name.
fn timestamp(name: &str) -> Option<DateTime<Utc>> {
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(12)).rev().find_map(|i| {
        let candidate = name.get(i..i + 13)?;
        let ok = candidate.as_bytes().iter().enumerate().all(|(j, b)| {
            if j == 8 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
        ok.then(|| {
            NaiveDateTime::parse_from_str(candidate, "%Y%m%d-%H%M")
                .ok()
                .map(|t| t.and_utc())
        })
        .flatten()
    })
}

/// Splits `NAME.NN` into (`NAME`, NN) for a two-digit part suffix.
fn part_of(key: &str) -> Option<(&str, usize)> {
    let (base, number) = key.rsplit_once('.')?;
    (number.len() == 2 && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (base, number.parse().ok()))
        .and_then(|(b, n)| Some((b, n?)))
}

impl ArchiveCatalog {
    /// Archives taken before `cutoff`, by the timestamp in their names (as the chart's
    /// backup CronJob expires them). Archives without a timestamp never expire.
    pub fn older_than(&self, cutoff: DateTime<Utc>) -> Vec<&Archive> {
        self.archives
            .iter()
            .filter(|a| a.time.is_some_and(|t| t < cutoff))
            .collect()
    }

    /// Builds the catalog from the objects below the prefix (keys relative to it), keeping
    /// those whose name ends in `suffix` (`.graph`), alone or with a part number.
    pub fn from_objects(objects: &[ObjectMeta], suffix: &str) -> Self {
        let mut groups: BTreeMap<String, Vec<(Option<usize>, &ObjectMeta)>> = BTreeMap::new();
        for object in objects {
            let name = object.key.rsplit('/').next().unwrap_or(&object.key);
            if name.ends_with(suffix) {
                groups
                    .entry(object.key.clone())
                    .or_default()
                    .push((None, object));
            } else if let Some((base, n)) =
                part_of(&object.key).filter(|(base, _)| base.ends_with(suffix))
            {
                groups
                    .entry(base.to_owned())
                    .or_default()
                    .push((Some(n), object));
            }
        }
        let archives = groups
            .into_iter()
            .map(|(name, mut parts)| {
                parts.sort_by_key(|(n, _)| *n);
                let numbers: Vec<usize> = parts.iter().filter_map(|(n, _)| *n).collect();
                let complete = numbers.iter().enumerate().all(|(i, n)| i == *n);
                Archive {
                    time: timestamp(&name),
                    modified: parts.iter().filter_map(|(_, o)| o.last_modified).max(),
                    size: parts.iter().map(|(_, o)| o.size).sum(),
                    parts: parts.iter().map(|(_, o)| o.key.clone()).collect(),
                    complete,
                    name,
                }
            })
            .collect();
        Self::sorted(archives)
    }

    /// The catalog without split archives: where the configuration turns them off, their
    /// parts are not archives (`sts-backup` leaves out every name ending in a number).
    pub fn without_split_archives(self) -> Self {
        Self {
            archives: self
                .archives
                .into_iter()
                .filter(|a| !a.is_multipart())
                .collect(),
        }
    }

    /// Builds the catalog of backup directories (`victoria-metrics-0-20261121030000/...`)
    /// whose names start with `name_prefix`, from the objects of a whole bucket. A directory
    /// is complete when it holds `marker`, and was taken when the marker was written. Names
    /// are `bucket/directory`.
    pub fn from_directories(
        objects: &[ObjectMeta],
        bucket: &str,
        name_prefix: &str,
        marker: &str,
    ) -> Self {
        let mut groups: BTreeMap<&str, Vec<&ObjectMeta>> = BTreeMap::new();
        for object in objects {
            if let Some((directory, _)) = object.key.split_once('/')
                && directory.starts_with(name_prefix)
            {
                groups.entry(directory).or_default().push(object);
            }
        }
        let archives = groups
            .into_iter()
            .map(|(directory, objects)| {
                let done = objects
                    .iter()
                    .find(|o| o.key == format!("{directory}/{marker}"));
                Archive {
                    name: format!("{bucket}/{directory}"),
                    time: done.and_then(|o| o.last_modified),
                    modified: objects.iter().filter_map(|o| o.last_modified).max(),
                    size: objects.iter().map(|o| o.size).sum(),
                    parts: vec![format!("{directory}/")],
                    complete: done.is_some(),
                }
            })
            .collect();
        Self::sorted(archives)
    }

    /// One catalog of several (the backup locations of several instances, a bucket and its
    /// local copy): an archive of the same name in several counts once, as the first has it.
    pub fn merge(catalogs: impl IntoIterator<Item = ArchiveCatalog>) -> Self {
        let mut seen = std::collections::HashSet::new();
        let archives = catalogs
            .into_iter()
            .flat_map(|c| c.archives)
            .filter(|a| seen.insert(a.name.clone()))
            .collect();
        Self::sorted(archives)
    }

    fn sorted(mut archives: Vec<Archive>) -> Self {
        archives.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.name.cmp(&a.name)));
        // `Option` orders None first; archives without a time belong last.
        archives.sort_by_key(|a| a.time.is_none());
        Self { archives }
    }

    /// The newest complete archive.
    pub fn latest(
        &self,
        by: LatestBy,
        suffix: &str,
        location: &str,
    ) -> Result<&Archive, ArchiveError> {
        let mut complete = self.archives.iter().filter(|a| a.complete);
        let latest = match by {
            LatestBy::Name => complete.next(),
            // Among equal times, the newest by name (the list is in that order).
            LatestBy::Modified => complete.rev().max_by_key(|a| a.modified),
        };
        latest.ok_or_else(|| ArchiveError::Empty {
            suffix: suffix.into(),
            location: location.into(),
        })
    }

    /// The archive of that name (a part name such as `NAME.00` names its set); refuses an
    /// incomplete multipart set.
    pub fn find(&self, name: &str, location: &str) -> Result<&Archive, ArchiveError> {
        let base = part_of(name).map(|(b, _)| b).unwrap_or(name);
        let archive = self
            .archives
            .iter()
            .find(|a| a.name == base || a.name.rsplit('/').next() == Some(base))
            .ok_or_else(|| ArchiveError::NotFound {
                name: name.into(),
                location: location.into(),
                count: self.archives.len(),
            })?;
        if !archive.complete && !archive.is_multipart() {
            return Err(ArchiveError::Unfinished {
                name: archive.name.clone(),
            });
        }
        if !archive.complete {
            let numbers: Vec<usize> = archive
                .parts
                .iter()
                .filter_map(|p| part_of(p).map(|(_, n)| n))
                .collect();
            let missing = (0..).find(|i| !numbers.contains(i)).unwrap_or(0);
            return Err(ArchiveError::Incomplete {
                name: archive.name.clone(),
                present: numbers.len(),
                missing,
            });
        }
        Ok(archive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, size: u64) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size,
            last_modified: None,
            etag: None,
        }
    }

    fn catalog() -> ArchiveCatalog {
        ArchiveCatalog::from_objects(
            &[
                object("sts-backup-20261120-0300.graph", 100),
                object("sts-backup-20261121-0300.graph.01", 50),
                object("sts-backup-20261121-0300.graph.00", 500),
                object("sts-backup-20250101-0300.graph", 7),
                object("manual.graph", 3),
                object("sts-backup-20261122-0300.graph.01", 5),
                object("notes.txt", 1),
                object("sts-backup-20261119-0300.sty", 1),
            ],
            ".graph",
        )
    }

    #[test]
    fn merged_catalogs_hold_each_name_once_as_the_first_has_it() {
        let main =
            ArchiveCatalog::from_objects(&[object("sts-backup-20261120-0300.sty", 5)], ".sty");
        let local = ArchiveCatalog::from_objects(
            &[
                object("sts-backup-20261120-0300.sty", 9),
                object("sts-backup-20261121-0300.sty", 7),
            ],
            ".sty",
        );
        let merged = ArchiveCatalog::merge([main, local]);
        let names: Vec<_> = merged
            .archives
            .iter()
            .map(|a| (a.name.as_str(), a.size))
            .collect();
        assert_eq!(
            names,
            [
                ("sts-backup-20261121-0300.sty", 7),
                ("sts-backup-20261120-0300.sty", 5)
            ]
        );
    }

    #[test]
    fn split_archives_can_be_left_out() {
        let names: Vec<_> = catalog()
            .without_split_archives()
            .archives
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(
            names,
            [
                "sts-backup-20261120-0300.graph",
                "sts-backup-20250101-0300.graph",
                "manual.graph"
            ]
        );
    }

    #[test]
    fn groups_parts_and_sorts_newest_first_by_name_timestamp() {
        let c = catalog();
        let names: Vec<_> = c.archives.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sts-backup-20261122-0300.graph",
                "sts-backup-20261121-0300.graph",
                "sts-backup-20261120-0300.graph",
                "sts-backup-20250101-0300.graph",
                "manual.graph"
            ]
        );
        let multi = &c.archives[1];
        assert!(multi.is_multipart() && multi.complete);
        assert_eq!(multi.size, 550);
        assert_eq!(
            multi.parts,
            [
                "sts-backup-20261121-0300.graph.00",
                "sts-backup-20261121-0300.graph.01"
            ]
        );
        assert_eq!(multi.time, Some("2026-11-21T03:00:00Z".parse().unwrap()));
        assert!(!c.archives[2].is_multipart());
    }

    #[test]
    fn expiry_goes_by_the_name_timestamp_and_spares_unnamed_archives() {
        let c = catalog();
        let old: Vec<_> = c
            .older_than("2026-11-20T12:00:00Z".parse().unwrap())
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            old,
            [
                "sts-backup-20261120-0300.graph",
                "sts-backup-20250101-0300.graph"
            ]
        );
    }

    #[test]
    fn latest_skips_incomplete_sets() {
        let c = catalog();
        assert!(!c.archives[0].complete, ".00 is missing");
        assert_eq!(
            c.latest(LatestBy::Name, ".graph", "s3://b").unwrap().name,
            "sts-backup-20261121-0300.graph"
        );
        assert!(matches!(
            ArchiveCatalog::default().latest(LatestBy::Name, ".graph", "s3://b"),
            Err(ArchiveError::Empty { .. })
        ));
    }

    #[test]
    fn latest_by_modification_time_takes_the_newest_write_and_the_name_on_a_tie() {
        let at = |key: &str, time: &str| ObjectMeta {
            last_modified: Some(time.parse().unwrap()),
            ..object(key, 1)
        };
        let c = ArchiveCatalog::from_objects(
            &[
                at("sts-backup-20261121-0300.graph", "2026-11-21T03:10:00Z"),
                // Uploaded again later by hand: newest by LastModified, not by name.
                at("sts-backup-20261119-0300.graph", "2026-11-25T12:00:00Z"),
                at("sts-backup-20261120-0300.graph", "2026-11-20T03:10:00Z"),
            ],
            ".graph",
        );
        let latest = |by| c.latest(by, ".graph", "s3://b").unwrap().name.clone();
        assert_eq!(latest(LatestBy::Name), "sts-backup-20261121-0300.graph");
        assert_eq!(latest(LatestBy::Modified), "sts-backup-20261119-0300.graph");
        let synced = ArchiveCatalog::from_objects(
            &[
                at("sts-backup-20261120-0300.graph", "2026-11-30T00:00:00Z"),
                at("sts-backup-20261121-0300.graph", "2026-11-30T00:00:00Z"),
            ],
            ".graph",
        );
        assert_eq!(
            synced
                .latest(LatestBy::Modified, ".graph", "s3://b")
                .unwrap()
                .name,
            "sts-backup-20261121-0300.graph"
        );
    }

    #[test]
    fn find_by_name_or_part_and_refuse_incomplete() {
        let c = catalog();
        assert_eq!(
            c.find("sts-backup-20261121-0300.graph.00", "s3://b")
                .unwrap()
                .parts
                .len(),
            2
        );
        assert_eq!(
            c.find("sts-backup-20261120-0300.graph", "s3://b")
                .unwrap()
                .size,
            100
        );
        let missing = c
            .find("sts-backup-19990101-0300.graph", "s3://b")
            .unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("not found in s3://b (5 archives"),
            "{missing}"
        );
        let incomplete = c
            .find("sts-backup-20261122-0300.graph", "s3://b")
            .unwrap_err();
        assert!(
            incomplete.to_string().contains("part .00 missing"),
            "{incomplete}"
        );
    }

    #[test]
    fn backup_directories_are_listed_once_and_need_their_marker() {
        let at = |minute: u32| {
            Some(
                chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
                    .unwrap()
                    .and_hms_opt(3, minute, 0)
                    .unwrap()
                    .and_utc(),
            )
        };
        let mut objects = vec![
            object("victoria-metrics-0-20261121030000/data/big/1", 100),
            object("victoria-metrics-0-20261121030000/data/big/2", 50),
            object("victoria-metrics-0-20261121040000/data/big/1", 70),
            object(
                "victoria-metrics-1-20261121030000/backup_complete.ignore",
                0,
            ),
            object("unrelated.graph", 9),
        ];
        objects.push(ObjectMeta {
            last_modified: at(5),
            ..object(
                "victoria-metrics-0-20261121030000/backup_complete.ignore",
                0,
            )
        });
        let zero = ArchiveCatalog::from_directories(
            &objects,
            "vm",
            "victoria-metrics-0",
            "backup_complete.ignore",
        );
        let names: Vec<_> = zero.archives.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "vm/victoria-metrics-0-20261121030000",
                "vm/victoria-metrics-0-20261121040000"
            ],
            "complete first; the unfinished one has no time"
        );
        assert_eq!(zero.archives[0].size, 150);
        assert_eq!(zero.archives[0].time, at(5));
        assert!(!zero.archives[0].is_multipart());
        assert_eq!(
            zero.latest(LatestBy::Name, "backup", "vm").unwrap().name,
            "vm/victoria-metrics-0-20261121030000"
        );
        assert!(matches!(
            zero.find("vm/victoria-metrics-0-20261121040000", "vm"),
            Err(ArchiveError::Unfinished { .. })
        ));
        let one = ArchiveCatalog::from_directories(
            &objects,
            "vm",
            "victoria-metrics-1",
            "backup_complete.ignore",
        );
        let both = ArchiveCatalog::merge([zero, one]);
        assert_eq!(both.archives.len(), 3);
    }
}
