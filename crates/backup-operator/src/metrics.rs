//! The operator's Prometheus metrics: sessions by phase, their durations, the last success
//! per BackupConfiguration, the snapshots per repository, restores that ended and their
//! durations, verifications by result and the last verified one, and reconcile errors.

use backup_usecases::restores::reconcile::EndedRestore;
use backup_usecases::sessions::reconcile::EndedSession;
use backup_usecases::verifiers::EndedVerification;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    sessions: Family<Labels, Gauge>,
    ended: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    last_success: Family<Labels, Gauge<f64, AtomicU64>>,
    snapshots: Family<Labels, Gauge>,
    errors: Family<Labels, Counter>,
    restores_ended: Family<Labels, Counter>,
    restore_durations: Family<Labels, Histogram, fn() -> Histogram>,
    verifications: Family<Labels, Counter>,
    last_verified: Family<Labels, Gauge<f64, AtomicU64>>,
}

fn duration_buckets() -> Histogram {
    // 1 s to about 4.5 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

impl Metrics {
    /// The metrics, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kbackup");
        let sessions = Family::<Labels, Gauge>::default();
        registry.register(
            "backup_sessions",
            "BackupSessions the operator sees, by namespace and phase",
            sessions.clone(),
        );
        let ended = Family::<Labels, Counter>::default();
        registry.register(
            "backup_sessions_ended",
            "BackupSessions that ended, by configuration and phase",
            ended.clone(),
        );
        let durations =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(duration_buckets);
        registry.register(
            "backup_session_duration_seconds",
            "How long BackupSessions took, from creation to end",
            durations.clone(),
        );
        let last_success = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the last BackupSession of a configuration succeeded (Unix time)",
            last_success.clone(),
        );
        let snapshots = Family::<Labels, Gauge>::default();
        registry.register(
            "repository_snapshots",
            "Snapshots in a repository after its last session",
            snapshots.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller",
            errors.clone(),
        );
        let restores_ended = Family::<Labels, Counter>::default();
        registry.register(
            "restore_sessions_ended",
            "RestoreSessions that ended, by namespace and phase",
            restores_ended.clone(),
        );
        let restore_durations =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(duration_buckets);
        registry.register(
            "restore_session_duration_seconds",
            "How long RestoreSessions took, from creation to end",
            restore_durations.clone(),
        );
        let verifications = Family::<Labels, Counter>::default();
        registry.register(
            "backup_verifications",
            "Verifications of snapshots by a BackupVerifier, by verifier and result",
            verifications.clone(),
        );
        let last_verified = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "backup_last_verified_timestamp_seconds",
            "When a BackupVerifier last verified a snapshot (Unix time)",
            last_verified.clone(),
        );
        Self {
            registry,
            restores_ended,
            restore_durations,
            verifications,
            last_verified,
            sessions,
            ended,
            durations,
            last_success,
            snapshots,
            errors,
        }
    }

    /// Records a session that ended.
    pub fn session_ended(&self, session: &EndedSession, now_seconds: f64) {
        let configuration = vec![
            ("namespace", session.namespace.clone()),
            ("configuration", session.configuration.clone()),
        ];
        let mut with_phase = configuration.clone();
        with_phase.push(("phase", format!("{:?}", session.phase)));
        self.ended.get_or_create(&with_phase).inc();
        self.durations
            .get_or_create(&configuration)
            .observe(session.seconds);
        for (repository, count) in &session.snapshot_counts {
            self.snapshots
                .get_or_create(&vec![
                    ("namespace", session.namespace.clone()),
                    ("repository", repository.clone()),
                ])
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        if session.phase == backup_api::BackupSessionPhase::Succeeded {
            self.last_success
                .get_or_create(&configuration)
                .set(now_seconds);
        }
    }

    /// Records a restore that ended.
    pub fn restore_ended(&self, restore: &EndedRestore) {
        let namespace = vec![("namespace", restore.namespace.clone())];
        let mut with_phase = namespace.clone();
        with_phase.push(("phase", format!("{:?}", restore.phase)));
        self.restores_ended.get_or_create(&with_phase).inc();
        self.restore_durations
            .get_or_create(&namespace)
            .observe(restore.seconds);
    }

    /// Records a verification that ended at `now_seconds` (Unix time).
    pub fn verification_ended(&self, verification: &EndedVerification, now_seconds: f64) {
        let verifier = vec![
            ("namespace", verification.namespace.clone()),
            ("verifier", verification.verifier.clone()),
        ];
        let mut with_result = verifier.clone();
        with_result.push(("result", format!("{:?}", verification.result)));
        self.verifications.get_or_create(&with_result).inc();
        if verification.result == backup_api::VerificationResult::Verified {
            self.last_verified.get_or_create(&verifier).set(now_seconds);
        }
    }

    /// Sets the sessions per namespace and phase, as counted in the cache.
    pub fn set_sessions(&self, counts: impl IntoIterator<Item = ((String, String), i64)>) {
        self.sessions.clear();
        for ((namespace, phase), count) in counts {
            self.sessions
                .get_or_create(&vec![("namespace", namespace), ("phase", phase)])
                .set(count);
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, controller: &'static str) {
        self.errors
            .get_or_create(&vec![("controller", controller.to_owned())])
            .inc();
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::warn!(%error, "encoding metrics");
        }
        text
    }
}
