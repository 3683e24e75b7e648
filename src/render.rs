//! [`Event`] → Slack message: the only module that knows Slack's JSON shape.
//!
//! Every message has Block Kit `blocks` and a `text` fallback, which Slack shows in notifications
//! and on clients that can't draw blocks. Both are built from one list of `Piece`s per event,
//! so they always say the same thing: `text` reads `[owner/repo] who did what: title`, and the
//! first block says the same with links, followed by a short quote where one helps (an issue's
//! description, a comment, a review) and a context line (repository, branches, labels).
//!
//! # Escaping
//!
//! Everything from GitHub is untrusted. Slack's mrkdwn gives `<`, `>` and `&` control meaning
//! (`<!channel>`, `<@U123>`, `<url|label>`), so [`escape`] replaces them in every piece of GitHub
//! text, in `text` as much as in blocks, and we never set `link_names`. An issue titled
//! `<!channel>` then arrives as the literal text and pings nobody. `|` in a URL would end it
//! early, so URLs have it percent-encoded.
//!
//! # Limits
//!
//! Slack refuses a message with a section or context text over 3000 characters, or over 50
//! blocks. Untrusted text is cut before escaping (titles and names to a length that keeps a line
//! readable, quotes to their first paragraph and [`EXCERPT_MAX`] characters), at a character
//! boundary with an ellipsis, so a message has at most three blocks and no text near the limit;
//! `fit` is the last guard, and cuts only between whole entities and links.

use serde_json::{Value, json};

use crate::event::{
    CloseReason, Event, Issue, IssueChange, Kind, PullRequest, PullRequestChange, Push, RefType,
    ReviewState, Reviewer, User,
};

/// Slack's limit on a section's or a context element's text.
pub const SECTION_TEXT_MAX: usize = 3000;
/// How much of a description, comment or review is quoted.
pub const EXCERPT_MAX: usize = 300;
/// Issue and pull-request titles, commit titles.
const TITLE_MAX: usize = 200;
/// Logins, labels, branches, tags, repository and team names.
const NAME_MAX: usize = 100;
/// Commits listed for a push; the rest are counted.
const COMMITS_SHOWN: usize = 5;
/// Labels shown in the context line.
const LABELS_SHOWN: usize = 10;

/// A rendered message: Slack's fallback `text` and Block Kit `blocks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl Message {
    /// The JSON body of an incoming-webhook request.
    pub fn to_json(&self) -> Value {
        json!({ "text": self.text, "blocks": self.blocks })
    }
}

/// A piece of a sentence, rendered to plain text (for `text`) or to mrkdwn (for blocks).
/// Text in any piece is raw; rendering escapes it.
enum Piece {
    Text(String),
    /// A person, bold and linked in mrkdwn.
    User(User),
    /// An issue or pull request: `<url|#N title> NOTE` in mrkdwn, `#N NOTE: title` in plain
    /// text, where the optional note (`as completed`, `into main`) qualifies what happened.
    Subject {
        url: String,
        number: u64,
        title: String,
        note: Vec<Piece>,
    },
    Link {
        url: String,
        label: String,
    },
    /// A branch, tag or label: in backticks in mrkdwn.
    Code(String),
}

fn text(s: impl Into<String>) -> Piece {
    Piece::Text(s.into())
}

fn code(s: &str) -> Piece {
    Piece::Code(cut(s, NAME_MAX))
}

fn user(u: &User) -> Piece {
    Piece::User(User { login: cut(&u.login, NAME_MAX), ..u.clone() })
}

fn link(url: &str, label: &str) -> Piece {
    Piece::Link { url: url.to_string(), label: cut(label, TITLE_MAX) }
}

fn plain(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) | Piece::Code(t) | Piece::Link { label: t, .. } => escape(t),
            Piece::User(u) => escape(&u.login),
            Piece::Subject { number, title, note, .. } => {
                format!("#{number}{}: {}", plain(note), escape(title))
            }
        })
        .collect()
}

