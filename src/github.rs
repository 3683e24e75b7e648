//! The only module that knows GitHub's JSON: webhook payloads in, [`Event`]s out.
//!
//! The receiver stores bodies as they arrive and calls [`payload`] only to refuse what is not a
//! webhook at all; the worker calls [`normalize`]. A payload we can't turn into an event is not an
//! error: it is a skip with a reason (`ping`, `unsupported: EVENT.ACTION`), because GitHub keeps
//! adding events and actions and never retries a refused delivery.
//!
//! Payload structs name only the fields we read; serde ignores the rest. Optional fields
//! (`installation`, `organization`, an issue's `body`) are `Option` or defaulted, so a sparse
//! payload normalizes instead of failing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::event::{Event, Issue, Kind, Repo, User};

/// What a stored delivery turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalized {
    Event(Box<Event>),
    /// Nothing to notify; the reason is recorded with the delivery.
    Skip(String),
}

/// A delivery's payload, parsed: its summary for the delivery log, and what it turns into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub action: Option<String>,
    /// The repository's `owner/name`, when the payload has one.
    pub repo: Option<String>,
    pub normalized: Normalized,
}

/// Why a body is not a webhook payload we can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// A form body without a `payload` field.
    MissingFormPayload,
    /// A content type GitHub does not send.
    UnsupportedContentType(String),
    /// Not a JSON object (or not JSON at all).
    NotAnObject(String),
    /// A JSON object, but not shaped like the event it claims to be.
    Shape(String),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::MissingFormPayload => {
                f.write_str("form-encoded body has no 'payload' field")
            }
            PayloadError::UnsupportedContentType(ct) => write!(
                f,
                "unsupported content type '{ct}'; use application/json or application/x-www-form-urlencoded"
            ),
            PayloadError::NotAnObject(e) => write!(f, "payload is not a JSON object: {e}"),
            PayloadError::Shape(e) => write!(f, "payload does not have the expected fields: {e}"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// Content types GitHub offers for webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Json,
    Form,
}

impl ContentType {
    /// Reads a `Content-Type` header value; parameters such as `charset` are ignored.
    /// A missing header is taken as JSON, as GitHub's default is.
    pub fn from_header(value: Option<&str>) -> Result<ContentType, PayloadError> {
        let Some(value) = value else {
            return Ok(ContentType::Json);
        };
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Ok(ContentType::Json)
        } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            Ok(ContentType::Form)
        } else {
            Err(PayloadError::UnsupportedContentType(essence.chars().take(100).collect()))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// The JSON payload inside a body: the body itself, or the `payload` field of a form. Checks that
/// it is a JSON object, so the receiver can refuse anything else before storing it.
pub fn payload(content_type: ContentType, body: &[u8]) -> Result<Cow<'_, [u8]>, PayloadError> {
    let json: Cow<[u8]> = match content_type {
        ContentType::Json => Cow::Borrowed(body),
        ContentType::Form => form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| Cow::Owned(value.into_owned().into_bytes()))
            .ok_or(PayloadError::MissingFormPayload)?,
    };
    serde_json::from_slice::<HashMap<Cow<str>, IgnoredAny>>(&json)
        .map_err(|e| PayloadError::NotAnObject(e.to_string()))?;
    Ok(json)
}

/// Turns a stored delivery into an [`Event`] or a skip. Fails only on a body that is not a
/// payload, or a known event whose payload lacks fields it must have.
pub fn normalize(
    event: &str,
    content_type: ContentType,
    body: &[u8],
) -> Result<Parsed, PayloadError> {
    let json = payload(content_type, body)?;
    let envelope: Envelope =
        serde_json::from_slice(&json).map_err(|e| PayloadError::Shape(e.to_string()))?;
    let action = envelope.action.clone();
    let repo = envelope.repository.as_ref().map(|r| r.full_name.clone());
    let normalized = match (event, action.as_deref()) {
        ("ping", _) => Normalized::Skip("ping".to_string()),
        ("issues", Some("opened")) => {
            let p: IssuesPayload = parse(&json)?;
            let issue = p.issue.into_issue();
            event_from(event, &envelope, p.repository, p.sender, Kind::IssueOpened(issue))
        }
        (event, Some(action)) => Normalized::Skip(format!("unsupported: {event}.{action}")),
        (event, None) => Normalized::Skip(format!("unsupported: {event}")),
    };
    Ok(Parsed { action, repo, normalized })
}

fn parse<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(json).map_err(|e| PayloadError::Shape(e.to_string()))
}

fn event_from(
    name: &str,
    envelope: &Envelope,
    repo: GhRepo,
    sender: GhUser,
    kind: Kind,
) -> Normalized {
    Normalized::Event(Box::new(Event {
        name: name.to_string(),
        action: envelope.action.clone(),
        repo: Repo { full_name: repo.full_name, url: repo.html_url },
        actor: sender.into_user(),
        kind,
    }))
}

/// The fields every payload may have, all optional, for the delivery log.
#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
    repository: Option<RepoName>,
}

#[derive(Deserialize)]
struct RepoName {
    full_name: String,
}

#[derive(Deserialize)]
struct GhRepo {
    full_name: String,
    html_url: String,
}

