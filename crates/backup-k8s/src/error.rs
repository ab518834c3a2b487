use backup_core::ClusterError;

/// A kube error as a [`ClusterError`], by HTTP status where there is one.
pub(crate) fn convert(what: &str, error: kube::Error) -> ClusterError {
    match &error {
        kube::Error::Api(status) => by_status(what, status.code, &status.message),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            ClusterError::Connection(format!("{what}: {error}"))
        }
        _ => ClusterError::Api(format!("{what}: {error}")),
    }
}

/// An API server's refusal as a [`ClusterError`], by HTTP status.
pub(crate) fn by_status(what: &str, code: u16, message: &str) -> ClusterError {
    let detail = format!("{what}: {message}");
    match code {
        404 => ClusterError::NotFound(what.to_owned()),
        401 | 403 => ClusterError::Forbidden(detail),
        409 => ClusterError::Conflict(detail),
        400 | 422 => ClusterError::Invalid(detail),
        _ => ClusterError::Api(detail),
    }
}

pub(crate) fn connection(error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Connection(error.to_string())
}
