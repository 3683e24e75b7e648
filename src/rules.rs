//! Which routes an [`Event`] goes to, according to the config. Pure: no I/O, no clock.
//!
//! Routes are tried in file order and the first one that matches wins. A route matches when each
//! of its lists is empty or holds the event's value. An event no route wants is skipped with
//! [`NO_ROUTE`] as the reason.

use crate::config::RouteConfig;
use crate::event::Event;

/// The skip reason for an event that no route matched.
pub const NO_ROUTE: &str = "no route matched";

/// A route chosen for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// 1-based position of the route in the config, as people count `[[routes]]` tables.
    pub route: usize,
    pub channel: String,
}

/// The routes `event` goes to, in config order; empty if none matches.
pub fn route(event: &Event, routes: &[RouteConfig]) -> Vec<RouteMatch> {
    routes
        .iter()
        .enumerate()
        .find(|(_, route)| matches(event, route))
        .map(|(i, route)| RouteMatch { route: i + 1, channel: route.channel.clone() })
        .into_iter()
        .collect()
}

fn matches(event: &Event, route: &RouteConfig) -> bool {
    let event_ok = route.events.is_empty() || route.events.contains(&event.name);
    let action_ok = route.actions.is_empty()
        || event.action.as_ref().is_some_and(|a| route.actions.iter().any(|r| r == a));
    event_ok && action_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::event::{Issue, IssueChange, Kind, Repo, User};

    fn issue_event(action: &str) -> Event {
        let user =
            User { login: "octo".into(), url: "https://github.com/octo".into(), is_bot: false };
        Event {
            name: "issues".into(),
            action: Some(action.into()),
            repo: Repo { full_name: "o/r".into(), url: "https://github.com/o/r".into() },
            actor: user.clone(),
            kind: Kind::Issue {
                issue: Issue {
                    number: 1,
                    title: "t".into(),
                    url: "https://github.com/o/r/issues/1".into(),
                    author: user,
                    body: String::new(),
                    labels: vec![],
                },
                change: IssueChange::Opened,
            },
        }
    }

    fn routes(toml: &str) -> Vec<RouteConfig> {
        let text =
            format!("[channels.a]\nkind = \"console\"\n[channels.b]\nkind = \"console\"\n{toml}");
        parse("t.toml", &text).unwrap().routes
    }

    #[test]
    fn the_first_matching_route_wins() {
        let routes = routes(
            "[[routes]]\nevents = [\"pull_request\"]\nchannel = \"a\"\n\
             [[routes]]\nevents = [\"issues\"]\nchannel = \"b\"\n\
             [[routes]]\nchannel = \"a\"\n",
        );
        assert_eq!(
            route(&issue_event("opened"), &routes),
            vec![RouteMatch { route: 2, channel: "b".into() }]
        );
    }

    #[test]
    fn actions_narrow_a_route() {
        let routes =
            routes("[[routes]]\nevents = [\"issues\"]\nactions = [\"closed\"]\nchannel = \"a\"\n");
        assert_eq!(route(&issue_event("opened"), &routes), vec![]);
        assert_eq!(
            route(&issue_event("closed"), &routes),
            vec![RouteMatch { route: 1, channel: "a".into() }]
        );
    }

    #[test]
    fn an_event_without_an_action_never_matches_an_actions_list() {
        let routes = routes("[[routes]]\nactions = [\"opened\"]\nchannel = \"a\"\n");
        let mut event = issue_event("opened");
        event.action = None;
        assert_eq!(route(&event, &routes), vec![]);
    }

    #[test]
    fn no_routes_route_nothing() {
        assert_eq!(route(&issue_event("opened"), &[]), vec![]);
    }
}
