# kbackup's StackGraph v2 restores: what the live restore, the backfill and the abort share.
# Sourced by their scripts inside the Job, run by the StackState backup image. Same contract
# as sts-backup's Jobs: keys in /aws-keys/{accesskey,secretkey}, and the variables
# BACKUP_STACKGRAPH_{BUCKET_NAME,S3_PREFIX} and S3_ENDPOINT (host:port; S3_ENDPOINT_URL,
# kbackup's addition, may give a full URL instead).
#
# The server reads the v2 backups itself, through Hadoop's s3a file system, configured per
# bucket with typesafe overrides (CONFIG_FORCE_<path>, `.` written `_`, `_` written `___`
# and `-` written `__`).

AWS_ACCESS_KEY_ID="$(cat /aws-keys/accesskey)"
AWS_SECRET_ACCESS_KEY="$(cat /aws-keys/secretkey)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

endpoint="${S3_ENDPOINT_URL:-http://${S3_ENDPOINT}}"
tls=false
case "$endpoint" in https://*) tls=true ;; esac

# Where the v2 backups are: the prefix is joined as sts-backup joins it.
export BACKUP_V2_LOCATION="${BACKUP_STACKGRAPH_BUCKET_NAME}/${BACKUP_STACKGRAPH_S3_PREFIX:-}v2/"

bucket_key="$(printf '%s' "${BACKUP_STACKGRAPH_BUCKET_NAME}" | sed 's/_/___/g; s/-/__/g; s/\./_/g')"
s3a="CONFIG_FORCE_fs_s3a_bucket_${bucket_key}"
# `endpoint` is both a value and an object (endpoint.region): the server strips a trailing
# `__` from the key, which typesafe cannot express otherwise.
export "${s3a}_endpoint___=${endpoint}"
export "${s3a}_endpoint_region=us-east-1"
export "${s3a}_access_key=${AWS_ACCESS_KEY_ID}"
export "${s3a}_secret_key=${AWS_SECRET_ACCESS_KEY}"
export "${s3a}_path_style_access=true"
export "${s3a}_connection_ssl_enabled=${tls}"
export "${s3a}_aws_credentials_provider=org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
# Bulk loads need a longer HBase client timeout than the default.
export CONFIG_FORCE_hbase_rpc_timeout=120000

s3() { sts-toolbox aws s3 "$@" --endpoint "$endpoint" --region us-east-1; }
server() { /opt/docker/bin/stackstate-server -Dlogback.configurationFile=/opt/docker/etc_log/logback.xml "$@"; }
