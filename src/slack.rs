//! POST a rendered [`crate::render::Message`] to a Slack incoming webhook, and classify the answer.
//!
//! Slack answers `200 ok` on success. Errors come as a status and a short string in the body
//! (`invalid_payload`, `channel_not_found`, …), which we keep for the delivery log. 429, 5xx,
//! 408 and network failures are worth retrying; any other 4xx will fail the same way again.
//!
//! A webhook URL is a credential: anyone holding it can post to the channel. It is wrapped in
//! [`WebhookUrl`], whose `Debug` is redacted, and error messages never include it.

use std::fmt;
use std::io::Read;
use std::time::Duration;

/// The most of an error body we keep.
const ERROR_BODY_MAX: u64 = 512;

/// A Slack incoming-webhook URL. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn new(url: String) -> WebhookUrl {
        WebhookUrl(url)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookUrl(<redacted>)")
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Slack answered with a status other than 2xx. `body` is Slack's error string.
    Status { status: u16, body: String, retry_after: Option<Duration> },
    /// No answer: connection refused, DNS failure, timeout, broken connection.
    Transport(String),
}

impl SendError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Transport(_) => true,
            SendError::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
        }
    }

    /// Slack's rate limit (429): wait [`SendError::retry_after`] before the next request.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, SendError::Status { status: 429, .. })
    }

    /// How long Slack asked us to wait (429 `Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Status { retry_after, .. } => *retry_after,
            SendError::Transport(_) => None,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Status { status, body, .. } if body.is_empty() => {
                write!(f, "Slack answered HTTP {status}")
            }
            SendError::Status { status, body, .. } => {
                write!(f, "Slack answered HTTP {status}: {body}")
            }
            SendError::Transport(e) => write!(f, "sending to Slack failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// A blocking Slack client; one per worker, reused so connections are kept alive.
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    /// `timeout` bounds each request as a whole, connecting included.
    pub fn new(timeout: Duration) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("notifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent }
    }

    /// Posts `message`, a rendered [`crate::render::Message`]'s JSON, to `url`. Blocks for at most the
    /// client's timeout.
    pub fn send(&self, url: &WebhookUrl, message: &str) -> Result<(), SendError> {
        let response = self
            .agent
            .post(url.expose())
            .header("Content-Type", "application/json; charset=utf-8")
            .send(message)
            .map_err(|e| SendError::Transport(redact(&e.to_string(), url)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = String::new();
        // The body is only for the log; a failure to read it leaves it empty.
        let _ = response.into_body().into_reader().take(ERROR_BODY_MAX).read_to_string(&mut body);
        Err(SendError::Status { status, body: body.trim().to_string(), retry_after })
    }
}

/// Removes the webhook URL, and its path on its own, from an error message.
fn redact(message: &str, url: &WebhookUrl) -> String {
    let full = url.expose();
    let mut out = message.replace(full, "<webhook url>");
    if let Some(path_start) =
        full.find("://").and_then(|i| full[i + 3..].find('/').map(|j| i + 3 + j))
    {
        let path = &full[path_start..];
        if path.len() > 1 {
            out = out.replace(path, "/<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_are_429_5xx_408_and_transport() {
        let status = |status| SendError::Status { status, body: String::new(), retry_after: None };
        assert!(status(429).is_retryable());
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(status(408).is_retryable());
        assert!(SendError::Transport("refused".into()).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(403).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(410).is_retryable());
    }

    #[test]
    fn redact_hides_the_url_and_its_path() {
        let url = WebhookUrl::new("https://hooks.example/services/T0/B0/XYZ".into());
        assert_eq!(
            redact("failed https://hooks.example/services/T0/B0/XYZ and /services/T0/B0/XYZ", &url),
            "failed <webhook url> and /<redacted>"
        );
        assert_eq!(format!("{url:?}"), "WebhookUrl(<redacted>)");
    }
}