fn mrkdwn(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => escape(t),
            Piece::Code(t) => format!("`{}`", escape(t)),
            Piece::User(u) => format!("*{}*", mrkdwn_link(&u.url, &u.login)),
            Piece::Link { url, label } => mrkdwn_link(url, label),
            Piece::Subject { url, number, title, note } => {
                format!("{}{}", mrkdwn_link(url, &format!("#{number} {title}")), mrkdwn(note))
            }
        })
        .collect()
}

/// What a message says, before it is laid out.
struct Draft {
    sentence: Vec<Piece>,
    /// Whether the sentence names the repository already, so `text` needs no `[owner/repo]`.
    names_repo: bool,
    /// Raw text to quote under the sentence (first paragraph, cut).
    quote: Option<String>,
    /// Extra mrkdwn lines under the sentence (already escaped).
    lines: Vec<String>,
    /// Context pieces after the repository link.
    context: Vec<Vec<Piece>>,
}

impl Draft {
    fn new(sentence: Vec<Piece>) -> Draft {
        Draft { sentence, names_repo: false, quote: None, lines: Vec::new(), context: Vec::new() }
    }

    fn quote(mut self, body: &str) -> Draft {
        let excerpt = first_paragraph(body);
        if !excerpt.is_empty() {
            self.quote = Some(cut(excerpt, EXCERPT_MAX));
        }
        self
    }

    fn context(mut self, pieces: Vec<Piece>) -> Draft {
        self.context.push(pieces);
        self
    }

    fn labels(self, labels: &[String]) -> Draft {
        if labels.is_empty() {
            return self;
        }
        let mut pieces = Vec::new();
        for (i, label) in labels.iter().take(LABELS_SHOWN).enumerate() {
            if i > 0 {
                pieces.push(text(" "));
            }
            pieces.push(code(label));
        }
        if labels.len() > LABELS_SHOWN {
            pieces.push(text(format!(" +{} more", labels.len() - LABELS_SHOWN)));
        }
        self.context(pieces)
    }
}

/// Renders `event` for Slack.
pub fn message(event: &Event) -> Message {
    let draft = draft(event);
    let mut fallback = plain(&draft.sentence);
    if !draft.names_repo {
        fallback = format!("[{}] {fallback}", escape(&cut(&event.repo.full_name, NAME_MAX)));
    }
    let mut section = mrkdwn(&draft.sentence);
    for line in &draft.lines {
        section.push('\n');
        section.push_str(line);
    }
    if let Some(quote) = &draft.quote {
        section.push('\n');
        section.push_str(&quote_lines(quote));
    }
    let mut context = vec![mrkdwn_link(&event.repo.url, &cut(&event.repo.full_name, NAME_MAX))];
    context.extend(draft.context.iter().map(|pieces| mrkdwn(pieces)));
    Message {
        text: fallback,
        blocks: vec![
            json!({ "type": "section", "text": { "type": "mrkdwn", "text": fit(&section) } }),
            json!({
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": fit(&context.join(" · ")) }],
            }),
        ],
    }
}

