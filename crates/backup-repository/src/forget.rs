//! Forgetting snapshots by a retention policy, as a plan: the decisions are made once,
//! shown, confirmed, and exactly the snapshots the plan removes are deleted (a snapshot
//! written in between is not judged by a plan that never saw it).

use crate::repository::{Repository, RepositoryError};
use backup_core::{RetentionDecision, RetentionPolicy, Snapshot};

/// A retention policy applied to the snapshots as they were when planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetPlan {
    /// Every decision, newest first.
    pub decisions: Vec<RetentionDecision>,
}

impl ForgetPlan {
    /// The snapshots the plan removes.
    pub fn removed(&self) -> impl Iterator<Item = &RetentionDecision> {
        self.decisions.iter().filter(|d| !d.keep)
    }
}

impl Repository {
    /// Applies a retention policy to the snapshots: every decision, nothing deleted. An empty
    /// policy is refused: it would keep only the newest good snapshot.
    pub async fn plan_forget(
        &self,
        policy: &RetentionPolicy,
    ) -> Result<ForgetPlan, RepositoryError> {
        if policy.is_empty() {
            return Err(RepositoryError::EmptyRetentionPolicy);
        }
        let snapshots: Vec<Snapshot> = self
            .snapshots()
            .await?
            .into_iter()
            .map(|f| f.snapshot)
            .collect();
        Ok(ForgetPlan {
            decisions: policy.apply(&snapshots),
        })
    }

    /// Deletes the snapshots `plan` removes, and no other; returns how many. Their data is
    /// freed later by `prune`.
    pub async fn forget(&self, plan: &ForgetPlan) -> Result<usize, RepositoryError> {
        let mut removed = 0;
        for decision in plan.removed() {
            self.delete_snapshot(&decision.id).await?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use crate::stream::tests::{repository, snapshot};
    use backup_core::RetentionPolicy;
    use backup_testing::noise;

    #[tokio::test]
    async fn forget_removes_what_the_plan_showed_and_nothing_written_since() {
        let repo = repository().await;
        let write = |n: u64| {
            let repo = &repo;
            async move {
                let (content, _) = repo
                    .backup_stream("d", noise(50_000, n + 20).as_slice())
                    .await
                    .unwrap();
                let mut file = snapshot(vec![content]);
                file.snapshot.time =
                    chrono::DateTime::from_timestamp(1_700_000_000 + n as i64 * 86_400, 0).unwrap();
                repo.write_snapshot(file).await.unwrap()
            }
        };
        for n in 0..3 {
            write(n).await;
        }
        let policy = RetentionPolicy {
            keep_last: 2,
            ..Default::default()
        };
        let plan = repo.plan_forget(&policy).await.unwrap();
        assert_eq!(plan.removed().count(), 1);
        assert_eq!(
            repo.snapshots().await.unwrap().len(),
            3,
            "a plan deletes nothing"
        );
        // A backup lands between the plan and its execution: under the policy it would push
        // one more snapshot out, but nobody confirmed that one.
        write(3).await;
        assert_eq!(repo.forget(&plan).await.unwrap(), 1);
        let left: Vec<i64> = repo
            .snapshots()
            .await
            .unwrap()
            .iter()
            .map(|f| f.snapshot.time.timestamp())
            .collect();
        assert_eq!(left, [1_700_086_400, 1_700_172_800, 1_700_259_200]);
        assert!(repo.plan_forget(&RetentionPolicy::default()).await.is_err());
    }
}
