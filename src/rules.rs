//! Which routes an [`Event`] goes to, according to the config. Pure: no I/O, no clock.
//!
//! Routes are tried in file order. A route matches when every matcher it sets holds (AND);
//! a matcher it leaves out always holds. The first matching route decides, unless it says
//! `continue = true`, in which case later routes are tried too (fan-out). A matching route
//! either names a channel or says `skip = "reason"`, which ends routing with that reason. An
//! event no route matches is skipped with [`NO_ROUTE`].
//!
//! [`explain`] evaluates every matcher of every route, for `rules check`'s dry run: it says which
//! matchers failed, so a skipped delivery can be explained after the fact.
//!
//! # Patterns
//!
//! `repos`, `branches`, `labels_*` and `authors*` take glob patterns: `*` matches any run of
//! characters (`/` included), `?` one character, `{a,b}` either. `[` and `]` are literal, so
//! `dependabot[bot]` means that login, not a character class. Repository names, labels and
//! logins are compared case-insensitively, as GitHub does; branches are case-sensitive, as git is.

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};

use crate::config::RouteConfig;
use crate::event::Event;

/// The skip reason for an event that no route matched.
pub const NO_ROUTE: &str = "no route matched";

/// A compiled glob with the text it came from.
#[derive(Clone)]
pub struct Pattern {
    text: String,
    matcher: GlobMatcher,
}

impl Pattern {
    /// Compiles `text`; fails with globset's reason for an invalid pattern.
    pub fn new(text: &str, case_insensitive: bool) -> Result<Pattern, String> {
        let escaped = text.replace('[', "\\[").replace(']', "\\]");
        let glob = GlobBuilder::new(&escaped)
            .literal_separator(false)
            .backslash_escape(true)
            .case_insensitive(case_insensitive)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(Pattern { text: text.to_string(), matcher: glob.compile_matcher() })
    }

    pub fn is_match(&self, value: &str) -> bool {
        self.matcher.is_match(value)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

/// The `bots` matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bots {
    #[default]
    Include,
    Exclude,
    Only,
}

/// What a matching route does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    Channel(String),
    Skip(String),
}

/// A route chosen for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// 1-based position of the route in the config, as people count `[[routes]]` tables.
    pub route: usize,
    pub channel: String,
}

/// What the routes decided for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Post to these channels, in route order. Never empty.
    Send(Vec<RouteMatch>),
    /// Post nothing, for this reason: a skip route's (`route` is its number), or [`NO_ROUTE`].
    Skip { reason: String, route: Option<usize> },
}

/// Routes `event` through `routes`.
pub fn route(event: &Event, routes: &[RouteConfig]) -> Decision {
    let mut sends = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        if !failures(event, route).is_empty() {
            continue;
        }
        match &route.then {
            Then::Channel(channel) => {
                sends.push(RouteMatch { route: i + 1, channel: channel.clone() })
            }
            Then::Skip(reason) if sends.is_empty() => {
                return Decision::Skip { reason: reason.clone(), route: Some(i + 1) };
            }
            Then::Skip(_) => break,
        }
        if !route.continue_ {
            break;
        }
    }
    if sends.is_empty() {
        Decision::Skip { reason: NO_ROUTE.to_string(), route: None }
    } else {
        Decision::Send(sends)
    }
}

/// How one route judged an event: the matchers that failed, each with why. Empty if it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub route: usize,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The config key of the matcher.
    pub matcher: &'static str,
    pub why: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.matcher, self.why)
    }
}

/// Every route's verdict on `event`, evaluating all matchers (for explanations).
pub fn explain(event: &Event, routes: &[RouteConfig]) -> Vec<Verdict> {
    routes
        .iter()
        .enumerate()
        .map(|(i, route)| Verdict { route: i + 1, failures: failures(event, route) })
        .collect()
}

/// The route that came closest to matching: one meant for this event and action if any, then
/// the fewest failed matchers, then the earliest.
pub fn closest(verdicts: &[Verdict]) -> Option<&Verdict> {
    verdicts.iter().filter(|v| !v.failures.is_empty()).min_by_key(|v| {
        let other_event =
            v.failures.iter().any(|f| f.matcher == "events" || f.matcher == "actions");
        (other_event, v.failures.len())
    })
}