fn draft(event: &Event) -> Draft {
    let actor = user(&event.actor);
    match &event.kind {
        Kind::Issue { issue, change } => issue_draft(actor, issue, change),
        Kind::Comment { issue, on_pull_request, comment } => {
            let noun = if *on_pull_request { "pull request" } else { "issue" };
            Draft::new(vec![
                user(&comment.author),
                text(format!(" commented on {noun} ")),
                subject_issue(issue),
            ])
            .quote(&comment.body)
            .context(vec![link(&comment.url, "View comment")])
        }
        Kind::PullRequest { pr, change } => pull_request_draft(actor, pr, change),
        Kind::Review { pr, review } => {
            let verb = match &review.state {
                ReviewState::Approved => " approved pull request ".to_string(),
                ReviewState::ChangesRequested => " requested changes on pull request ".to_string(),
                ReviewState::Commented => " reviewed pull request ".to_string(),
                ReviewState::Dismissed => " had a review dismissed on pull request ".to_string(),
                ReviewState::Other(state) => {
                    format!(" reviewed ({}) pull request ", cut(state, NAME_MAX))
                }
            };
            Draft::new(vec![user(&review.author), text(verb), subject_pr(pr)])
                .quote(&review.body)
                .context(vec![link(&review.url, "View review")])
                .context(branches(pr))
        }
        Kind::Star { starred, stars } => {
            let verb = if *starred { " starred " } else { " unstarred " };
            let mut draft =
                Draft::new(vec![actor, text(verb), link(&event.repo.url, &event.repo.full_name)]);
            draft.names_repo = true;
            match stars {
                Some(1) => draft.context(vec![text("★ 1 star")]),
                Some(n) => draft.context(vec![text(format!("★ {n} stars"))]),
                None => draft,
            }
        }
        Kind::Fork { fork, owner } => {
            let mut draft = Draft::new(vec![
                user(owner),
                text(" forked "),
                link(&event.repo.url, &event.repo.full_name),
                text(" to "),
                link(&fork.url, &fork.full_name),
            ]);
            draft.names_repo = true;
            draft
        }
        Kind::Release(release) => {
            let mut sentence =
                vec![actor, text(" published release "), link(&release.url, &release.name)];
            if release.prerelease {
                sentence.push(text(" (pre-release)"));
            }
            Draft::new(sentence)
                .quote(&release.body)
                .context(vec![text("tag "), code(&release.tag)])
        }
        Kind::Push(push) => push_draft(actor, push),
        Kind::Ref { created, ref_type, name } => {
            let verb = if *created { " created " } else { " deleted " };
            Draft::new(vec![actor, text(verb), text(format!("{} ", ref_type.as_str())), code(name)])
        }
    }
}

fn subject_issue(issue: &Issue) -> Piece {
    subject_with(&issue.url, issue.number, &issue.title, vec![])
}

fn subject_pr(pr: &PullRequest) -> Piece {
    subject_with(&pr.url, pr.number, &pr.title, vec![])
}

fn subject_with(url: &str, number: u64, title: &str, note: Vec<Piece>) -> Piece {
    Piece::Subject { url: url.to_string(), number, title: cut(title, TITLE_MAX), note }
}

fn issue_draft(actor: Piece, issue: &Issue, change: &IssueChange) -> Draft {
    let (before, note): (Vec<Piece>, Vec<Piece>) = match change {
        IssueChange::Opened => (vec![text(" opened issue ")], vec![]),
        IssueChange::Closed(CloseReason::Completed) => {
            (vec![text(" closed issue ")], vec![text(" as completed")])
        }
        IssueChange::Closed(CloseReason::NotPlanned) => {
            (vec![text(" closed issue ")], vec![text(" as not planned")])
        }
        IssueChange::Closed(CloseReason::Other(_)) => (vec![text(" closed issue ")], vec![]),
        IssueChange::Reopened => (vec![text(" reopened issue ")], vec![]),
        IssueChange::Assigned(who) => {
            (vec![text(" assigned "), user(who), text(" to issue ")], vec![])
        }
        IssueChange::Unassigned(who) => {
            (vec![text(" unassigned "), user(who), text(" from issue ")], vec![])
        }
        IssueChange::Labeled(label) => {
            (vec![text(" added label "), code(label), text(" to issue ")], vec![])
        }
        IssueChange::Unlabeled(label) => {
            (vec![text(" removed label "), code(label), text(" from issue ")], vec![])
        }
        IssueChange::Edited => (vec![text(" edited issue ")], vec![]),
    };
    let mut sentence = vec![actor];
    sentence.extend(before);
    sentence.push(subject_with(&issue.url, issue.number, &issue.title, note));
    let draft = Draft::new(sentence);
    let draft = if *change == IssueChange::Opened { draft.quote(&issue.body) } else { draft };
    draft.labels(&issue.labels)
}

