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

use crate::event::{
    CloseReason, Comment, Commit, Event, Issue, IssueChange, Kind, PullRequest, PullRequestChange,
    Push, RefType, Release, Repo, Review, ReviewState, Reviewer, User,
};

/// The events and actions [`normalize`] turns into [`Event`]s; anything else is skipped as
/// unsupported. Routes are checked against this list. An empty action list: the event has none.
pub const SUPPORTED: &[(&str, &[&str])] = &[
    (
        "issues",
        &[
            "opened",
            "closed",
            "reopened",
            "assigned",
            "unassigned",
            "labeled",
            "unlabeled",
            "edited",
        ],
    ),
    ("issue_comment", &["created"]),
    (
        "pull_request",
        &[
            "opened",
            "closed",
            "reopened",
            "review_requested",
            "ready_for_review",
            "converted_to_draft",
            "synchronize",
        ],
    ),
    ("pull_request_review", &["submitted"]),
    ("star", &["created", "deleted"]),
    ("watch", &["started"]),
    ("fork", &[]),
    ("release", &["published"]),
    ("push", &[]),
    ("create", &[]),
    ("delete", &[]),
];

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
    /// Something worth showing in the delivery log, such as a ping's zen.
    pub note: Option<String>,
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

    /// Reads back what [`ContentType::as_str`] stored.
    pub fn from_stored(value: &str) -> ContentType {
        if value == ContentType::Form.as_str() { ContentType::Form } else { ContentType::Json }
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
    let json = json_of(content_type, body)?;
    // serde_json does not check the UTF-8 of strings it skips, nor the depth of what it skips,
    // so check both over the whole text first.
    std::str::from_utf8(&json)
        .map_err(|e| PayloadError::NotAnObject(format!("invalid UTF-8: {e}")))?;
    if nesting_exceeds(&json, MAX_DEPTH) {
        return Err(PayloadError::NotAnObject(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    serde_json::from_slice::<HashMap<Cow<str>, IgnoredAny>>(&json)
        .map_err(|e| PayloadError::NotAnObject(e.to_string()))?;
    Ok(json)
}

/// The JSON inside a body, unchecked: the body itself, or a form's `payload` field.
fn json_of(content_type: ContentType, body: &[u8]) -> Result<Cow<'_, [u8]>, PayloadError> {
    Ok(match content_type {
        ContentType::Json => Cow::Borrowed(body),
        ContentType::Form => form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| Cow::Owned(value.into_owned().into_bytes()))
            .ok_or(PayloadError::MissingFormPayload)?,
    })
}

/// The deepest nesting of arrays and objects accepted. GitHub's payloads nest about 6 deep.
const MAX_DEPTH: usize = 64;

/// Whether `json` nests arrays and objects deeper than `max`. Brackets inside strings don't
/// count. A linear scan, so a hostile body can't make parsing recurse.
fn nesting_exceeds(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Turns a stored delivery into an [`Event`] or a skip. Fails only on a body that is not a
/// payload, or a known event whose payload lacks fields it must have.
pub fn normalize(
    event: &str,
    content_type: ContentType,
    body: &[u8],
) -> Result<Parsed, PayloadError> {
    // The receiver checked the payload before storing it; parsing it into the envelope still
    // refuses anything that is not an object.
    let json = json_of(content_type, body)?;
    let envelope: Envelope = parse(&json)?;
    let action = envelope.action.clone();
    let repo = envelope.repository.as_ref().map(|r| r.full_name.clone());
    let mut note = None;
    let normalized = if event == "ping" {
        note = envelope.zen.map(|zen| format!("zen: {zen}"));
        Normalized::Skip("ping".to_string())
    } else {
        match kind(event, action.as_deref(), &envelope, &json)? {
            Some(kind) => Normalized::Event(Box::new(Event {
                name: event.to_string(),
                action: action.clone(),
                repo: required(envelope.repository, "repository")?.into_repo(),
                actor: required(envelope.sender, "sender")?.into_user(),
                kind,
            })),
            None => Normalized::Skip(match &action {
                Some(action) => format!("unsupported: {event}.{action}"),
                None => format!("unsupported: {event}"),
            }),
        }
    };
    Ok(Parsed { action, repo, note, normalized })
}

/// The [`Kind`] of a supported event and action; `None` for anything else.
fn kind(
    event: &str,
    action: Option<&str>,
    envelope: &Envelope,
    json: &[u8],
) -> Result<Option<Kind>, PayloadError> {
    Ok(Some(match (event, action) {
        ("issues", Some(action)) => {
            let p: IssuesPayload = parse(json)?;
            let change = match action {
                "opened" => IssueChange::Opened,
                "closed" => IssueChange::Closed(match p.issue.state_reason.as_deref() {
                    Some("completed") => CloseReason::Completed,
                    Some("not_planned") => CloseReason::NotPlanned,
                    other => CloseReason::Other(other.map(str::to_string)),
                }),
                "reopened" => IssueChange::Reopened,
                "assigned" => IssueChange::Assigned(required(p.assignee, "assignee")?.into_user()),
                "unassigned" => {
                    IssueChange::Unassigned(required(p.assignee, "assignee")?.into_user())
                }
                "labeled" => IssueChange::Labeled(required(p.label, "label")?.name),
                "unlabeled" => IssueChange::Unlabeled(required(p.label, "label")?.name),
                "edited" => IssueChange::Edited,
                _ => return Ok(None),
            };
            Kind::Issue { issue: p.issue.into_issue(), change }
        }
        ("issue_comment", Some("created")) => {
            let p: IssueCommentPayload = parse(json)?;
            Kind::Comment {
                on_pull_request: p.issue.pull_request.is_some(),
                issue: p.issue.into_issue(),
                comment: Comment {
                    url: p.comment.html_url,
                    author: p.comment.user.into_user(),
                    body: p.comment.body.unwrap_or_default(),
                },
            }
        }
        ("pull_request", Some(action)) => {
            let p: PullRequestPayload = parse(json)?;
            let change = match action {
                "opened" => PullRequestChange::Opened,
                "closed" if p.pull_request.merged == Some(true) => PullRequestChange::Merged {
                    by: p.pull_request.merged_by.clone().map(GhUser::into_user),
                },
                "closed" => PullRequestChange::Closed,
                "reopened" => PullRequestChange::Reopened,
                "review_requested" => PullRequestChange::ReviewRequested(
                    match (p.requested_reviewer, p.requested_team) {
                        (Some(user), _) => Reviewer::User(user.into_user()),
                        (None, Some(team)) => {
                            Reviewer::Team { name: team.name, url: team.html_url }
                        }
                        (None, None) => {
                            return Err(missing("requested_reviewer or requested_team"));
                        }
                    },
                ),
                "ready_for_review" => PullRequestChange::ReadyForReview,
                "converted_to_draft" => PullRequestChange::ConvertedToDraft,
                "synchronize" => PullRequestChange::Synchronized {
                    before: p.before.unwrap_or_default(),
                    after: p.after.unwrap_or_default(),
                },
                _ => return Ok(None),
            };
            Kind::PullRequest { pr: p.pull_request.into_pull_request(), change }
        }
        ("pull_request_review", Some("submitted")) => {
            let p: ReviewPayload = parse(json)?;
            let state = match p.review.state.to_ascii_lowercase().as_str() {
                "approved" => ReviewState::Approved,
                "changes_requested" => ReviewState::ChangesRequested,
                "commented" => ReviewState::Commented,
                "dismissed" => ReviewState::Dismissed,
                other => ReviewState::Other(other.to_string()),
            };
            Kind::Review {
                pr: p.pull_request.into_pull_request(),
                review: Review {
                    url: p.review.html_url,
                    author: p.review.user.into_user(),
                    state,
                    body: p.review.body.unwrap_or_default(),
                },
            }
        }
        ("star", Some("created" | "deleted")) | ("watch", Some("started")) => {
            let stars = envelope.repository.as_ref().and_then(|r| r.stargazers_count);
            Kind::Star { starred: action != Some("deleted"), stars }
        }
        ("fork", _) => {
            let p: ForkPayload = parse(json)?;
            Kind::Fork {
                owner: p.forkee.owner.into_user(),
                fork: Repo { full_name: p.forkee.full_name, url: p.forkee.html_url },
            }
        }
        ("release", Some("published")) => {
            let r = parse::<ReleasePayload>(json)?.release;
            let name =
                r.name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| r.tag_name.clone());
            Kind::Release(Release {
                name,
                tag: r.tag_name,
                url: r.html_url,
                body: r.body.unwrap_or_default(),
                prerelease: r.prerelease,
            })
        }
        ("push", _) => {
            let p: PushPayload = parse(json)?;
            let (ref_type, ref_name) = split_ref(&p.git_ref);
            Kind::Push(Push {
                ref_name,
                ref_type,
                commits: p
                    .commits
                    .into_iter()
                    .map(|c| Commit {
                        title: c.message.lines().next().unwrap_or_default().to_string(),
                        id: c.id,
                        url: c.url,
                        author: c.author.map(|a| a.name).unwrap_or_default(),
                    })
                    .collect(),
                compare_url: p.compare.unwrap_or_default(),
                created: p.created,
                deleted: p.deleted,
                forced: p.forced,
            })
        }
        ("create" | "delete", _) => {
            let p: RefPayload = parse(json)?;
            let ref_type = match p.ref_type.as_str() {
                "tag" => RefType::Tag,
                "branch" => RefType::Branch,
                _ => return Ok(None),
            };
            Kind::Ref { created: event == "create", ref_type, name: p.git_ref }
        }
        _ => return Ok(None),
    }))
}

/// `refs/heads/main` → (branch, `main`); `refs/tags/v1` → (tag, `v1`).
fn split_ref(git_ref: &str) -> (RefType, String) {
    if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        (RefType::Tag, tag.to_string())
    } else {
        (RefType::Branch, git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref).to_string())
    }
}