fn failures(event: &Event, route: &RouteConfig) -> Vec<Failure> {
    let mut out = Vec::new();
    let mut fail = |matcher: &'static str, why: String| out.push(Failure { matcher, why });

    if !route.events.is_empty() && !route.events.contains(&event.name) {
        fail("events", format!("'{}' is not one of {}", event.name, route.events.join(", ")));
    }
    if !route.actions.is_empty() {
        match &event.action {
            None => fail("actions", format!("{} has no action", event.name)),
            Some(action) if !route.actions.contains(action) => {
                fail("actions", format!("'{action}' is not one of {}", route.actions.join(", ")))
            }
            Some(_) => {}
        }
    }
    if !route.repos.is_empty() && !any_match(&route.repos, &event.repo.full_name) {
        fail("repos", format!("'{}' matches none of {}", event.repo.full_name, list(&route.repos)));
    }
    if !route.branches.is_empty() {
        match event.branch() {
            None => fail("branches", format!("{} has no branch", event.name)),
            Some(branch) if !any_match(&route.branches, branch) => {
                fail("branches", format!("'{branch}' matches none of {}", list(&route.branches)))
            }
            Some(_) => {}
        }
    }
    let labels = event.labels();
    if !route.labels_any.is_empty() && !labels.iter().any(|l| any_match(&route.labels_any, l)) {
        let has = if labels.is_empty() {
            "no labels".to_string()
        } else {
            format!("labels {}", labels.join(", "))
        };
        fail("labels_any", format!("{has}; none matches {}", list(&route.labels_any)));
    }
    if let Some(label) = labels.iter().find(|l| any_match(&route.labels_none, l)) {
        fail("labels_none", format!("label '{label}' matches {}", list(&route.labels_none)));
    }
    let people = event.people();
    if !route.authors.is_empty() && !people.iter().any(|p| any_match(&route.authors, p)) {
        fail(
            "authors",
            format!("{} matches none of {}", people.join(" or "), list(&route.authors)),
        );
    }
    if let Some(person) = people.iter().find(|p| any_match(&route.authors_none, p)) {
        fail("authors_none", format!("'{person}' matches {}", list(&route.authors_none)));
    }
    match (route.bots, event.actor.is_bot) {
        (Bots::Exclude, true) => fail("bots", format!("sender '{}' is a bot", event.actor.login)),
        (Bots::Only, false) => fail("bots", format!("sender '{}' is not a bot", event.actor.login)),
        _ => {}
    }
    if let Some(wanted) = route.draft {
        match event.draft() {
            None => fail("draft", format!("{} is not about a pull request", event.name)),
            Some(true) if !wanted => fail("draft", "the pull request is a draft".to_string()),
            Some(false) if wanted => fail("draft", "the pull request is not a draft".to_string()),
            Some(_) => {}
        }
    }
    out
}

fn any_match(patterns: &[Pattern], value: &str) -> bool {
    patterns.iter().any(|p| p.is_match(value))
}

fn list(patterns: &[Pattern]) -> String {
    patterns.iter().map(Pattern::as_str).collect::<Vec<_>>().join(", ")
}