fn pull_request_draft(actor: Piece, pr: &PullRequest, change: &PullRequestChange) -> Draft {
    let (who, before, note): (Piece, Vec<Piece>, Vec<Piece>) = match change {
        PullRequestChange::Opened if pr.draft => {
            (actor, vec![text(" opened draft pull request ")], vec![])
        }
        PullRequestChange::Opened => (actor, vec![text(" opened pull request ")], vec![]),
        PullRequestChange::Merged { by } => (
            by.as_ref().map(user).unwrap_or(actor),
            vec![text(" merged pull request ")],
            vec![text(" into "), code(&pr.base)],
        ),
        PullRequestChange::Closed => {
            (actor, vec![text(" closed pull request ")], vec![text(" without merging")])
        }
        PullRequestChange::Reopened => (actor, vec![text(" reopened pull request ")], vec![]),
        PullRequestChange::ReviewRequested(reviewer) => {
            let mut before = vec![text(" requested a review from ")];
            match reviewer {
                Reviewer::User(who) => before.push(user(who)),
                Reviewer::Team { name, url: Some(url) } => {
                    before.extend([text("team "), link(url, name)])
                }
                Reviewer::Team { name, url: None } => {
                    before.extend([text("team "), text(cut(name, NAME_MAX))])
                }
            }
            before.push(text(" on pull request "));
            (actor, before, vec![])
        }
        PullRequestChange::ReadyForReview => {
            (actor, vec![text(" marked pull request ")], vec![text(" as ready for review")])
        }
        PullRequestChange::ConvertedToDraft => {
            (actor, vec![text(" converted pull request ")], vec![text(" to a draft")])
        }
        PullRequestChange::Synchronized { .. } => {
            (actor, vec![text(" pushed new commits to pull request ")], vec![])
        }
    };
    let mut sentence = vec![who];
    sentence.extend(before);
    sentence.push(subject_with(&pr.url, pr.number, &pr.title, note));
    let mut draft = Draft::new(sentence);
    if *change == PullRequestChange::Opened {
        draft = draft.quote(&pr.body);
    }
    if let PullRequestChange::Synchronized { before, after } = change
        && let Some(url) = compare_url(pr, before, after)
    {
        draft = draft.context(vec![link(&url, "Compare changes")]);
    }
    draft.context(branches(pr)).labels(&pr.labels)
}

/// `head → base`, and whether it is a draft.
fn branches(pr: &PullRequest) -> Vec<Piece> {
    let mut pieces = vec![code(&pr.head), text(" → "), code(&pr.base)];
    if pr.draft {
        pieces.push(text(" (draft)"));
    }
    pieces
}

/// GitHub's compare view between two commits, when both are plain commit ids.
fn compare_url(pr: &PullRequest, before: &str, after: &str) -> Option<String> {
    let is_sha =
        |s: &str| s.len() >= 7 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let base = pr.url.rsplit_once("/pull/")?.0;
    (is_sha(before) && is_sha(after)).then(|| format!("{base}/compare/{before}...{after}"))
}