fn parse<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, PayloadError> {
    serde_json::from_slice(json).map_err(|e| PayloadError::Shape(e.to_string()))
}

fn missing(field: &str) -> PayloadError {
    PayloadError::Shape(format!("missing field `{field}`"))
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, PayloadError> {
    value.ok_or_else(|| missing(field))
}

/// The fields every payload may have, all optional: the delivery log's summary, and the
/// where and who that every event we render needs.
#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
    repository: Option<GhRepo>,
    sender: Option<GhUser>,
    zen: Option<String>,
}

#[derive(Deserialize)]
struct GhRepo {
    full_name: String,
    html_url: Option<String>,
    stargazers_count: Option<u64>,
}

impl GhRepo {
    fn into_repo(self) -> Repo {
        let url = self.html_url.unwrap_or_else(|| format!("https://github.com/{}", self.full_name));
        Repo { full_name: self.full_name, url }
    }
}

#[derive(Deserialize, Clone)]
struct GhUser {
    login: String,
    html_url: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl GhUser {
    fn into_user(self) -> User {
        let is_bot = self.kind.as_deref() == Some("Bot") || self.login.ends_with("[bot]");
        let url = self.html_url.unwrap_or_else(|| format!("https://github.com/{}", self.login));
        User { login: self.login, url, is_bot }
    }
}

#[derive(Deserialize)]
struct GhLabel {
    name: String,
}

fn label_names(labels: Option<Vec<GhLabel>>) -> Vec<String> {
    labels.unwrap_or_default().into_iter().map(|l| l.name).collect()
}

#[derive(Deserialize)]
struct GhIssue {
    number: u64,
    title: String,
    html_url: String,
    user: GhUser,
    body: Option<String>,
    labels: Option<Vec<GhLabel>>,
    state_reason: Option<String>,
    /// Present (as an object) when the "issue" is a pull request.
    pull_request: Option<IgnoredAny>,
}

impl GhIssue {
    fn into_issue(self) -> Issue {
        Issue {
            number: self.number,
            title: self.title,
            url: self.html_url,
            author: self.user.into_user(),
            body: self.body.unwrap_or_default(),
            labels: label_names(self.labels),
        }
    }
}

#[derive(Deserialize)]
struct IssuesPayload {
    issue: GhIssue,
    assignee: Option<GhUser>,
    label: Option<GhLabel>,
}

#[derive(Deserialize)]
struct GhComment {
    html_url: String,
    user: GhUser,
    body: Option<String>,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    issue: GhIssue,
    comment: GhComment,
}

#[derive(Deserialize)]
struct GhBranch {
    #[serde(rename = "ref")]
    name: String,
}

#[derive(Deserialize)]
struct GhPullRequest {
    number: u64,
    title: String,
    html_url: String,
    user: GhUser,
    body: Option<String>,
    labels: Option<Vec<GhLabel>>,
    #[serde(default)]
    draft: Option<bool>,
    head: GhBranch,
    base: GhBranch,
    merged: Option<bool>,
    merged_by: Option<GhUser>,
}

impl GhPullRequest {
    fn into_pull_request(self) -> PullRequest {
        PullRequest {
            number: self.number,
            title: self.title,
            url: self.html_url,
            author: self.user.into_user(),
            body: self.body.unwrap_or_default(),
            labels: label_names(self.labels),
            draft: self.draft.unwrap_or(false),
            head: self.head.name,
            base: self.base.name,
        }
    }
}

#[derive(Deserialize)]
struct GhTeam {
    name: String,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    pull_request: GhPullRequest,
    requested_reviewer: Option<GhUser>,
    requested_team: Option<GhTeam>,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Deserialize)]
