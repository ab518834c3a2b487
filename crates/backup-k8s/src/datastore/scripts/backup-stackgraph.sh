#!/usr/bin/env bash
# kbackup's StackGraph backup, run inside the backup Job by the StackState backup image:
# exports the graph into /tmp-data, then uploads it as BACKUP_FILE, split into .00, .01, ...
# parts of ARCHIVE_SPLIT_SIZE when that is set (as the chart's backup CronJob does).
# Same contract as the restore Job (keys in /aws-keys, BACKUP_STACKGRAPH_* variables).
set -Eeuo pipefail

scratch=/tmp-data
endpoint="${S3_ENDPOINT_URL:-http://${MINIO_ENDPOINT}}"
bucket="${BACKUP_STACKGRAPH_BUCKET_NAME}"
prefix="${BACKUP_STACKGRAPH_S3_PREFIX:-}"
AWS_ACCESS_KEY_ID="$(cat /aws-keys/accesskey)"
AWS_SECRET_ACCESS_KEY="$(cat /aws-keys/secretkey)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

s3() { sts-toolbox aws s3 "$@" --endpoint "$endpoint" --region minio; }

file="$scratch/$BACKUP_FILE"
rm -f "$file" "$file".[0-9][0-9]
echo "=== exporting StackGraph to ${BACKUP_FILE}"
/opt/docker/bin/stackstate-server -Dlogback.configurationFile=/opt/docker/etc_log/logback.xml -export "$file"
if [ -n "${ARCHIVE_SPLIT_SIZE:-}" ]; then
  split --bytes "$ARCHIVE_SPLIT_SIZE" --numeric-suffixes --suffix-length 2 "$file" "$file."
  for part in "$file".[0-9][0-9]; do
    s3 cp "$part" "s3://${bucket}/${prefix}$(basename "$part")"
  done
else
  s3 cp "$file" "s3://${bucket}/${prefix}${BACKUP_FILE}"
fi
rm -f "$file" "$file".[0-9][0-9]
echo "=== backup ${BACKUP_FILE} uploaded to ${bucket}"