fn push_draft(actor: Piece, push: &Push) -> Draft {
    let name = code(&push.ref_name);
    let kind = push.ref_type.as_str();
    if push.deleted {
        return Draft::new(vec![actor, text(format!(" deleted {kind} ")), name]);
    }
    if push.ref_type == RefType::Tag {
        let sentence = vec![actor, text(" pushed tag "), name];
        return Draft::new(sentence).context(vec![link(&push.compare_url, "View")]);
    }
    let count = push.commits.len();
    let commits = if count == 1 { "1 commit".to_string() } else { format!("{count} commits") };
    let verb = if push.forced { " force-pushed " } else { " pushed " };
    let target = if push.created { " to new branch " } else { " to " };
    let counted =
        if push.compare_url.is_empty() { text(commits) } else { link(&push.compare_url, &commits) };
    let mut draft = Draft::new(vec![actor, text(verb), counted, text(target), name]);
    for commit in push.commits.iter().rev().take(COMMITS_SHOWN) {
        let short: String = commit.id.chars().take(7).collect();
        let mut line = vec![
            text("• "),
            link(&commit.url, &short),
            text(" "),
            text(cut(&commit.title, TITLE_MAX)),
        ];
        if !commit.author.is_empty() {
            line.push(text(format!(" — {}", cut(&commit.author, NAME_MAX))));
        }
        draft.lines.push(mrkdwn(&line));
    }
    if count > COMMITS_SHOWN {
        draft.lines.push(format!("… and {} more", count - COMMITS_SHOWN));
    }
    draft
}

/// Escapes the three characters that have control meaning in Slack's mrkdwn.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `<url|label>`, both escaped, with `|` percent-encoded in the URL so it can't end it early.
fn mrkdwn_link(url: &str, label: &str) -> String {
    format!("<{}|{}>", escape(&url.replace('|', "%7C")), escape(label))
}

/// Cuts `text` to at most `max` characters, ending in an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().nth(max).is_none() {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}

/// The start of a body, before its first blank line, so a quote stays short.
fn first_paragraph(body: &str) -> &str {
    let body = body.trim();
    let end = body.find("\n\n").or_else(|| body.find("\r\n\r\n")).unwrap_or(body.len());
    body[..end].trim_end()
}

/// An escaped block quote of untrusted text.
fn quote_lines(text: &str) -> String {
    text.lines().map(|line| format!(">{}", escape(line))).collect::<Vec<_>>().join("\n")
}