/// Whether `earlier` (which does not continue) matches every event `later` would, so that
/// `later` can never be reached. Conservative: it may miss a shadowed route, but never reports
/// a reachable one.
pub fn shadows(earlier: &RouteConfig, later: &RouteConfig) -> bool {
    fn names_cover(e: &[String], l: &[String]) -> bool {
        e.is_empty() || (!l.is_empty() && l.iter().all(|x| e.contains(x)))
    }
    fn patterns_cover(e: &[Pattern], l: &[Pattern]) -> bool {
        e.is_empty()
            || (!l.is_empty()
                && l.iter().all(|x| e.contains(x) || e.iter().any(|p| p.as_str() == "*")))
    }
    fn exclusions_cover(e: &[Pattern], l: &[Pattern]) -> bool {
        e.iter().all(|x| l.contains(x))
    }
    !earlier.continue_
        && names_cover(&earlier.events, &later.events)
        && names_cover(&earlier.actions, &later.actions)
        && patterns_cover(&earlier.repos, &later.repos)
        && patterns_cover(&earlier.branches, &later.branches)
        && patterns_cover(&earlier.labels_any, &later.labels_any)
        && patterns_cover(&earlier.authors, &later.authors)
        && exclusions_cover(&earlier.labels_none, &later.labels_none)
        && exclusions_cover(&earlier.authors_none, &later.authors_none)
        && (earlier.bots == Bots::Include || earlier.bots == later.bots)
        && (earlier.draft.is_none() || earlier.draft == later.draft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::event::{Issue, IssueChange, Kind, PullRequest, PullRequestChange, Repo, User};

    fn user(login: &str) -> User {
        User {
            login: login.into(),
            url: format!("https://github.com/{login}"),
            is_bot: login.ends_with("[bot]"),
        }
    }

    fn issue_event(action: &str, labels: &[&str]) -> Event {
        Event {
            name: "issues".into(),
            action: Some(action.into()),
            repo: Repo {
                full_name: "octo-org/api".into(),
                url: "https://github.com/octo-org/api".into(),
            },
            actor: user("octo"),
            kind: Kind::Issue {
                issue: Issue {
                    number: 1,
                    title: "t".into(),
                    url: "https://github.com/octo-org/api/issues/1".into(),
                    author: user("mona"),
                    body: String::new(),
                    labels: labels.iter().map(|l| l.to_string()).collect(),
                },
                change: IssueChange::Opened,
            },
        }
    }

    fn pr_event(sender: &str, draft: bool, base: &str) -> Event {
        Event {
            name: "pull_request".into(),
            action: Some("opened".into()),
            repo: Repo {
                full_name: "octo-org/web".into(),
                url: "https://github.com/octo-org/web".into(),
            },
            actor: user(sender),
            kind: Kind::PullRequest {
                pr: PullRequest {
                    number: 2,
                    title: "t".into(),
                    url: "https://github.com/octo-org/web/pull/2".into(),
                    author: user(sender),
                    body: String::new(),
                    labels: vec!["dependencies".into()],
                    draft,
                    head: "feature".into(),
                    base: base.into(),
                },
                change: PullRequestChange::Opened,
            },
        }
    }

    fn routes(toml: &str) -> Vec<RouteConfig> {
        let text =
            format!("[channels.a]\nkind = \"console\"\n[channels.b]\nkind = \"console\"\n{toml}");
        match parse("t.toml", &text) {
            Ok(config) => config.routes,
            Err(e) => panic!("{e}"),
        }
    }

    fn send(routes: &[(usize, &str)]) -> Decision {
        Decision::Send(
            routes.iter().map(|(r, c)| RouteMatch { route: *r, channel: c.to_string() }).collect(),
        )
    }

    #[test]
    fn the_first_matching_route_wins() {
        let routes = routes(
            "[[routes]]\nevents = [\"pull_request\"]\nchannel = \"a\"\n\
             [[routes]]\nevents = [\"issues\"]\nchannel = \"b\"\n\
             [[routes]]\nchannel = \"a\"\n",
        );
        assert_eq!(route(&issue_event("opened", &[]), &routes), send(&[(2, "b")]));
    }

    #[test]
    fn continue_fans_out_to_later_routes() {
        let routes = routes(
            "[[routes]]\nevents = [\"issues\"]\nchannel = \"a\"\ncontinue = true\n\
             [[routes]]\nlabels_any = [\"bug\"]\nchannel = \"b\"\n\
             [[routes]]\nchannel = \"a\"\n",
        );
        assert_eq!(route(&issue_event("opened", &["bug"]), &routes), send(&[(1, "a"), (2, "b")]));
        assert_eq!(route(&issue_event("opened", &[]), &routes), send(&[(1, "a"), (3, "a")]));
    }

    #[test]
    fn a_skip_route_records_its_reason() {
        let routes = routes(
            "[[routes]]\nevents = [\"pull_request\"]\ndraft = true\nskip = \"draft\"\n\
             [[routes]]\nevents = [\"pull_request\"]\nchannel = \"a\"\n",
        );
        assert_eq!(
            route(&pr_event("octo", true, "main"), &routes),
            Decision::Skip { reason: "draft".into(), route: Some(1) }
        );
        assert_eq!(route(&pr_event("octo", false, "main"), &routes), send(&[(2, "a")]));
    }

    #[test]
    fn no_matching_route_skips_with_no_route_matched() {
        let routes = routes("[[routes]]\nevents = [\"push\"]\nchannel = \"a\"\n");
        let none = Decision::Skip { reason: NO_ROUTE.into(), route: None };
        assert_eq!(route(&issue_event("opened", &[]), &routes), none);
        assert_eq!(route(&issue_event("opened", &[]), &[]), none);
    }

    #[test]
    fn every_matcher_narrows_a_route() {
        let cases: &[(&str, bool, bool)] = &[
            // (matcher line, matches the issue event, matches the pull request event)
            ("actions = [\"opened\"]", true, true),
            ("repos = [\"octo-org/*\"]", true, true),
            ("repos = [\"OCTO-ORG/{api,cli}\"]", true, false),
            ("branches = [\"main\"]", false, true),
            ("branches = [\"release/*\"]", false, false),
            ("labels_any = [\"dep*\"]", false, true),
            ("labels_none = [\"dependencies\"]", true, false),
            ("authors = [\"mona\"]", true, false),
            ("authors_none = [\"dependabot[bot]\"]", true, false),
            ("bots = \"exclude\"", true, false),
            ("bots = \"only\"", false, true),
            ("draft = false", false, true),
        ];
        let issue = issue_event("opened", &[]);
        let pr = pr_event("dependabot[bot]", false, "main");
        for (line, on_issue, on_pr) in cases {
            let routes = routes(&format!("[[routes]]\n{line}\nchannel = \"a\"\n"));
            let matched = |e: &Event| matches!(route(e, &routes), Decision::Send(_));
            assert_eq!((matched(&issue), matched(&pr)), (*on_issue, *on_pr), "{line}");
        }
    }

    #[test]
    fn brackets_in_patterns_are_literal() {
        let p = Pattern::new("dependabot[bot]", true).unwrap();
        assert!(p.is_match("dependabot[bot]"));
        assert!(p.is_match("Dependabot[bot]"));
        assert!(!p.is_match("dependabotb"));
        assert!(Pattern::new("octo-org/{api", true).is_err());
    }

    #[test]
    fn explain_names_every_failed_matcher_and_the_closest_route() {
        let routes = routes(
            "[[routes]]\nevents = [\"issues\"]\nchannel = \"a\"\n\
             [[routes]]\nevents = [\"pull_request\"]\nauthors_none = [\"dependabot[bot]\"]\nchannel = \"b\"\n",
        );
        let verdicts = explain(&pr_event("dependabot[bot]", false, "main"), &routes);
        assert_eq!(
            verdicts[0].failures[0].to_string(),
            "events: 'pull_request' is not one of issues"
        );
        let closest = closest(&verdicts).unwrap();
        assert_eq!(closest.route, 2);
        assert_eq!(
            closest.failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["authors_none: 'dependabot[bot]' matches dependabot[bot]"]
        );
    }

    /// Two routes, each parsed on its own so the config's own shadowing check stays out of it.
    fn pair(first: &str, second: &str) -> (RouteConfig, RouteConfig) {
        let one = |body: &str| routes(&format!("[[routes]]\n{body}\n")).remove(0);
        (one(first), one(second))
    }

    #[test]
    fn shadowing_is_found_only_where_an_earlier_route_takes_everything() {
        let (a, b) = pair(
            "events = [\"issues\", \"pull_request\"]\nchannel = \"a\"",
            "events = [\"issues\"]\nlabels_any = [\"bug\"]\nchannel = \"b\"",
        );
        assert!(shadows(&a, &b));
        assert!(!shadows(&b, &a));
        let (a, b) = pair(
            "events = [\"issues\"]\ncontinue = true\nchannel = \"a\"",
            "events = [\"issues\"]\nchannel = \"b\"",
        );
        assert!(!shadows(&a, &b), "a continuing route shadows nothing");
        let (a, b) = pair(
            "labels_none = [\"wip\"]\nchannel = \"a\"",
            "labels_none = [\"wip\", \"dependencies\"]\nchannel = \"b\"",
        );
        assert!(shadows(&a, &b));
        assert!(!shadows(&b, &a));
        let (a, b) =
            pair("branches = [\"*\"]\nchannel = \"a\"", "branches = [\"main\"]\nchannel = \"b\"");
        assert!(shadows(&a, &b));
        let (a, b) = pair("branches = [\"*\"]\nchannel = \"a\"", "channel = \"b\"");
        assert!(!shadows(&a, &b), "branches = [*] does not take events without a branch");
    }
}
