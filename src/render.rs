//! [`Event`] → Slack message: the only module that knows Slack's JSON shape.
//!
//! Every message has Block Kit `blocks` and a plain `text` fallback, which Slack shows in
//! notifications and on clients that can't draw blocks.
//!
//! # Escaping
//!
//! Everything from GitHub is untrusted. Slack's mrkdwn gives `<`, `>` and `&` control meaning
//! (`<!channel>`, `<@U123>`, `<url|label>`), so [`escape`] replaces them in every piece of GitHub
//! text, in `text` as much as in blocks, and we never set `link_names`. An issue titled
//! `<!channel>` then arrives as the literal text and pings nobody.
//!
//! # Limits
//!
//! Slack refuses a section whose text passes 3000 characters; long text is cut at a character
//! boundary with an ellipsis before it is escaped, so the cut never splits an entity.

use serde_json::{Value, json};

use crate::event::{Event, Issue, Kind, User};

/// Slack's limit on a section block's text.
const SECTION_TEXT_MAX: usize = 3000;
/// How much of an issue body is quoted in the message.
const BODY_EXCERPT_MAX: usize = 300;

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

/// Renders `event` for Slack.
pub fn message(event: &Event) -> Message {
    match &event.kind {
        Kind::IssueOpened(issue) => issue_opened(event, issue),
    }
}

fn issue_opened(event: &Event, issue: &Issue) -> Message {
    let text = format!(
        "{} opened issue #{} in {}: {}",
        escape(&event.actor.login),
        issue.number,
        escape(&event.repo.full_name),
        escape(&issue.title),
    );
    let headline = format!(
        "{} opened {}",
        user_link(&event.actor),
        link(&issue.url, &format!("#{} {}", issue.number, issue.title)),
    );
    let mut section = headline;
    let body = first_lines(&issue.body);
    if !body.is_empty() {
        section.push('\n');
        section.push_str(&quote(&truncate(body, BODY_EXCERPT_MAX)));
    }
    let mut context = vec![link(&event.repo.url, &event.repo.full_name)];
    if !issue.labels.is_empty() {
        let labels: Vec<String> = issue.labels.iter().map(|l| format!("`{}`", escape(l))).collect();
        context.push(labels.join(" "));
    }
    Message {
        text,
        blocks: vec![
            section_block(&section),
            json!({
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": context.join(" · ") }],
            }),
        ],
    }
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

/// `<url|label>`, with both parts escaped. `|` in the label is kept: Slack splits on the first.
fn link(url: &str, label: &str) -> String {
    format!("<{}|{}>", escape(url), escape(label))
}

fn user_link(user: &User) -> String {
    format!("*{}*", link(&user.url, &user.login))
}

/// Cuts `text` to at most `max` characters, ending in an ellipsis when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some(_) => {
            let cut: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{}…", cut.trim_end())
        }
    }
}

/// The start of a body, before its first blank line, so a quote stays short.
fn first_lines(body: &str) -> &str {
    let body = body.trim();
    let end = body.find("\n\n").or_else(|| body.find("\r\n\r\n")).unwrap_or(body.len());
    body[..end].trim_end()
}

/// Escaped block quote of untrusted text.
fn quote(text: &str) -> String {
    text.lines().map(|line| format!(">{}", escape(line))).collect::<Vec<_>>().join("\n")
}

/// A mrkdwn section, cut to Slack's limit. Cutting happens on the escaped text at a character
/// boundary; an entity cut in half would show as text, so the cut backs off to before any `&`
/// that has no `;` after it.
fn section_block(text: &str) -> Value {
    let text = if text.chars().count() > SECTION_TEXT_MAX {
        let mut cut: String = text.chars().take(SECTION_TEXT_MAX - 1).collect();
        if let Some(amp) = cut.rfind('&') {
            if !cut[amp..].contains(';') {
                cut.truncate(amp);
            }
        }
        cut.push('…');
        cut
    } else {
        text.to_string()
    };
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Repo;

    fn user(login: &str) -> User {
        User { login: login.into(), url: format!("https://github.com/{login}"), is_bot: false }
    }

    fn opened(title: &str, body: &str) -> Event {
        Event {
            name: "issues".into(),
            action: Some("opened".into()),
            repo: Repo { full_name: "o/r".into(), url: "https://github.com/o/r".into() },
            actor: user("octo"),
            kind: Kind::IssueOpened(Issue {
                number: 7,
                title: title.into(),
                url: "https://github.com/o/r/issues/7".into(),
                author: user("octo"),
                body: body.into(),
                labels: vec!["<b>".into()],
            }),
        }
    }

    #[test]
    fn escape_replaces_slack_control_characters() {
        assert_eq!(escape("<!channel> & <@U1|x>"), "&lt;!channel&gt; &amp; &lt;@U1|x&gt;");
    }

    #[test]
    fn issue_opened_renders_text_and_blocks() {
        let msg = message(&opened("Fix it", "Body line\n\nSecond paragraph"));
        assert_eq!(
            msg.to_json(),
            json!({
                "text": "octo opened issue #7 in o/r: Fix it",
                "blocks": [
                    { "type": "section", "text": { "type": "mrkdwn", "text":
                        "*<https://github.com/octo|octo>* opened <https://github.com/o/r/issues/7|#7 Fix it>\n>Body line" } },
                    { "type": "context", "elements": [{ "type": "mrkdwn", "text":
                        "<https://github.com/o/r|o/r> · `&lt;b&gt;`" }] },
                ],
            })
        );
    }

    #[test]
    fn a_hostile_title_pings_nobody() {
        let msg = message(&opened("<!channel> <@U123> <https://evil|click> & co", "<!here>"));
        let json = msg.to_json().to_string();
        for raw in ["<!channel>", "<@U123>", "<https://evil", "<!here>", " & co"] {
            assert!(!json.contains(raw), "{raw} leaked into {json}");
        }
        assert!(msg.text.contains("&lt;!channel&gt;"), "{}", msg.text);
    }

    #[test]
    fn long_bodies_are_cut_with_an_ellipsis() {
        let body = "é".repeat(1000);
        let msg = message(&opened("t", &body));
        let section = msg.blocks[0]["text"]["text"].as_str().unwrap();
        assert!(section.ends_with('…'), "{section}");
        assert!(section.chars().filter(|c| *c == 'é').count() < BODY_EXCERPT_MAX);
    }

    #[test]
    fn sections_stay_within_slacks_limit_without_splitting_entities() {
        let block = section_block(&"&amp;".repeat(1000));
        let text = block["text"]["text"].as_str().unwrap();
        assert!(text.chars().count() <= SECTION_TEXT_MAX);
        assert!(text.trim_end_matches('…').ends_with("&amp;"), "{}", &text[text.len() - 20..]);
    }
}
