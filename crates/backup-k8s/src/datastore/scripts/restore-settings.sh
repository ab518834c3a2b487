#!/usr/bin/env bash
# kbackup's settings restore, run inside the restore Job by the StackState settings backup
# image. Keys in /aws-keys/{accesskey,secretkey}, scratch space in /tmp-data, the legacy backup
# volume (when mounted) in /settings-backup-data. Variables: BACKUP_FILE,
# BACKUP_CONFIGURATION_{BUCKET_NAME,S3_PREFIX,LOCAL_BUCKET,STACKPACKS_DIR}, MINIO_ENDPOINT
# (host:port), BACKUP_RESTORE_FROM_PVC, SKIP_STACKPACKS.
set -Eeuo pipefail

scratch=/tmp-data
legacy=/settings-backup-data
AWS_ACCESS_KEY_ID="$(cat /aws-keys/accesskey)"
AWS_SECRET_ACCESS_KEY="$(cat /aws-keys/secretkey)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

# fetch FILE KEY_PREFIX: from the local bucket when there is one, else from the backup bucket.
fetch() {
  local file="$1" dir="$2"
  if [ -n "${BACKUP_CONFIGURATION_LOCAL_BUCKET:-}" ] &&
    sts-toolbox aws s3 --endpoint "http://${MINIO_ENDPOINT}" --region minio \
      cp "s3://${BACKUP_CONFIGURATION_LOCAL_BUCKET}/${dir}${file}" "$scratch/$file"; then
    return 0
  fi
  echo "=== downloading ${file} from ${BACKUP_CONFIGURATION_BUCKET_NAME}"
  sts-toolbox aws s3 --endpoint "http://${MINIO_ENDPOINT}" --region minio \
    cp "s3://${BACKUP_CONFIGURATION_BUCKET_NAME}/${BACKUP_CONFIGURATION_S3_PREFIX:-}${dir}${file}" "$scratch/$file"
}

if [ "${BACKUP_RESTORE_FROM_PVC:-false}" = "true" ]; then
  archive="$legacy/${BACKUP_FILE}"
else
  fetch "${BACKUP_FILE}" ""
  archive="$scratch/${BACKUP_FILE}"
fi
[ -s "$archive" ] || { echo "backup ${BACKUP_FILE} not found" >&2; exit 1; }

echo "=== restoring settings from ${BACKUP_FILE}"
/opt/docker/bin/settings-backup -Dlogback.configurationFile=/opt/docker/etc_log/logback.xml -restore "$archive"

if [ "${SKIP_STACKPACKS:-false}" != "true" ]; then
  packs="${BACKUP_FILE}.stackpacks.zip"
  fetch "$packs" "${BACKUP_CONFIGURATION_STACKPACKS_DIR:-}"
  echo "=== restoring StackPacks from ${packs}"
  /opt/docker/bin/stack-packs-backup -Dlogback.configurationFile=/opt/docker/etc_log/logback.xml -restore "$scratch/$packs"
fi
echo "=== settings restore of ${BACKUP_FILE} finished"
