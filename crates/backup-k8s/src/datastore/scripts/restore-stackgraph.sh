#!/usr/bin/env bash
# kbackup's StackGraph restore, run inside the restore Job by the StackState backup image.
# Same contract as sts-backup's Job: keys in /aws-keys/{accesskey,secretkey}, scratch space in
# /tmp-data, logging configuration in /opt/docker/etc_log, and the variables BACKUP_FILE,
# FORCE_DELETE, BACKUP_STACKGRAPH_{BUCKET_NAME,S3_PREFIX,MULTIPART_ARCHIVE} and MINIO_ENDPOINT
# (host:port; S3_ENDPOINT_URL, kbackup's addition, may give a full URL instead).
set -Eeuo pipefail

scratch=/tmp-data
endpoint="${S3_ENDPOINT_URL:-http://${MINIO_ENDPOINT}}"
bucket="${BACKUP_STACKGRAPH_BUCKET_NAME}"
prefix="${BACKUP_STACKGRAPH_S3_PREFIX:-}"
AWS_ACCESS_KEY_ID="$(cat /aws-keys/accesskey)"
AWS_SECRET_ACCESS_KEY="$(cat /aws-keys/secretkey)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

s3() { sts-toolbox aws s3 "$@" --endpoint "$endpoint" --region minio; }

archive="${BACKUP_FILE%.[0-9][0-9]}"   # a part name (NAME.graph.00) names its archive
target="$scratch/$archive"
rm -f "$target" "$target".[0-9][0-9]
if [ "${BACKUP_STACKGRAPH_MULTIPART_ARCHIVE:-false}" = "true" ]; then
  echo "=== downloading the parts of ${archive} from ${bucket}"
  s3 ls --bucket "$bucket" --prefix "${prefix}${archive}." | sort | while read -r part; do
    s3 cp "s3://${bucket}/${prefix}${part}" "$scratch/$part"
    cat "$scratch/$part" >> "$target"
    rm -f "$scratch/$part"
  done
else
  echo "=== downloading ${archive} from ${bucket}"
  s3 cp "s3://${bucket}/${prefix}${archive}" "$target"
fi
[ -s "$target" ] || { echo "nothing downloaded for ${archive}" >&2; exit 1; }

echo "=== importing ${archive} ${FORCE_DELETE:-}"
/opt/docker/bin/stackstate-server -Dlogback.configurationFile=/opt/docker/etc_log/logback.xml -import "$target" ${FORCE_DELETE:-}
echo "=== restore of ${archive} finished"
