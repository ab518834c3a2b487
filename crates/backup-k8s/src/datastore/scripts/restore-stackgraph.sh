#!/usr/bin/env bash
# Restores a StackGraph backup inside the restore Job (mounted from a ConfigMap by kbackup).
# Downloads the archive from the object store into the scratch volume (every part of a
# multipart archive, concatenated in order), then imports it with the StackGraph server's
# import command (IMPORT_COMMAND overrides it), passing FORCE_DELETE (-force) through.
set -euo pipefail

dir=/restore-data
prefix="${BACKUP_S3_PREFIX:-}"
key="${prefix:+${prefix%/}/}${BACKUP_FILE}"
target="$dir/$BACKUP_FILE"
region="${AWS_REGION:-us-east-1}"

fetch() { # fetch KEY: the object on stdout
  curl --silent --show-error --fail --aws-sigv4 "aws:amz:${region}:s3" \
    --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" "${MINIO_ENDPOINT%/}/${BACKUP_BUCKET_NAME}/$1"
}

rm -f "$target"
if [ "${BACKUP_MULTIPART_ARCHIVE:-false}" = "true" ]; then
  for part in $(seq 0 99); do
    name=$(printf '%s.%02d' "$key" "$part")
    fetch "$name" >> "$target" 2>/dev/null || { [ "$part" -gt 0 ] && break; echo "no part .00 of $key" >&2; exit 1; }
    echo "downloaded $name"
  done
else
  fetch "$key" > "$target"
  echo "downloaded $key"
fi
echo "importing $target ($(du -h "$target" | cut -f1)) ${FORCE_DELETE:-}"
${IMPORT_COMMAND:-/opt/docker/bin/stackstate-server -import} "$target" ${FORCE_DELETE:-}
echo "restore of $BACKUP_FILE finished"