struct GhReview {
    html_url: String,
    user: GhUser,
    state: String,
    body: Option<String>,
}

#[derive(Deserialize)]
struct ReviewPayload {
    review: GhReview,
    pull_request: GhPullRequest,
}

#[derive(Deserialize)]
struct GhForkee {
    full_name: String,
    html_url: String,
    owner: GhUser,
}

#[derive(Deserialize)]
struct ForkPayload {
    forkee: GhForkee,
}

#[derive(Deserialize)]
struct GhRelease {
    name: Option<String>,
    tag_name: String,
    html_url: String,
    body: Option<String>,
    #[serde(default)]
    prerelease: bool,
}

#[derive(Deserialize)]
struct ReleasePayload {
    release: GhRelease,
}

#[derive(Deserialize)]
struct GhCommitAuthor {
    name: String,
}

#[derive(Deserialize)]
struct GhCommit {
    id: String,
    message: String,
    url: String,
    author: Option<GhCommitAuthor>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    commits: Vec<GhCommit>,
    compare: Option<String>,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
}

#[derive(Deserialize)]
struct RefPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    ref_type: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../shared/fixtures/github/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    /// The event a fixture normalizes to; the event name is the file name up to the first dot.
    fn event_of(body: &[u8], name: &str) -> Event {
        match normalize(name, ContentType::Json, body).unwrap().normalized {
            Normalized::Event(event) => *event,
            Normalized::Skip(reason) => panic!("{name} was skipped: {reason}"),
        }
    }

    fn event(file: &str) -> Event {
        event_of(&fixture(file), file.split('.').next().unwrap())
    }

    /// A fixture with `edit` applied to its JSON.
    fn edited(file: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut json: Value = serde_json::from_slice(&fixture(file)).unwrap();
        edit(&mut json);
        serde_json::to_vec(&json).unwrap()
    }

    fn codertocat() -> User {
        User {
            login: "Codertocat".into(),
            url: "https://github.com/Codertocat".into(),
            is_bot: false,
        }
    }

    #[test]
    fn issues_opened_becomes_an_issue_event() {
        let parsed =
            normalize("issues", ContentType::Json, &fixture("issues.opened.json")).unwrap();
        assert_eq!(parsed.action.as_deref(), Some("opened"));
        assert_eq!(parsed.repo.as_deref(), Some("Codertocat/Hello-World"));
        assert_eq!(
            parsed.normalized,
            Normalized::Event(Box::new(Event {
                name: "issues".into(),
                action: Some("opened".into()),
                repo: Repo {
                    full_name: "Codertocat/Hello-World".into(),
                    url: "https://github.com/Codertocat/Hello-World".into(),
                },
                actor: codertocat(),
                kind: Kind::Issue {
                    issue: Issue {
                        number: 1,
                        title: "Spelling error in the README file".into(),
                        url: "https://github.com/Codertocat/Hello-World/issues/1".into(),
                        author: codertocat(),
                        body: "It looks like you accidently spelled 'commit' with two 't's.".into(),
                        labels: vec!["bug".into()],
                    },
                    change: IssueChange::Opened,
                },
            }))
        );
    }

    fn issue_change(file: &str) -> IssueChange {
        match event(file).kind {
            Kind::Issue { change, .. } => change,
            other => panic!("{file}: {other:?}"),
        }
    }

    #[test]
    fn every_issue_action_is_told_apart() {
        assert_eq!(issue_change("issues.closed.json"), IssueChange::Closed(CloseReason::Completed));
        assert_eq!(issue_change("issues.reopened.json"), IssueChange::Reopened);
        assert_eq!(issue_change("issues.assigned.json"), IssueChange::Assigned(codertocat()));
        assert_eq!(issue_change("issues.labeled.json"), IssueChange::Labeled("bug".into()));
        assert_eq!(issue_change("issues.edited.json"), IssueChange::Edited);
        let not_planned =
            edited("issues.closed.json", |j| j["issue"]["state_reason"] = json!("not_planned"));
        let Kind::Issue { change, .. } = event_of(&not_planned, "issues").kind else { panic!() };
        assert_eq!(change, IssueChange::Closed(CloseReason::NotPlanned));
        let unlabeled = edited("issues.labeled.json", |j| j["action"] = json!("unlabeled"));
        let Kind::Issue { change, .. } = event_of(&unlabeled, "issues").kind else { panic!() };
        assert_eq!(change, IssueChange::Unlabeled("bug".into()));
    }

    fn pr_change(body: &[u8]) -> PullRequestChange {
        match event_of(body, "pull_request").kind {
            Kind::PullRequest { change, .. } => change,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merged_and_unmerged_closes_differ() {
        assert_eq!(pr_change(&fixture("pull_request.closed.json")), PullRequestChange::Closed);
        assert_eq!(
            pr_change(&fixture("pull_request.closed.merged.json")),
            PullRequestChange::Merged { by: Some(codertocat()) }
        );
    }

    #[test]
    fn review_requests_name_the_user_or_the_team() {
        let PullRequestChange::ReviewRequested(Reviewer::User(user)) =
            pr_change(&fixture("pull_request.review_requested.json"))
        else {
            panic!("expected a user review request")
        };
        assert_eq!(user.login, "octocat");
        assert_eq!(
            pr_change(&fixture("pull_request.review_requested.team.json")),
            PullRequestChange::ReviewRequested(Reviewer::Team {
                name: "Justice League".into(),
                url: Some("https://github.com/orgs/Octocoders/teams/justice-league".into()),
            })
        );
    }

    #[test]
    fn pull_request_fields_are_read() {
        let Kind::PullRequest { pr, change } = event("pull_request.opened.json").kind else {
            panic!()
        };
        assert_eq!(change, PullRequestChange::Opened);
        assert_eq!(
            (pr.number, pr.head.as_str(), pr.base.as_str(), pr.draft),
            (2, "changes", "master", false)
        );
        assert_eq!(pr.labels, vec!["bug"]);
        assert_eq!(
            pr_change(&fixture("pull_request.synchronize.json")),
            PullRequestChange::Synchronized {
                before: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
                after: "ec26c3e57ca3a959ca5aad62de7213c562f8c821".into(),
            }
        );
        assert_eq!(
            pr_change(&fixture("pull_request.ready_for_review.json")),
            PullRequestChange::ReadyForReview
        );
        assert_eq!(
            pr_change(&fixture("pull_request.converted_to_draft.json")),
            PullRequestChange::ConvertedToDraft
        );
        assert_eq!(pr_change(&fixture("pull_request.reopened.json")), PullRequestChange::Reopened);
    }

    #[test]
    fn a_comment_knows_whether_it_is_on_a_pull_request() {
        let Kind::Comment { on_pull_request, comment, .. } =
            event("issue_comment.created.json").kind
        else {
            panic!()
        };
        assert!(!on_pull_request);
        assert_eq!(comment.body, "You are totally right! I'll get this fixed right away.");
        let on_pr = edited("issue_comment.created.json", |j| {
            j["issue"]["pull_request"] = json!({"url": "x"})
        });
        let Kind::Comment { on_pull_request, .. } = event_of(&on_pr, "issue_comment").kind else {
            panic!()
        };
        assert!(on_pull_request);
    }

    #[test]
    fn review_states_are_read_in_either_case() {
        for (state, expected) in [
            ("approved", ReviewState::Approved),
            ("CHANGES_REQUESTED", ReviewState::ChangesRequested),
            ("commented", ReviewState::Commented),
        ] {
            let body = edited("pull_request_review.submitted.json", |j| {
                j["review"]["state"] = json!(state)
            });
            let Kind::Review { review, .. } = event_of(&body, "pull_request_review").kind else {
                panic!()
            };
            assert_eq!(review.state, expected);
            assert_eq!(review.body, "", "a null review body becomes empty");
        }
    }

    #[test]
    fn star_and_watch_are_the_same_star() {
        let star = event("star.created.json");
        let watch = event("watch.started.json");
        assert_eq!(star.kind, Kind::Star { starred: true, stars: Some(1) });
        assert_eq!(watch.kind, star.kind);
        assert_eq!(star.announcement_key(), watch.announcement_key());
        assert!(star.announcement_key().is_some());
        assert_eq!(event("star.deleted.json").kind, Kind::Star { starred: false, stars: Some(0) });
        assert_eq!(event("star.deleted.json").announcement_key(), None);
    }

    #[test]
    fn fork_release_push_and_refs() {
        assert_eq!(
            event("fork.json").kind,
            Kind::Fork {
                fork: Repo {
                    full_name: "Octocoders/Hello-World".into(),
                    url: "https://github.com/Octocoders/Hello-World".into()
                },
                owner: User {
                    login: "Octocoders".into(),
                    url: "https://github.com/Octocoders".into(),
                    is_bot: false
                },
            }
        );
        let Kind::Release(release) = event("release.published.json").kind else { panic!() };
        assert_eq!(
            (release.name.as_str(), release.tag.as_str()),
            ("0.0.1", "0.0.1"),
            "an empty name falls back to the tag"
        );
        let Kind::Push(push) = event("push.json").kind else { panic!() };
        assert_eq!(
            (push.ref_type, push.ref_name.as_str(), push.created, push.commits.len()),
            (RefType::Branch, "master", true, 1)
        );
        assert_eq!(push.commits[0].title, "Initial commit");
        assert_eq!(
            event("create.json").kind,
            Kind::Ref { created: true, ref_type: RefType::Tag, name: "simple-tag".into() }
        );
        assert_eq!(
            event("delete.json").kind,
            Kind::Ref { created: false, ref_type: RefType::Tag, name: "simple-tag".into() }
        );
    }

    #[test]
    fn a_tag_deletion_push_without_commits_or_head_commit_normalizes() {
        let body = edited("push.json", |j| {
            j["ref"] = json!("refs/tags/v1.0");
            j["deleted"] = json!(true);
            j["created"] = json!(false);
            j["commits"] = json!([]);
            j["head_commit"] = Value::Null;
            j["compare"] = Value::Null;
        });
        let Kind::Push(push) = event_of(&body, "push").kind else { panic!() };
        assert_eq!(
            (push.ref_type, push.ref_name.as_str(), push.deleted),
            (RefType::Tag, "v1.0", true)
        );
        assert!(push.commits.is_empty());
    }

    #[test]
    fn null_and_missing_optional_fields_normalize() {
        let body = edited("issues.opened.json", |j| {
            j["issue"]["body"] = Value::Null;
            j["issue"].as_object_mut().unwrap().remove("labels");
            j.as_object_mut().unwrap().remove("installation");
        });
        let Kind::Issue { issue, .. } = event_of(&body, "issues").kind else { panic!() };
        assert_eq!((issue.body.as_str(), issue.labels.len()), ("", 0));
        let body = edited("release.published.json", |j| j["release"]["name"] = Value::Null);
        let Kind::Release(release) = event_of(&body, "release").kind else { panic!() };
        assert_eq!(release.name, "0.0.1");
    }

    #[test]
    fn bots_are_recognized_by_type_or_login() {
        let by_type = edited("pull_request.opened.json", |j| j["sender"]["type"] = json!("Bot"));
        assert!(event_of(&by_type, "pull_request").actor.is_bot);
        let by_login =
            edited("pull_request.opened.json", |j| j["sender"]["login"] = json!("dependabot[bot]"));
        assert!(event_of(&by_login, "pull_request").actor.is_bot);
        assert!(!event("pull_request.opened.json").actor.is_bot);
    }

    #[test]
    fn supported_lists_exactly_what_the_fixtures_normalize_to() {
        let dir = format!("{}/../shared/fixtures/github", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            let Some(stem) = file.strip_suffix(".json") else { continue };
            let name = stem.split('.').next().unwrap();
            let parsed = normalize(name, ContentType::Json, &fixture(&file)).unwrap();
            let listed = SUPPORTED.iter().any(|(event, actions)| {
                *event == name
                    && match parsed.action.as_deref() {
                        Some(action) => actions.contains(&action),
                        None => actions.is_empty(),
                    }
            });
            let normalized = matches!(parsed.normalized, Normalized::Event(_));
            assert_eq!(
                listed, normalized,
                "{file}: listed in SUPPORTED {listed}, normalized {normalized}"
            );
        }
    }

    #[test]
    fn ping_is_skipped_as_ping_with_its_zen_noted() {
        let parsed = normalize("ping", ContentType::Json, &fixture("ping.json")).unwrap();
        assert_eq!(parsed.normalized, Normalized::Skip("ping".into()));
        assert_eq!(parsed.note.as_deref(), Some("zen: Anything added dilutes everything else."));
    }

    #[test]
    fn other_events_and_actions_are_skipped_as_unsupported() {
        let milestoned = edited("issues.opened.json", |j| j["action"] = json!("milestoned"));
        let parsed = normalize("issues", ContentType::Json, &milestoned).unwrap();
        assert_eq!(parsed.normalized, Normalized::Skip("unsupported: issues.milestoned".into()));
        let parsed = normalize("made_up", ContentType::Json, b"{}").unwrap();
        assert_eq!(
            parsed,
            Parsed {
                action: None,
                repo: None,
                note: None,
                normalized: Normalized::Skip("unsupported: made_up".into())
            }
        );
        let edited_comment =
            edited("issue_comment.created.json", |j| j["action"] = json!("edited"));
        let parsed = normalize("issue_comment", ContentType::Json, &edited_comment).unwrap();
        assert_eq!(parsed.normalized, Normalized::Skip("unsupported: issue_comment.edited".into()));
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
    fn a_payload_missing_what_its_event_needs_is_a_shape_error() {
        let got = normalize("issues", ContentType::Json, br#"{"action":"opened"}"#);
        assert!(matches!(got, Err(PayloadError::Shape(_))), "{got:?}");
        let no_assignee = edited("issues.assigned.json", |j| {
            j.as_object_mut().unwrap().remove("assignee");
        });
        let got = normalize("issues", ContentType::Json, &no_assignee);
        assert_eq!(got, Err(PayloadError::Shape("missing field `assignee`".into())));
        let no_sender = edited("issues.opened.json", |j| {
            j.as_object_mut().unwrap().remove("sender");
        });
        let got = normalize("issues", ContentType::Json, &no_sender);
        assert_eq!(got, Err(PayloadError::Shape("missing field `sender`".into())));
        // A payload we only skip needs neither.
        let parsed = normalize("made_up", ContentType::Json, br#"{"action":"x"}"#).unwrap();
        assert_eq!(parsed.normalized, Normalized::Skip("unsupported: made_up.x".into()));
    }

    #[test]
    fn nesting_is_measured_outside_strings() {
        assert!(!nesting_exceeds(br#"{"a":[{"b":"[[[[[["}]}"#, 3));
        assert!(nesting_exceeds(br#"{"a":[{"b":[1]}]}"#, 3));
        assert!(!nesting_exceeds(br#"{"a":"\"[[[[\""}"#, 1));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(
            payload(ContentType::Json, deep.as_bytes()),
            Err(PayloadError::NotAnObject(_))
        ));
        for file in ["pull_request_review.submitted.json", "push.json", "fork.json"] {
            assert!(payload(ContentType::Json, &fixture(file)).is_ok(), "{file}");
        }
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
