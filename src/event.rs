//! Our own description of what happened on GitHub, with nothing GitHub- or Slack-shaped in it.
//!
//! [`crate::github`] builds an [`Event`] from a payload; [`crate::rules`] routes it and
//! [`crate::render`] turns it into a message. Supporting a new kind of event takes a variant of
//! [`Kind`], an arm in `github.rs` and a case in `render.rs`.
//!
//! Text in an `Event` is exactly as GitHub sent it: untrusted, unescaped. Escaping is the
//! renderer's job, because only it knows the target format.

/// One normalized event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The GitHub event name (`X-GitHub-Event`), which routes match on.
    pub name: String,
    /// The payload's `action`, for events that have one; routes match on it too.
    pub action: Option<String>,
    pub repo: Repo,
    /// Who did it (the webhook's sender).
    pub actor: User,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    IssueOpened(Issue),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// `owner/name`.
    pub full_name: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub login: String,
    pub url: String,
    pub is_bot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub url: String,
    pub author: User,
    /// Empty when the issue has no description.
    pub body: String,
    pub labels: Vec<String>,
}
