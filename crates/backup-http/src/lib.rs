//! kbackup's [`HttpCaller`] on reqwest: a hook's GET or POST, its response's status and the
//! start of its body.

use async_trait::async_trait;
use backup_core::http::{HttpCaller, HttpMethod, HttpRequest, HttpResponse, RESPONSE_BODY_LIMIT};
use std::time::Duration;

/// Calls HTTP endpoints with one reusable client (no redirects followed: a hook's URL is the
/// endpoint it names).
#[derive(Debug, Clone)]
pub struct ReqwestCaller {
    client: reqwest::Client,
}

impl ReqwestCaller {
    /// A caller; an error when the TLS roots cannot be loaded.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client })
    }
}

#[async_trait]
impl HttpCaller for ReqwestCaller {
    async fn call(&self, request: &HttpRequest, timeout: Duration) -> Result<HttpResponse, String> {
        let url = reqwest::Url::parse(&request.url).map_err(|e| format!("URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("URL scheme {} is not http or https", url.scheme()));
        }
        let mut builder = match request.method {
            HttpMethod::Get => self.client.get(url),
            HttpMethod::Post => self.client.post(url).body(request.body.clone()),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        // The timeout covers the whole call, the body's reading too.
        let mut response = builder
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while body.len() < RESPONSE_BODY_LIMIT {
            match response.chunk().await.map_err(|e| describe(&e))? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(RESPONSE_BODY_LIMIT);
        Ok(HttpResponse {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// A failed call in one line: what failed and why (reqwest's sources joined).
fn describe(error: &reqwest::Error) -> String {
    let mut text = match error.is_timeout() {
        true => "timed out".to_owned(),
        false => error.to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering one request with `answer`, handing back what it received.
    async fn one_answer(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/flush", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = vec![0u8; 4096];
            let n = socket.read(&mut received).await.unwrap();
            socket.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&received[..n]).into_owned()
        });
        (url, server)
    }

    #[tokio::test]
    async fn a_post_sends_its_headers_and_body_and_reads_the_status() {
        let (url, server) =
            one_answer("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy").await;
        let request = HttpRequest {
            method: HttpMethod::Post,
            url,
            headers: BTreeMap::from([("x-token".to_owned(), "abc".to_owned())]),
            body: "{\"flush\":true}".into(),
        };
        let caller = ReqwestCaller::new().unwrap();
        let response = caller.call(&request, Duration::from_secs(5)).await.unwrap();
        assert_eq!((response.status, response.body.as_str()), (503, "busy"));
        let received = server.await.unwrap();
        assert!(received.starts_with("POST /flush HTTP/1.1"), "{received}");
        assert!(received.contains("x-token: abc"), "{received}");
        assert!(received.ends_with("{\"flush\":true}"), "{received}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_other_schemes_are_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let request = HttpRequest {
            method: HttpMethod::Get,
            url: format!("http://{}/", listener.local_addr().unwrap()),
            headers: BTreeMap::new(),
            body: String::new(),
        };
        let caller = ReqwestCaller::new().unwrap();
        let error = caller
            .call(&request, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(error.contains("timed out"), "{error}");
        let file = HttpRequest {
            url: "file:///etc/passwd".into(),
            ..request
        };
        let error = caller
            .call(&file, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(error.contains("not http or https"), "{error}");
    }
}