/// The last guard on Slack's limit: cuts escaped mrkdwn to [`SECTION_TEXT_MAX`] characters
/// without splitting an entity (`&amp;`) or a link (`<url|label>`).
fn fit(mrkdwn: &str) -> String {
    if mrkdwn.chars().count() <= SECTION_TEXT_MAX {
        return mrkdwn.to_string();
    }
    let mut kept: String = mrkdwn.chars().take(SECTION_TEXT_MAX - 1).collect();
    if let Some(amp) = kept.rfind('&')
        && !kept[amp..].contains(';')
    {
        kept.truncate(amp);
    }
    if let Some(open) = kept.rfind('<')
        && !kept[open..].contains('>')
    {
        kept.truncate(open);
    }
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Comment, Commit, Release, Repo};
    use proptest::prelude::*;

    fn user(login: &str) -> User {
        User { login: login.into(), url: format!("https://github.com/{login}"), is_bot: false }
    }

    fn event(kind: Kind) -> Event {
        Event {
            name: "x".into(),
            action: None,
            repo: Repo { full_name: "o/r".into(), url: "https://github.com/o/r".into() },
            actor: user("octo"),
            kind,
        }
    }

    fn issue(title: &str, body: &str, labels: &[&str]) -> Issue {
        Issue {
            number: 7,
            title: title.into(),
            url: "https://github.com/o/r/issues/7".into(),
            author: user("octo"),
            body: body.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn pr(title: &str, body: &str, head: &str, labels: &[&str]) -> PullRequest {
        PullRequest {
            number: 8,
            title: title.into(),
            url: "https://github.com/o/r/pull/8".into(),
            author: user("octo"),
            body: body.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            draft: false,
            head: head.into(),
            base: "main".into(),
        }
    }

    /// Every text of a message: the fallback and each block's mrkdwn.
    fn texts(msg: &Message) -> Vec<String> {
        let mut out = vec![msg.text.clone()];
        for block in &msg.blocks {
            if let Some(t) = block["text"]["text"].as_str() {
                out.push(t.to_string());
            }
            for element in block["elements"].as_array().into_iter().flatten() {
                out.push(element["text"].as_str().unwrap().to_string());
            }
        }
        out
    }

    /// Fails unless `text` is inert mrkdwn: every `&` starts `&amp;`, `&lt;` or `&gt;`; every `<`
    /// opens an `https://` link `<url|label>`; a `>` closes such a link or starts a quote line.
    fn assert_inert(text: &str) {
        let mut rest = text;
        let mut line_start = true;
        while let Some(c) = rest.chars().next() {
            match c {
                '&' => {
                    let ok = ["&amp;", "&lt;", "&gt;"].iter().find(|e| rest.starts_with(**e));
                    let entity = ok.unwrap_or_else(|| panic!("bare & in {text:?}"));
                    rest = &rest[entity.len()..];
                }
                '<' => {
                    let end = rest.find('>').unwrap_or_else(|| panic!("unclosed < in {text:?}"));
                    let inner = &rest[1..end];
                    let (url, label) = inner
                        .split_once('|')
                        .unwrap_or_else(|| panic!("link without label in {text:?}"));
                    assert!(
                        url.starts_with("https://") || url.starts_with("http://"),
                        "<{inner}> in {text:?}"
                    );
                    assert!(
                        !url.contains(['<', ' ']) && !label.contains('<'),
                        "<{inner}> in {text:?}"
                    );
                    rest = &rest[end + 1..];
                }
                '>' if line_start => rest = &rest[1..],
                '>' => panic!("bare > in {text:?}"),
                c => rest = &rest[c.len_utf8()..],
            }
            line_start = c == '\n';
        }
    }

    fn assert_within_limits(msg: &Message) {
        assert!(msg.blocks.len() <= 50);
        for t in texts(msg).iter().skip(1) {
            assert!(t.chars().count() <= SECTION_TEXT_MAX, "{} characters", t.chars().count());
        }
        assert!(
            msg.text.chars().count() <= 4000,
            "fallback of {} characters",
            msg.text.chars().count()
        );
    }

    #[test]
    fn escape_replaces_slack_control_characters() {
        assert_eq!(escape("<!channel> & <@U1|x>"), "&lt;!channel&gt; &amp; &lt;@U1|x&gt;");
    }

    #[test]
    fn a_hostile_title_pings_nobody() {
        let hostile = "<!channel> <!here> <@U123> <!subteam^S1> <https://evil|click> & co";
        let msg = message(&event(Kind::Issue {
            issue: issue(hostile, hostile, &[hostile]),
            change: IssueChange::Opened,
        }));
        for t in texts(&msg) {
            assert_inert(&t);
            for raw in ["<!channel>", "<!here>", "<@U123>", "<!subteam", "<https://evil"] {
                assert!(!t.contains(raw), "{raw} leaked into {t}");
            }
        }
        assert!(msg.text.contains("&lt;!channel&gt;"), "{}", msg.text);
    }

    #[test]
    fn a_pipe_in_a_url_cannot_end_the_link_early() {
        assert_eq!(mrkdwn_link("https://x/a|b", "l"), "<https://x/a%7Cb|l>");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_an_ellipsis() {
        assert_eq!(cut("héllo", 10), "héllo");
        assert_eq!(cut("héllo wörld", 7), "héllo…");
        let msg = message(&event(Kind::Issue {
            issue: issue("t", &"é".repeat(1000), &[]),
            change: IssueChange::Opened,
        }));
        let section = msg.blocks[0]["text"]["text"].as_str().unwrap();
        assert!(section.ends_with('…'), "{section}");
        assert_eq!(section.matches('é').count(), EXCERPT_MAX - 1);
    }

    #[test]
    fn fit_never_splits_an_entity_or_a_link() {
        let entities = fit(&"&amp;".repeat(1000));
        assert!(entities.chars().count() <= SECTION_TEXT_MAX);
        assert!(entities.trim_end_matches('…').ends_with("&amp;"));
        let links = fit(&"<https://github.com/o/r|label> ".repeat(200));
        assert!(links.chars().count() <= SECTION_TEXT_MAX);
        assert_inert(&links);
    }

    #[test]
    fn a_push_lists_its_newest_commits_and_counts_the_rest() {
        let commits = (0..8)
            .map(|i| Commit {
                id: format!("{i:040}"),
                title: format!("commit {i}"),
                url: format!("https://github.com/o/r/commit/{i}"),
                author: "octo".into(),
            })
            .collect();
        let push = Push {
            ref_name: "main".into(),
            ref_type: RefType::Branch,
            commits,
            compare_url: "https://github.com/o/r/compare/a...b".into(),
            created: false,
            deleted: false,
            forced: true,
        };
        let msg = message(&event(Kind::Push(push)));
        assert_eq!(msg.text, "[o/r] octo force-pushed 8 commits to main");
        let section = msg.blocks[0]["text"]["text"].as_str().unwrap();
        assert_eq!(section.matches("• ").count(), COMMITS_SHOWN);
        assert!(section.contains("commit 7") && !section.contains("commit 2"), "{section}");
        assert!(section.ends_with("… and 3 more"), "{section}");
    }

    fn untrusted() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[<>&|!@#^*_`~:/ a-zA-Z0-9\n]{0,400}",
            "(<!channel>|<!here>|<@U1>|&amp;|&|<|>|\\|| |x){0,80}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn untrusted_text_is_always_escaped_and_within_limits(
            title in untrusted(),
            body in untrusted(),
            label in untrusted(),
            branch in untrusted(),
            login in untrusted(),
        ) {
            let labels = [label.as_str(), "ok"];
            let someone = User { login: login.clone(), url: "https://github.com/someone".into(), is_bot: false };
            let kinds = vec![
                Kind::Issue { issue: issue(&title, &body, &labels), change: IssueChange::Opened },
                Kind::Issue { issue: issue(&title, &body, &labels), change: IssueChange::Labeled(label.clone()) },
                Kind::Issue { issue: issue(&title, &body, &labels), change: IssueChange::Assigned(someone.clone()) },
                Kind::Comment {
                    issue: issue(&title, &body, &labels),
                    on_pull_request: true,
                    comment: Comment { url: "https://github.com/c".into(), author: someone.clone(), body: body.clone() },
                },
                Kind::PullRequest { pr: pr(&title, &body, &branch, &labels), change: PullRequestChange::Opened },
                Kind::PullRequest {
                    pr: pr(&title, &body, &branch, &labels),
                    change: PullRequestChange::ReviewRequested(Reviewer::Team { name: label.clone(), url: None }),
                },
                Kind::PullRequest {
                    pr: pr(&title, &body, &branch, &labels),
                    change: PullRequestChange::Merged { by: Some(someone.clone()) },
                },
                Kind::Release(Release {
                    name: title.clone(),
                    tag: branch.clone(),
                    url: "https://github.com/o/r/releases/1".into(),
                    body: body.clone(),
                    prerelease: true,
                }),
                Kind::Push(Push {
                    ref_name: branch.clone(),
                    ref_type: RefType::Branch,
                    commits: vec![Commit {
                        id: title.clone(),
                        title: body.clone(),
                        url: "https://github.com/o/r/commit/1".into(),
                        author: login.clone(),
                    }],
                    compare_url: "https://github.com/o/r/compare/a...b".into(),
                    created: true,
                    deleted: false,
                    forced: false,
                }),
                Kind::Ref { created: true, ref_type: RefType::Tag, name: branch.clone() },
            ];
            for kind in kinds {
                let mut e = event(kind);
                e.actor = someone.clone();
                e.repo.full_name = format!("{login}/{title}");
                let msg = message(&e);
                for t in texts(&msg) {
                    assert_inert(&t);
                }
                assert_within_limits(&msg);
            }
        }
    }
}
