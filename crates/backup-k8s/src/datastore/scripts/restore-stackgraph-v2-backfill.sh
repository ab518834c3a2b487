#!/usr/bin/env bash
# kbackup's StackGraph v2 backfill: loads the historic data of the backup restored live,
# while the system runs. Safe to run again after an interruption.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/restore-stackgraph-v2-env.sh"

echo "=== backfilling the historic data from s3a://${BACKUP_V2_LOCATION}"
server -import-v2-backfill "s3a://${BACKUP_V2_LOCATION}"
echo "=== backfill finished: the restore is complete"
