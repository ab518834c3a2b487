use backup_core::ClusterError;

/// A kube error as a [`ClusterError`], by HTTP status where there is one.
pub(crate) fn convert(what: &str, error: kube::Error) -> ClusterError {
    match &error {
        kube::Error::Api(status) => {
            let detail = format!("{what}: {}", status.message);
            match status.code {
                404 => ClusterError::NotFound(what.to_owned()),
                401 | 403 => ClusterError::Forbidden(detail),
                409 => ClusterError::Conflict(detail),
                400 | 422 => ClusterError::Invalid(detail),
                _ => ClusterError::Api(detail),
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            ClusterError::Connection(format!("{what}: {error}"))
        }
        _ => ClusterError::Api(format!("{what}: {error}")),
    }
}

pub(crate) fn connection(error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Connection(error.to_string())
}
