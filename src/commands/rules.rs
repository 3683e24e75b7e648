//! `notifier rules check`: validate the config and list its routes, or dry-run one event.

use std::io::Write;
use std::path::Path;

use comfy_table::{ContentArrangement, Table, presets};

use super::{event_from_file_name, open_store};
use crate::Error;
use crate::config::{
    ChannelConfig, ChannelKind, Config, ConfigError, ConfigErrors, RouteConfig, UrlSource,
};
use crate::github::{self, ContentType, Normalized};
use crate::render;
use crate::rules::{self, Bots, Decision, Pattern, Then};

/// Checks `config`, whose `problems` were found loading it; with a payload or a delivery, also
/// routes it and shows why. Fails (exit 1) if the config has any problem, after showing the dry
/// run if one was asked for.
pub(super) fn check(
    config: &Config,
    problems: Vec<ConfigError>,
    event: Option<&str>,
    payload: Option<&Path>,
    delivery: Option<&str>,
) -> Result<(), Error> {
    let problems = (!problems.is_empty()).then_some(ConfigErrors(problems));
    let dry_run = match (payload, delivery) {
        (Some(file), _) => {
            let event = match event {
                Some(event) => event.to_string(),
                None => event_from_file_name(file)?,
            };
            let body =
                std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
            Some((event, ContentType::Json, body, file.display().to_string()))
        }
        (None, Some(id)) => {
            let path = &config.storage.path;
            let stored = open_store(path)?
                .payload(id)
                .map_err(|e| format!("reading delivery {id} from {}: {e}", path.display()))?
                .ok_or_else(|| format!("no delivery {id} in {}", path.display()))?;
            Some((stored.0, stored.1, stored.2, format!("delivery {id}")))
        }
        (None, None) => None,
    };

    let mut out = std::io::stdout().lock();
    match dry_run {
        None => {
            if let Some(problems) = problems {
                return Err(Box::new(problems));
            }
            writeln!(
                out,
                "{}: no problems; {} route(s), {} channel(s).",
                config.origin,
                config.routes.len(),
                config.channels.len()
            )?;
            writeln!(out, "{}", routes_table(config))?;
            writeln!(
                out,
                "Deliveries no route matches are recorded as skipped: \"{}\".",
                rules::NO_ROUTE
            )?;
        }
        Some((event, content_type, body, source)) => {
            if let Some(problems) = &problems {
                eprintln!("{problems}");
            }
            explain(&mut out, config, &event, content_type, &body, &source)?;
            if let Some(problems) = problems {
                return Err(Box::new(problems));
            }
        }
    }
    Ok(())
}

/// Every route: where it is, what it matches, what it does.
fn routes_table(config: &Config) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["#", "Line", "When", "Then"]);
    for (i, route) in config.routes.iter().enumerate() {
        table.add_row([
            (i + 1).to_string(),
            route.at.line.to_string(),
            conditions(route),
            then(config, route),
        ]);
    }
    table
}

/// The matchers a route sets, one per line.
fn conditions(route: &RouteConfig) -> String {
    let patterns = |ps: &[Pattern]| ps.iter().map(Pattern::as_str).collect::<Vec<_>>().join(", ");
    let mut lines = Vec::new();
    let mut add = |key: &str, value: String| {
        if !value.is_empty() {
            lines.push(format!("{key} = {value}"));
        }
    };
    add("events", route.events.join(", "));
    add("actions", route.actions.join(", "));
    add("repos", patterns(&route.repos));
    add("branches", patterns(&route.branches));
    add("labels_any", patterns(&route.labels_any));
    add("labels_none", patterns(&route.labels_none));
    add("authors", patterns(&route.authors));
    add("authors_none", patterns(&route.authors_none));
    match route.bots {
        Bots::Include => {}
        Bots::Exclude => add("bots", "exclude".into()),
        Bots::Only => add("bots", "only".into()),
    }
    if let Some(draft) = route.draft {
        add("draft", draft.to_string());
    }
    if lines.is_empty() { "every event".to_string() } else { lines.join("\n") }
}

