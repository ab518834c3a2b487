#!/usr/bin/env sh
# kbackup's VictoriaMetrics restore, one container per instance, run by the StackState
# VictoriaMetrics backup image: vmrestore from s3://BACKUP_FILE (bucket/directory) into the
# instance's volume at /storage. Keys in /aws-keys/{accesskey,secretkey}; MINIO_ENDPOINT is
# host:port; VM_METRICS_ADDR is the instance's own listen address.
set -eu

AWS_ACCESS_KEY_ID="$(cat /aws-keys/accesskey)"
AWS_SECRET_ACCESS_KEY="$(cat /aws-keys/secretkey)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

echo "=== restoring ${BACKUP_FILE} into /storage"
/vmrestore-prod -storageDataPath=/storage -src="s3://${BACKUP_FILE}" \
  -customS3Endpoint="http://${MINIO_ENDPOINT}" -httpListenAddr="${VM_METRICS_ADDR}"
echo "=== restore of ${BACKUP_FILE} finished"
