#!/usr/bin/env bash
# kbackup's StackGraph v2 live restore: loads the newest data of BACKUP_FILE (the system is
# down meanwhile), then the StackPacks backed up with it unless SKIP_STACKPACKS=true.
# The historic data comes after, with the backfill Job, while the system runs.
set -Eeuo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/restore-stackgraph-v2-env.sh"

echo "=== loading the live data of ${BACKUP_FILE} from s3a://${BACKUP_V2_LOCATION} ${FORCE_DELETE:-}"
server -import-v2-live "s3a://${BACKUP_V2_LOCATION}" -backup-name "${BACKUP_FILE}" ${FORCE_DELETE:-}
echo "=== live data loaded; the backfill loads the historic data"

if [ "${SKIP_STACKPACKS:-false}" = "true" ]; then
  echo "=== StackPacks left as they are"
  exit 0
fi
packs="${BACKUP_FILE}.stackpacks.zip"
key="${BACKUP_STACKGRAPH_S3_PREFIX:-}v2/${BACKUP_STACKGRAPH_STACKPACKS_DIR:-}${packs}"
if ! s3 ls --bucket "${BACKUP_STACKGRAPH_BUCKET_NAME}" --prefix "$key" 2>/dev/null | grep -qF "$packs"; then
  echo "the StackPacks backup ${packs} is not in ${BACKUP_STACKGRAPH_BUCKET_NAME}/${key%/*}/" >&2
  exit 1
fi
echo "=== restoring the StackPacks from ${packs}"
s3 cp "s3://${BACKUP_STACKGRAPH_BUCKET_NAME}/${key}" "/tmp-data/${packs}"
/opt/docker/bin/stack-packs-backup -Dlogback.configurationFile=/opt/docker/etc_log/logback.xml -restore "/tmp-data/${packs}"
echo "=== live restore of ${BACKUP_FILE} finished"