#[derive(Deserialize)]
struct GhUser {
    login: String,
    html_url: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl GhUser {
    fn into_user(self) -> User {
        let is_bot = self.kind.as_deref() == Some("Bot") || self.login.ends_with("[bot]");
        User { login: self.login, url: self.html_url, is_bot }
    }
}

#[derive(Deserialize)]
struct GhLabel {
    name: String,
}

#[derive(Deserialize)]
struct GhIssue {
    number: u64,
    title: String,
    html_url: String,
    user: GhUser,
    body: Option<String>,
    #[serde(default)]
    labels: Vec<GhLabel>,
}

impl GhIssue {
    fn into_issue(self) -> Issue {
        Issue {
            number: self.number,
            title: self.title,
            url: self.html_url,
            author: self.user.into_user(),
            body: self.body.unwrap_or_default(),
            labels: self.labels.into_iter().map(|l| l.name).collect(),
        }
    }
}

#[derive(Deserialize)]
struct IssuesPayload {
    issue: GhIssue,
    repository: GhRepo,
    sender: GhUser,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../shared/fixtures/github/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    #[test]
    fn issues_opened_becomes_an_issue_opened_event() {
        let parsed =
            normalize("issues", ContentType::Json, &fixture("issues.opened.json")).unwrap();
        assert_eq!(parsed.action.as_deref(), Some("opened"));
        assert_eq!(parsed.repo.as_deref(), Some("Codertocat/Hello-World"));
        let codertocat = User {
            login: "Codertocat".into(),
            url: "https://github.com/Codertocat".into(),
            is_bot: false,
        };
        assert_eq!(
            parsed.normalized,
            Normalized::Event(Box::new(Event {
                name: "issues".into(),
                action: Some("opened".into()),
                repo: Repo {
                    full_name: "Codertocat/Hello-World".into(),
                    url: "https://github.com/Codertocat/Hello-World".into(),
                },
                actor: codertocat.clone(),
                kind: Kind::IssueOpened(Issue {
                    number: 1,
                    title: "Spelling error in the README file".into(),
                    url: "https://github.com/Codertocat/Hello-World/issues/1".into(),
                    author: codertocat,
                    body: "It looks like you accidently spelled 'commit' with two 't's.".into(),
                    labels: vec!["bug".into()],
                }),
            }))
        );
    }

    #[test]
    fn ping_is_skipped_as_ping() {
        let parsed = normalize("ping", ContentType::Json, &fixture("ping.json")).unwrap();
        assert_eq!(parsed.normalized, Normalized::Skip("ping".into()));
    }

    #[test]
    fn events_not_yet_supported_are_skipped_with_event_and_action() {
        let parsed =
            normalize("issues", ContentType::Json, &fixture("issues.edited.json")).unwrap();
        assert_eq!(parsed.normalized, Normalized::Skip("unsupported: issues.edited".into()));
        let parsed = normalize("fork", ContentType::Json, &fixture("fork.json")).unwrap();
        assert_eq!(parsed.normalized, Normalized::Skip("unsupported: fork".into()));
        let parsed = normalize("made_up", ContentType::Json, b"{}").unwrap();
        assert_eq!(
            parsed,
            Parsed {
                action: None,
                repo: None,
                normalized: Normalized::Skip("unsupported: made_up".into())
            }
        );
    }

    #[test]
    fn a_form_body_yields_the_same_event_as_json() {
        let json = fixture("issues.opened.json");
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", std::str::from_utf8(&json).unwrap())
            .finish();
        let from_form = normalize("issues", ContentType::Form, form.as_bytes()).unwrap();
        let from_json = normalize("issues", ContentType::Json, &json).unwrap();
        assert_eq!(from_form, from_json);
    }

    #[test]
    fn a_null_issue_body_becomes_empty() {
        let mut json: serde_json::Value =
            serde_json::from_slice(&fixture("issues.opened.json")).unwrap();
        json["issue"]["body"] = serde_json::Value::Null;
        let bytes = serde_json::to_vec(&json).unwrap();
        let parsed = normalize("issues", ContentType::Json, &bytes).unwrap();
        let Normalized::Event(event) = parsed.normalized else {
            panic!("expected an event, got {:?}", parsed.normalized);
        };
        match &event.kind {
            Kind::IssueOpened(issue) => assert_eq!(issue.body, ""),
        }
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused() {
        for body in [&b""[..], b"[]", b"\"text\"", b"{", b"\xff\xfe", b"null"] {
            assert!(
                matches!(payload(ContentType::Json, body), Err(PayloadError::NotAnObject(_))),
                "{body:?}"
            );
        }
        assert_eq!(payload(ContentType::Form, b"other=1"), Err(PayloadError::MissingFormPayload));
    }

    #[test]
    fn an_issue_payload_without_an_issue_is_a_shape_error() {
        let got = normalize("issues", ContentType::Json, br#"{"action":"opened"}"#);
        assert!(matches!(got, Err(PayloadError::Shape(_))), "{got:?}");
    }

    #[test]
    fn content_types_are_read_without_parameters() {
        assert_eq!(
            ContentType::from_header(Some("application/json; charset=utf-8")),
            Ok(ContentType::Json)
        );
        assert_eq!(
            ContentType::from_header(Some("Application/X-WWW-Form-Urlencoded")),
            Ok(ContentType::Form)
        );
        assert_eq!(ContentType::from_header(None), Ok(ContentType::Json));
        assert!(ContentType::from_header(Some("text/plain")).is_err());
    }
}
