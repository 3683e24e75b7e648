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
    Issue {
        issue: Issue,
        change: IssueChange,
    },
    /// A comment on an issue or, when `on_pull_request`, on a pull request's conversation.
    Comment {
        issue: Issue,
        on_pull_request: bool,
        comment: Comment,
    },
    PullRequest {
        pr: PullRequest,
        change: PullRequestChange,
    },
    Review {
        pr: PullRequest,
        review: Review,
    },
    /// Starred (`star` created, or `watch` started, GitHub's legacy name for it) or unstarred.
    Star {
        starred: bool,
        stars: Option<u64>,
    },
    Fork {
        fork: Repo,
        owner: User,
    },
    Release(Release),
    Push(Push),
    /// A branch or tag was created or deleted (`create` and `delete` events).
    Ref {
        created: bool,
        ref_type: RefType,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueChange {
    Opened,
    Closed(CloseReason),
    Reopened,
    Assigned(User),
    Unassigned(User),
    Labeled(String),
    Unlabeled(String),
    Edited,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    Completed,
    NotPlanned,
    /// No reason given, or one we don't know (kept for the message).
    Other(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRequestChange {
    Opened,
    /// Closed with `merged: true`. `by` is who merged it, when GitHub says.
    Merged {
        by: Option<User>,
    },
    /// Closed without merging.
    Closed,
    Reopened,
    ReviewRequested(Reviewer),
    ReadyForReview,
    ConvertedToDraft,
    /// New commits were pushed to the head branch.
    Synchronized {
        before: String,
        after: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewer {
    User(User),
    Team { name: String, url: Option<String> },
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
    /// A GitHub App or bot account (`type: "Bot"`, or a login ending in `[bot]`).
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    pub url: String,
    pub author: User,
    pub body: String,
    pub labels: Vec<String>,
    pub draft: bool,
    /// The branch the changes come from.
    pub head: String,
    /// The branch they go into.
    pub base: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub url: String,
    pub author: User,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub url: String,
    pub author: User,
    pub state: ReviewState,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The release's name, or its tag when it has none.
    pub name: String,
    pub tag: String,
    pub url: String,
    pub body: String,
    pub prerelease: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The branch or tag name, without `refs/heads/` or `refs/tags/`.
    pub ref_name: String,
    pub ref_type: RefType,
    /// The commits GitHub listed (it lists at most 20), oldest first.
    pub commits: Vec<Commit>,
    /// GitHub's compare (or commit) link for the push.
    pub compare_url: String,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    /// The first line of the message.
    pub title: String,
    pub url: String,
    pub author: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    Branch,
    Tag,
}

impl RefType {
    pub fn as_str(self) -> &'static str {
        match self {
            RefType::Branch => "branch",
            RefType::Tag => "tag",
        }
    }
}

impl Event {
    /// The branch routes' `branches` match: a pull request's base, a pushed branch, or a created
    /// or deleted branch. `None` for tags and events without a branch.
    pub fn branch(&self) -> Option<&str> {
        match &self.kind {
            Kind::PullRequest { pr, .. } | Kind::Review { pr, .. } => Some(&pr.base),
            Kind::Push(push) if push.ref_type == RefType::Branch => Some(&push.ref_name),
            Kind::Ref { ref_type: RefType::Branch, name, .. } => Some(name),
            _ => None,
        }
    }

    /// The labels of the issue or pull request the event is about.
    pub fn labels(&self) -> &[String] {
        match &self.kind {
            Kind::Issue { issue, .. } | Kind::Comment { issue, .. } => &issue.labels,
            Kind::PullRequest { pr, .. } | Kind::Review { pr, .. } => &pr.labels,
            _ => &[],
        }
    }

    /// Logins routes' `authors` match: the sender, and the author of the issue or pull request
    /// the event is about when that is someone else.
    pub fn people(&self) -> Vec<&str> {
        let author = match &self.kind {
            Kind::Issue { issue, .. } | Kind::Comment { issue, .. } => Some(&issue.author),
            Kind::PullRequest { pr, .. } | Kind::Review { pr, .. } => Some(&pr.author),
            _ => None,
        };
        let mut people = vec![self.actor.login.as_str()];
        if let Some(author) = author.filter(|a| a.login != self.actor.login) {
            people.push(&author.login);
        }
        people
    }

    /// Whether the pull request the event is about is a draft; `None` if it is not about one.
    pub fn draft(&self) -> Option<bool> {
        match &self.kind {
            Kind::PullRequest { pr, .. } | Kind::Review { pr, .. } => Some(pr.draft),
            _ => None,
        }
    }

    /// Two deliveries with the same key announce the same thing, and only the first is posted.
    /// GitHub sends `watch` started alongside `star` created for one star.
    pub fn announcement_key(&self) -> Option<String> {
        match &self.kind {
            Kind::Star { starred: true, .. } => {
                Some(format!("starred {} by {}", self.repo.full_name, self.actor.login))
            }
            _ => None,
        }
    }
}
