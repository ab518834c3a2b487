#!/usr/bin/env bash
# Takes a StackGraph backup inside the backup Job (mounted from a ConfigMap by kbackup): exports
# the graph into the scratch volume with the StackGraph server's export command (EXPORT_COMMAND
# overrides it), then uploads it as BACKUP_FILE, split into .00, .01, ... parts of
# ARCHIVE_SPLIT_SIZE when that is set (as the chart's backup CronJob does).
set -euo pipefail

dir=/backup-data
prefix="${BACKUP_S3_PREFIX:-}"
key="${prefix:+${prefix%/}/}${BACKUP_FILE}"
file="$dir/$BACKUP_FILE"
region="${AWS_REGION:-us-east-1}"

upload() { # upload FILE KEY
  curl --silent --show-error --fail --aws-sigv4 "aws:amz:${region}:s3" \
    --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" --upload-file "$1" "${MINIO_ENDPOINT%/}/${BACKUP_BUCKET_NAME}/$2"
  echo "uploaded $2"
}

rm -f "$file" "$file".[0-9][0-9]
${EXPORT_COMMAND:-/opt/docker/bin/stackstate-server -export} "$file"
if [ -n "${ARCHIVE_SPLIT_SIZE:-}" ]; then
  split --bytes "$ARCHIVE_SPLIT_SIZE" --numeric-suffixes --suffix-length 2 "$file" "$file."
  for part in "$file".[0-9][0-9]; do upload "$part" "$key.${part##*.}"; done
else
  upload "$file" "$key"
fi
rm -f "$file" "$file".[0-9][0-9]
echo "backup $BACKUP_FILE finished"
