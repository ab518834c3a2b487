//! Calling an HTTP endpoint: what hooks that ask an application to flush or to check itself
//! need. The adapter (`backup-http`) does the network part.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

/// The most bytes of a response body kept (its start), for reports.
pub const RESPONSE_BODY_LIMIT: usize = 1024;

/// GET or POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST, with a body.
    Post,
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// GET or POST.
    pub method: HttpMethod,
    /// `http://` or `https://` URL.
    pub url: String,
    /// Headers, by name.
    pub headers: BTreeMap<String, String>,
    /// The body of a POST.
    pub body: String,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The body's start (at most [`RESPONSE_BODY_LIMIT`] bytes).
    pub body: String,
}

/// Sends HTTP requests.
#[async_trait]
pub trait HttpCaller: Send + Sync + std::fmt::Debug {
    /// Sends `request` and reads its response, all within `timeout`; an error when no
    /// response came (refused, unresolvable, timed out).
    async fn call(&self, request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, String>;
}
