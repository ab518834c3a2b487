#!/usr/bin/env bash
# kbackup's StackGraph v2 abort: ends an unfinished backfill and keeps the data loaded so
# far (the historic data not yet loaded stays missing).
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/restore-stackgraph-v2-env.sh"

echo "=== ending the backfill from s3a://${BACKUP_V2_LOCATION}; keeping the data loaded so far"
server -import-v2-abort "s3a://${BACKUP_V2_LOCATION}"
echo "=== backfill ended"