/// What a route does; a channel with where it posts, never the URL itself.
fn then(config: &Config, route: &RouteConfig) -> String {
    let mut text = match &route.then {
        Then::Skip(reason) => format!("skip: {reason}"),
        Then::Channel(name) => match config.channels.get(name) {
            Some(ChannelConfig { kind: ChannelKind::Console, .. }) => format!("→ {name} (console)"),
            Some(ChannelConfig { kind: ChannelKind::Slack { url }, .. }) => match &url.value {
                UrlSource::Env(var) => format!("→ {name} (Slack, ${var})"),
                UrlSource::Inline(_) => format!("→ {name} (Slack, inline URL)"),
            },
            None => format!("→ {name}"),
        },
    };
    if route.continue_ {
        text.push_str("\nthen continue");
    }
    text
}

/// The dry run: each route's verdict, the decision, and the message. Sends nothing.
fn explain(
    out: &mut impl Write,
    config: &Config,
    event_name: &str,
    content_type: ContentType,
    body: &[u8],
    source: &str,
) -> Result<(), Error> {
    let parsed = github::normalize(event_name, content_type, body)
        .map_err(|e| format!("reading {source} as a {event_name} payload: {e}"))?;
    let event = match parsed.normalized {
        Normalized::Event(event) => event,
        Normalized::Skip(reason) => {
            writeln!(
                out,
                "{source}: {event_name} is recorded as skipped before routing: {reason}"
            )?;
            return Ok(());
        }
    };
    let what = match &event.action {
        Some(action) => format!("{}.{action}", event.name),
        None => event.name.clone(),
    };
    writeln!(out, "{source}: {what} in {} by {}", event.repo.full_name, event.actor.login)?;

    let verdicts = rules::explain(&event, &config.routes);
    let decision = rules::route(&event, &config.routes);
    let used: Vec<usize> = match &decision {
        Decision::Send(routes) => routes.iter().map(|m| m.route).collect(),
        Decision::Skip { route, .. } => route.iter().copied().collect(),
    };
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["#", "Line", "Then", "Result"]);
    for (verdict, route) in verdicts.iter().zip(&config.routes) {
        let result = if !verdict.failures.is_empty() {
            let why: Vec<String> = verdict.failures.iter().map(ToString::to_string).collect();
            format!("no: {}", why.join("\n    "))
        } else if used.contains(&verdict.route) {
            "matched".to_string()
        } else {
            "matches, but an earlier route decided".to_string()
        };
        table.add_row([
            verdict.route.to_string(),
            route.at.line.to_string(),
            then(config, route),
            result,
        ]);
    }
    writeln!(out, "{table}")?;

    match decision {
        Decision::Send(routes) => {
            let targets: Vec<String> =
                routes.iter().map(|m| format!("{} (route {})", m.channel, m.route)).collect();
            writeln!(out, "Decision: post to {}.", targets.join(", "))?;
            writeln!(out, "Message:\n{:#}", render::message(&event).to_json())?;
        }
        Decision::Skip { reason, route: Some(route) } => {
            writeln!(out, "Decision: skipped by route {route}: {reason}")?;
        }
        Decision::Skip { reason, route: None } => {
            write!(out, "Decision: skipped: {reason}.")?;
            match rules::closest(&verdicts) {
                Some(verdict) => {
                    let at = &config.routes[verdict.route - 1].at;
                    let why: Vec<String> =
                        verdict.failures.iter().map(ToString::to_string).collect();
                    writeln!(
                        out,
                        " Closest: route {} ({at}), which failed on {}",
                        verdict.route,
                        why.join("; ")
                    )?;
                }
                None => writeln!(out, " The config has no routes.")?,
            }
        }
    }
    writeln!(out, "Nothing was sent.")?;
    Ok(())
}
