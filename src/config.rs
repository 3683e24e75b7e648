//! The TOML config: types, loading, and validation.
//!
//! Loading happens in two steps so every problem can be reported at once, each with its
//! `FILE:LINE:COLUMN`:
//! 1. [`parse`] reads the TOML into `Raw*` structs (unknown keys are errors) and validates what can
//!    be checked from the text alone: listen addresses, paths, channel kinds, routes (known
//!    events and actions, defined channels, valid globs, none made unreachable by an earlier one).
//!    It returns every problem it finds, not just the first.
//! 2. [`Config::resolve`] reads what lives outside the file (environment variables, secret
//!    files), again reporting every problem with the location of its key. It is separate so that
//!    `notifier sign` needs only [`Config::secrets`], not the Slack URLs.
//!
//! [`load_checked`] does both and returns all the problems together, for `serve` and
//! `rules check`.
//!
//! With no config file at all, [`DEFAULT_CONFIG`] is used: the same loader, the same checks.
//!
//! Secrets and webhook URLs never appear in error messages: only the names of the variables or
//! files that hold them do.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::github;
use crate::rules::{self, Bots, Pattern, Then};
use crate::signature::Secret;
use crate::slack::WebhookUrl;

/// The config used when no file is given and `./notifier.toml` does not exist.
pub const DEFAULT_CONFIG: &str = r#"
[server]
listen = "127.0.0.1:8080"
path = "/webhook"
secret_env = "GITHUB_WEBHOOK_SECRET"

[storage]
path = "notifier.db"

[channels.console]
kind = "console"
max_per_second = 0

# Issues, except edits (too chatty to announce).
[[routes]]
events = ["issues"]
actions = ["opened", "closed", "reopened", "assigned", "unassigned", "labeled", "unlabeled"]
channel = "console"

[[routes]]
events = ["issue_comment", "pull_request", "pull_request_review", "star", "watch", "fork",
          "release", "push", "create", "delete"]
channel = "console"
"#;

/// Where the embedded defaults say they come from in messages.
pub const DEFAULT_ORIGIN: &str = "<embedded defaults>";

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_PATH: &str = "notifier.toml";

/// GitHub's own cap on a webhook payload.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 25 * 1024 * 1024;

/// A validated config. Values that live outside the file are resolved on demand.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, or [`DEFAULT_ORIGIN`].
    pub origin: String,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub worker: WorkerConfig,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The webhook path, always starting with `/`.
    pub path: String,
    pub secrets: Vec<Located<SecretSource>>,
    pub max_body_bytes: u64,
    /// How long a client may take to send its request headers.
    pub header_timeout: Duration,
    /// How long a client may take to send its request body.
    pub body_timeout: Duration,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The name of an environment variable holding the secret.
    Env(String),
    /// A file holding the secret; one trailing newline is ignored.
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub path: PathBuf,
    /// How long a write waits for a lock held by another process before the receiver gives up
    /// and answers 503.
    pub busy_timeout: Duration,
    /// The most the database file may grow to; past it the receiver answers 503.
    pub max_bytes: Option<u64>,
}

impl StorageConfig {
    pub fn options(&self) -> crate::store::Options {
        crate::store::Options { busy_timeout: self.busy_timeout, max_bytes: self.max_bytes }
    }
}

/// Timings of the worker. Tests set them to milliseconds.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How often the worker looks for deliveries queued by other processes (`notifier replay`).
    pub poll_interval: Duration,
    /// Attempts per delivery before it is marked `failed`.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub retry_initial: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// Timeout of one request to Slack, connecting included.
    pub send_timeout: Duration,
    /// A message still failing this long after it was queued is marked `failed`.
    pub give_up_after: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    pub kind: ChannelKind,
    /// Messages a second, with short bursts; 0 turns pacing off.
    pub max_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelKind {
    Slack { url: Located<UrlSource> },
    Console,
}

/// Slack's rate limit for an incoming webhook: about one message a second.
pub const DEFAULT_MAX_PER_SECOND: f64 = 1.0;

#[derive(Clone, PartialEq, Eq)]
pub enum UrlSource {
    Inline(String),
    Env(String),
}

impl fmt::Debug for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            UrlSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
        }
    }
}

/// One `[[routes]]` table. Every matcher is optional; an empty list or `None` matches anything.
/// See [`crate::rules`] for what each one matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// GitHub event names (`X-GitHub-Event`).
    pub events: Vec<String>,
    /// Payload `action`s; a non-empty list never matches events without an action.
    pub actions: Vec<String>,
    pub repos: Vec<Pattern>,
    pub branches: Vec<Pattern>,
    pub labels_any: Vec<Pattern>,
    pub labels_none: Vec<Pattern>,
    pub authors: Vec<Pattern>,
    pub authors_none: Vec<Pattern>,
    pub bots: Bots,
    pub draft: Option<bool>,
    pub then: Then,
    /// Try later routes too after this one matches.
    pub continue_: bool,
    /// The route's `[[routes]]` header.
    pub at: Location,
}

/// Where a channel's messages go, once its URL is resolved.
#[derive(Debug, Clone)]
pub enum Target {
    Slack(WebhookUrl),
    Console,
}

/// A channel, resolved: where its messages go, and how fast.
#[derive(Debug, Clone)]
pub struct Destination {
    pub target: Target,
    pub max_per_second: f64,
}

/// A place in a config file, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: Location,
}

/// One problem in a config, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub at: Location,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Every problem found in a config, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// One line for the whole: `2 problems in notifier.toml`.
    pub fn summary(&self) -> String {
        let file = self.0.first().map_or("the config", |e| &*e.at.file);
        match self.0.len() {
            1 => format!("1 problem in {file}"),
            n => format!("{n} problems in {file}"),
        }
    }
}

/// Every problem on a line of its own, as `FILE:LINE:COLUMN: message`.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Loads the config from `path`, or from `./notifier.toml` if it exists, or the embedded defaults.
/// Fails if the file can't be read or has any problem.
pub fn load(path: Option<&Path>) -> Result<Config, Box<dyn std::error::Error + Send + Sync>> {
    let (config, problems) = load_checked(path, Check::FileOnly)?;
    if problems.is_empty() { Ok(config) } else { Err(Box::new(ConfigErrors(problems))) }
}

/// How much [`load_checked`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The file alone.
    FileOnly,
    /// The file, and the variables and files it names (secrets, Slack URLs), as `serve` needs.
    Everything,
}

/// Loads the config like [`load`], and returns it with every problem found, in file order.
/// Fails outright only when the file can't be read, or its TOML can't be read into a config
/// (a syntax error or an unknown key, which stop the reading).
pub fn load_checked(
    path: Option<&Path>,
    check: Check,
) -> Result<(Config, Vec<ConfigError>), Box<dyn std::error::Error + Send + Sync>> {
    let (origin, text) = match path {
        Some(path) => (path, None),
        None if Path::new(DEFAULT_PATH).exists() => (Path::new(DEFAULT_PATH), None),
        None => (Path::new(DEFAULT_ORIGIN), Some(DEFAULT_CONFIG.to_string())),
    };
    let text = match text {
        Some(text) => text,
        None => std::fs::read_to_string(origin)
            .map_err(|e| format!("reading config {}: {e}", origin.display()))?,
    };
    let (config, mut problems) = parse_all(&origin.display().to_string(), &text)?;
    if check == Check::Everything
        && let Err(ConfigErrors(more)) = config.resolve()
    {
        problems.extend(more);
        problems.sort_by_key(|e| (e.at.line, e.at.column));
    }
    Ok((config, problems))
}

/// Parses and validates config text. `origin` names the file in messages.
pub fn parse(origin: &str, text: &str) -> Result<Config, ConfigErrors> {
    let (config, problems) = parse_all(origin, text)?;
    if problems.is_empty() { Ok(config) } else { Err(ConfigErrors(problems)) }
}

/// Parses config text, returning the config (as far as it is valid) and its problems. Fails
/// outright only when the TOML can't be read into a config at all.
fn parse_all(origin: &str, text: &str) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    let locator = Locator::new(origin, text);
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let at = locator.locate(e.span().unwrap_or(0..0));
        ConfigErrors(vec![ConfigError { at, message: e.message().trim_end().to_string() }])
    })?;
    let mut problems = Problems { locator: &locator, errors: Vec::new() };
    let config = validate(raw, &mut problems);
    problems.errors.sort_by_key(|e| (e.at.line, e.at.column));
    Ok((config, problems.errors))
}

/// What lives outside the config file, read and checked.
#[derive(Debug)]
pub struct Resolved {
    pub secrets: Vec<Secret>,
    pub channels: BTreeMap<String, Destination>,
}

impl Config {
    /// Reads the secrets and the channels' URLs, reporting every problem with both at once.
    /// `serve` and `rules check` both call this, so they refuse a config with the same messages.
    pub fn resolve(&self) -> Result<Resolved, ConfigErrors> {
        match (self.secrets(), self.channel_targets()) {
            (Ok(secrets), Ok(channels)) => Ok(Resolved { secrets, channels }),
            (secrets, targets) => {
                let mut errors = secrets.err().map(|e| e.0).unwrap_or_default();
                errors.extend(targets.err().map(|e| e.0).unwrap_or_default());
                errors.sort_by_key(|e| (e.at.line, e.at.column));
                Err(ConfigErrors(errors))
            }
        }
    }

    /// The webhook secrets, read from their variables or files. Blocks on file reads.
    pub fn secrets(&self) -> Result<Vec<Secret>, ConfigErrors> {
        self.secrets_from(|name| std::env::var_os(name))
    }

    fn secrets_from(
        &self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Vec<Secret>, ConfigErrors> {
        let mut secrets = Vec::new();
        let mut errors = Vec::new();
        for source in &self.server.secrets {
            let problem = |message: String| ConfigError { at: source.at.clone(), message };
            match &source.value {
                SecretSource::Env(name) => match env(name) {
                    Some(value) if !value.is_empty() => {
                        secrets.push(Secret::new(value.into_encoded_bytes()))
                    }
                    Some(_) => errors.push(problem(format!(
                        "the environment variable {name} holding the webhook secret is empty"
                    ))),
                    None => errors.push(problem(format!(
                        "the environment variable {name} holding the webhook secret is not set; \
                         set it to the secret entered in GitHub's webhook settings"
                    ))),
                },
                SecretSource::File(path) => match std::fs::read(path) {
                    Ok(mut bytes) => {
                        if bytes.ends_with(b"\n") {
                            bytes.pop();
                            if bytes.ends_with(b"\r") {
                                bytes.pop();
                            }
                        }
                        if bytes.is_empty() {
                            errors.push(problem(format!(
                                "the secret file {} is empty",
                                path.display()
                            )));
                        } else {
                            secrets.push(Secret::new(bytes));
                        }
                    }
                    Err(e) => errors
                        .push(problem(format!("reading the secret file {}: {e}", path.display()))),
                },
            }
        }
        if errors.is_empty() { Ok(secrets) } else { Err(ConfigErrors(errors)) }
    }

    /// Every channel, with Slack URLs read from their variables.
    fn channel_targets(&self) -> Result<BTreeMap<String, Destination>, ConfigErrors> {
        self.channel_targets_from(|name| std::env::var(name).ok())
    }

    fn channel_targets_from(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, Destination>, ConfigErrors> {
        let mut targets = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, channel) in &self.channels {
            let target = match &channel.kind {
                ChannelKind::Console => Target::Console,
                ChannelKind::Slack { url } => match &url.value {
                    UrlSource::Inline(url) => Target::Slack(WebhookUrl::new(url.clone())),
                    UrlSource::Env(var) => match env(var) {
                        Some(value) if is_http_url(&value) => Target::Slack(WebhookUrl::new(value)),
                        Some(_) => {
                            errors.push(ConfigError {
                                at: url.at.clone(),
                                message: format!(
                                    "the environment variable {var} for channel '{name}' does not \
                                     hold an http(s) URL; set it to the Slack incoming-webhook URL"
                                ),
                            });
                            continue;
                        }
                        None => {
                            errors.push(ConfigError {
                                at: url.at.clone(),
                                message: format!(
                                    "the environment variable {var} for channel '{name}' is not \
                                     set; set it to the Slack incoming-webhook URL"
                                ),
                            });
                            continue;
                        }
                    },
                },
            };
            let max_per_second = channel.max_per_second;
            targets.insert(name.clone(), Destination { target, max_per_second });
        }
        if errors.is_empty() { Ok(targets) } else { Err(ConfigErrors(errors)) }
    }
}

fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    matches!(rest, Some(host) if !host.is_empty() && !s.chars().any(char::is_whitespace))
}

// ---- raw TOML shape ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    worker: RawWorker,
    #[serde(default)]
    channels: BTreeMap<Spanned<String>, Spanned<RawChannel>>,
    #[serde(default)]
    routes: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    secret_env: Option<Spanned<OneOrMany>>,
    secret_file: Option<Spanned<OneOrMany>>,
    max_body_bytes: Option<Spanned<i64>>,
    header_timeout_ms: Option<Spanned<i64>>,
    body_timeout_ms: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: Option<Spanned<String>>,
    busy_timeout_ms: Option<Spanned<i64>>,
    max_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorker {
    poll_interval_ms: Option<Spanned<i64>>,
    max_attempts: Option<Spanned<i64>>,
    retry_initial_ms: Option<Spanned<i64>>,
    retry_max_ms: Option<Spanned<i64>>,
    send_timeout_ms: Option<Spanned<i64>>,
    give_up_after_ms: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    kind: Spanned<String>,
    webhook_url: Option<Spanned<String>>,
    webhook_url_env: Option<Spanned<String>>,
    max_per_second: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    events: Vec<Spanned<String>>,
    #[serde(default)]
    actions: Vec<Spanned<String>>,
    #[serde(default)]
    repos: Vec<Spanned<String>>,
    #[serde(default)]
    branches: Vec<Spanned<String>>,
    #[serde(default)]
    labels_any: Vec<Spanned<String>>,
    #[serde(default)]
    labels_none: Vec<Spanned<String>>,
    #[serde(default)]
    authors: Vec<Spanned<String>>,
    #[serde(default)]
    authors_none: Vec<Spanned<String>>,
    bots: Option<Spanned<String>>,
    draft: Option<bool>,
    channel: Option<Spanned<String>>,
    skip: Option<Spanned<String>>,
    #[serde(rename = "continue")]
    continue_: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

// ---- validation ----------------------------------------------------------------------------

struct Problems<'a> {
    locator: &'a Locator,
    errors: Vec<ConfigError>,
}

impl Problems<'_> {
    fn at(&self, span: Range<usize>) -> Location {
        self.locator.locate(span)
    }

    fn push(&mut self, span: Range<usize>, message: impl Into<String>) {
        let at = self.at(span);
        self.errors.push(ConfigError { at, message: message.into() });
    }

    /// A positive integer setting, or its default.
    fn positive(&mut self, value: Option<Spanned<i64>>, key: &str, default: u64) -> u64 {
        match value {
            None => default,
            Some(v) if *v.get_ref() > 0 => *v.get_ref() as u64,
            Some(v) => {
                self.push(v.span(), format!("{key} must be a positive integer"));
                default
            }
        }
    }
}

fn validate(raw: RawConfig, p: &mut Problems) -> Config {
    let server = validate_server(raw.server, p);

    let storage = StorageConfig {
        path: match raw.storage.path {
            Some(path) if path.get_ref().is_empty() => {
                p.push(path.span(), "storage path must not be empty");
                PathBuf::from("notifier.db")
            }
            Some(path) => PathBuf::from(path.into_inner()),
            None => PathBuf::from("notifier.db"),
        },
        busy_timeout: Duration::from_millis(p.positive(
            raw.storage.busy_timeout_ms,
            "busy_timeout_ms",
            crate::store::DEFAULT_BUSY_TIMEOUT.as_millis() as u64,
        )),
        max_bytes: match raw.storage.max_bytes {
            None => None,
            Some(v) if *v.get_ref() >= 65_536 => Some(*v.get_ref() as u64),
            Some(v) => {
                p.push(v.span(), "max_bytes must be at least 65536");
                None
            }
        },
    };

    let w = raw.worker;
    let worker = WorkerConfig {
        poll_interval: Duration::from_millis(p.positive(
            w.poll_interval_ms,
            "poll_interval_ms",
            1000,
        )),
        max_attempts: p.positive(w.max_attempts, "max_attempts", 5).min(u32::MAX as u64) as u32,
        retry_initial: Duration::from_millis(p.positive(
            w.retry_initial_ms,
            "retry_initial_ms",
            2_000,
        )),
        retry_max: Duration::from_millis(p.positive(w.retry_max_ms, "retry_max_ms", 300_000)),
        send_timeout: Duration::from_millis(p.positive(
            w.send_timeout_ms,
            "send_timeout_ms",
            10_000,
        )),
        give_up_after: Duration::from_millis(p.positive(
            w.give_up_after_ms,
            "give_up_after_ms",
            24 * 60 * 60 * 1000,
        )),
    };

    let mut channels = BTreeMap::new();
    // Every channel named, valid or not, so a route naming a broken one is not called undefined.
    let declared: Vec<String> = raw.channels.keys().map(|name| name.get_ref().clone()).collect();
    for (name, channel) in raw.channels {
        let name_span = name.span();
        let name = name.into_inner();
        if name.trim().is_empty() {
            p.push(name_span, "channel names must not be empty");
        }
        let max_per_second = match &channel.get_ref().max_per_second {
            None => DEFAULT_MAX_PER_SECOND,
            Some(rate) if rate.get_ref().is_finite() && *rate.get_ref() >= 0.0 => *rate.get_ref(),
            Some(rate) => {
                p.push(rate.span(), "max_per_second must be 0 (no pacing) or a positive number");
                DEFAULT_MAX_PER_SECOND
            }
        };
        if let Some(kind) = validate_channel(&name, channel, p) {
            channels.insert(name, ChannelConfig { kind, max_per_second });
        }
    }

    let mut routes = Vec::new();
    // Whether each route was free of problems; a broken one is left out of the shadowing check,
    // which would otherwise report consequences of its problem.
    let mut sound = Vec::new();
    for route in raw.routes {
        let before = p.errors.len();
        routes.push(validate_route(route, &declared, p));
        sound.push(p.errors.len() == before);
    }
    for (j, later) in routes.iter().enumerate() {
        let shadowing = (0..j).find(|&i| sound[i] && sound[j] && rules::shadows(&routes[i], later));
        if let Some(i) = shadowing {
            p.errors.push(ConfigError {
                at: later.at.clone(),
                message: format!(
                    "route {} can never match: route {} (line {}) matches every delivery it would \
                     and does not continue",
                    j + 1,
                    i + 1,
                    routes[i].at.line
                ),
            });
        }
    }

    Config { origin: p.locator.file.to_string(), server, storage, worker, channels, routes }
}

fn validate_route(raw: Spanned<RawRoute>, channels: &[String], p: &mut Problems) -> RouteConfig {
    let at = p.at(raw.span());
    let table_span = raw.span();
    let raw = raw.into_inner();

    let mut events = Vec::new();
    for event in raw.events {
        let name = event.get_ref();
        if github::SUPPORTED.iter().any(|(known, _)| known == name) {
            events.push(event.into_inner());
        } else if name == "ping" {
            p.push(
                event.span(),
                "ping deliveries are always recorded as skipped ('ping'); no route can post them",
            );
        } else {
            let known: Vec<&str> = github::SUPPORTED.iter().map(|(e, _)| *e).collect();
            let hint = match suggest(name, &known) {
                Some(near) => format!("did you mean '{near}'? "),
                None => String::new(),
            };
            p.push(
                event.span(),
                format!("unknown event '{name}'; {hint}notifier handles: {}", known.join(", ")),
            );
        }
    }

    let mut actions = Vec::new();
    for action in raw.actions {
        let name = action.get_ref();
        let of_events: Vec<(&str, &[&str])> = github::SUPPORTED
            .iter()
            .filter(|(e, _)| events.is_empty() || events.iter().any(|x| x == e))
            .copied()
            .collect();
        let known: Vec<&str> =
            of_events.iter().flat_map(|(_, actions)| actions.iter().copied()).collect();
        if known.contains(&name.as_str()) {
            actions.push(action.into_inner());
            continue;
        }
        let scope =
            if events.is_empty() { String::new() } else { format!(" for {}", events.join(", ")) };
        let message = if known.is_empty() {
            format!("{} has no actions; remove actions", events.join(", "))
        } else if name == "merged"
            && (events.is_empty() || events.iter().any(|e| e == "pull_request"))
        {
            format!(
                "unknown action 'merged'{scope}: GitHub sends a merge as 'closed'; use actions = [\"closed\"] \
                 (the message tells merged from closed)"
            )
        } else {
            let hint = suggest(name, &known)
                .map(|near| format!("did you mean '{near}'? "))
                .unwrap_or_default();
            let mut unique = known.clone();
            unique.sort_unstable();
            unique.dedup();
            format!("unknown action '{name}'{scope}; {hint}notifier handles: {}", unique.join(", "))
        };
        p.push(action.span(), message);
    }

    let mut patterns =
        |list: Vec<Spanned<String>>, key: &str, case_insensitive: bool| -> Vec<Pattern> {
            list.into_iter()
                .filter_map(|item| match Pattern::new(item.get_ref(), case_insensitive) {
                    Ok(_) if item.get_ref().is_empty() => {
                        p.push(item.span(), format!("empty pattern in {key}"));
                        None
                    }
                    Ok(pattern) => Some(pattern),
                    Err(why) => {
                        p.push(
                            item.span(),
                            format!("invalid pattern '{}' in {key}: {why}", item.get_ref()),
                        );
                        None
                    }
                })
                .collect()
        };
    let repos = patterns(raw.repos, "repos", true);
    let branches = patterns(raw.branches, "branches", false);
    let labels_any = patterns(raw.labels_any, "labels_any", true);
    let labels_none = patterns(raw.labels_none, "labels_none", true);
    let authors = patterns(raw.authors, "authors", true);
    let authors_none = patterns(raw.authors_none, "authors_none", true);

    let bots = match raw.bots {
        None => Bots::Include,
        Some(bots) => match bots.get_ref().as_str() {
            "include" => Bots::Include,
            "exclude" => Bots::Exclude,
            "only" => Bots::Only,
            other => {
                p.push(
                    bots.span(),
                    format!("bots = '{other}' is not one of \"include\", \"exclude\", \"only\""),
                );
                Bots::Include
            }
        },
    };

    let continue_ = raw.continue_.as_ref().is_some_and(|c| *c.get_ref());
    let then = match (raw.channel, raw.skip) {
        (Some(channel), None) => {
            if !channels.contains(channel.get_ref()) {
                let hint = if channels.is_empty() {
                    "no channels are defined; add a [channels.NAME] table".to_string()
                } else {
                    format!("defined channels: {}", channels.join(", "))
                };
                p.push(
                    channel.span(),
                    format!("route names undefined channel '{}' ({hint})", channel.get_ref()),
                );
            }
            Then::Channel(channel.into_inner())
        }
        (None, Some(skip)) => {
            if skip.get_ref().trim().is_empty() {
                p.push(skip.span(), "skip needs a reason, e.g. skip = \"noise: new commits\"");
            }
            if let Some(c) = raw.continue_.as_ref().filter(|c| *c.get_ref()) {
                p.push(c.span(), "a skip route ends routing; continue = true has no effect here");
            }
            Then::Skip(skip.into_inner())
        }
        (Some(channel), Some(_)) => {
            p.push(channel.span(), "a route takes channel or skip, not both");
            Then::Channel(channel.into_inner())
        }
        (None, None) => {
            p.push(table_span, "route needs channel = \"NAME\" or skip = \"reason\"");
            Then::Skip(String::new())
        }
    };

    RouteConfig {
        events,
        actions,
        repos,
        branches,
        labels_any,
        labels_none,
        authors,
        authors_none,
        bots,
        draft: raw.draft,
        then,
        continue_,
        at,
    }
}

/// The known name closest to `name`, if it is close enough to be a typo.
fn suggest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn validate_server(raw: RawServer, p: &mut Problems) -> ServerConfig {
    let listen = match raw.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(listen) => match listen.get_ref().parse() {
            Ok(addr) => addr,
            Err(_) => {
                p.push(
                    listen.span(),
                    format!(
                        "listen address '{}' is not IP:PORT (for example \"127.0.0.1:8080\" or \"0.0.0.0:8080\")",
                        listen.get_ref()
                    ),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        },
    };

    let path = match raw.path {
        None => "/webhook".to_string(),
        Some(path) => {
            let text = path.get_ref();
            if !text.starts_with('/') || text.contains(['?', '#', ' ']) {
                p.push(path.span(), format!("path '{text}' must start with '/' and hold no query"));
            }
            path.into_inner()
        }
    };

    let mut secrets = Vec::new();
    if let Some(envs) = raw.secret_env {
        let at = p.at(envs.span());
        for name in envs.into_inner().into_vec() {
            if name.is_empty() || name.contains('=') {
                p.errors.push(ConfigError {
                    at: at.clone(),
                    message: format!("'{name}' is not an environment variable name"),
                });
            }
            secrets.push(Located { value: SecretSource::Env(name), at: at.clone() });
        }
    }
    if let Some(files) = raw.secret_file {
        let at = p.at(files.span());
        for file in files.into_inner().into_vec() {
            secrets
                .push(Located { value: SecretSource::File(PathBuf::from(file)), at: at.clone() });
        }
    }
    if secrets.is_empty() {
        // Neither key given: the documented default.
        let at = Location { file: p.locator.file.clone(), line: 1, column: 1 };
        secrets.push(Located { value: SecretSource::Env("GITHUB_WEBHOOK_SECRET".into()), at });
    }

    let max_body_bytes = p.positive(raw.max_body_bytes, "max_body_bytes", DEFAULT_MAX_BODY_BYTES);

    let header_timeout =
        Duration::from_millis(p.positive(raw.header_timeout_ms, "header_timeout_ms", 10_000));
    let body_timeout =
        Duration::from_millis(p.positive(raw.body_timeout_ms, "body_timeout_ms", 30_000));
    let max_connections = p.positive(raw.max_connections, "max_connections", 256) as usize;

    ServerConfig {
        listen,
        path,
        secrets,
        max_body_bytes,
        header_timeout,
        body_timeout,
        max_connections,
    }
}

fn validate_channel(name: &str, raw: Spanned<RawChannel>, p: &mut Problems) -> Option<ChannelKind> {
    let table_span = raw.span();
    let raw = raw.into_inner();
    match raw.kind.get_ref().as_str() {
        "console" => {
            for key in [&raw.webhook_url, &raw.webhook_url_env].into_iter().flatten() {
                p.push(
                    key.span(),
                    format!("channel '{name}' is a console channel and takes no webhook URL"),
                );
            }
            Some(ChannelKind::Console)
        }
        "slack" => match (raw.webhook_url, raw.webhook_url_env) {
            (Some(url), None) => {
                if !is_http_url(url.get_ref()) {
                    // Don't echo the value: it is a secret if it is anything like a real URL.
                    p.push(
                        url.span(),
                        format!("webhook_url of channel '{name}' is not an http(s) URL"),
                    );
                }
                let at = p.at(url.span());
                Some(ChannelKind::Slack {
                    url: Located { value: UrlSource::Inline(url.into_inner()), at },
                })
            }
            (None, Some(var)) => {
                let at = p.at(var.span());
                Some(ChannelKind::Slack {
                    url: Located { value: UrlSource::Env(var.into_inner()), at },
                })
            }
            (Some(url), Some(_)) => {
                p.push(
                    url.span(),
                    format!("channel '{name}' sets both webhook_url and webhook_url_env; keep one"),
                );
                None
            }
            (None, None) => {
                p.push(
                    table_span,
                    format!(
                        "slack channel '{name}' needs webhook_url_env (preferred) or webhook_url"
                    ),
                );
                None
            }
        },
        other => {
            p.push(
                raw.kind.span(),
                format!("unknown channel kind '{other}'; expected \"slack\" or \"console\""),
            );
            None
        }
    }
}

/// Turns byte offsets into 1-based lines and columns (columns count characters).
struct Locator {
    file: Arc<str>,
    text: String,
    line_starts: Vec<usize>,
}

impl Locator {
    fn new(file: &str, text: &str) -> Locator {
        let line_starts =
            std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Locator { file: file.into(), text: text.to_string(), line_starts }
    }

    fn locate(&self, span: Range<usize>) -> Location {
        let offset = span.start.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        Location { file: self.file.clone(), line, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse("test.toml", text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let config = parse(DEFAULT_ORIGIN, DEFAULT_CONFIG).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.server.path, "/webhook");
        assert_eq!(config.server.max_body_bytes, 25 * 1024 * 1024);
        assert_eq!(config.storage.path, PathBuf::from("notifier.db"));
        assert_eq!(
            config.channels.get("console"),
            Some(&ChannelConfig { kind: ChannelKind::Console, max_per_second: 0.0 })
        );
        assert_eq!(config.routes.len(), 2);
        assert_eq!(config.routes[0].events, vec!["issues"]);
        assert!(!config.routes[0].actions.contains(&"edited".to_string()));
        assert_eq!(
            config.server.secrets[0].value,
            SecretSource::Env("GITHUB_WEBHOOK_SECRET".into())
        );
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../notifier.example.toml");
        if let Err(e) = parse("notifier.example.toml", text) {
            panic!("{e}");
        }
    }

    #[test]
    fn an_empty_file_gets_the_documented_defaults() {
        let config = parse("empty.toml", "").unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.worker.max_attempts, 5);
        assert!(config.routes.is_empty());
    }

    #[test]
    fn a_syntax_error_carries_line_and_column() {
        assert_eq!(
            errors("[server]\nlisten = \"127.0.0.1:80\n"),
            vec!["test.toml:2:23: invalid basic string, expected `\"`"]
        );
    }

    #[test]
    fn an_unknown_key_carries_line_and_column() {
        let got = errors("[server]\nlisten = \"127.0.0.1:8080\"\nlisten_port = 8080\n");
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("test.toml:3:1: unknown field `listen_port`"), "{got:?}");
    }

    #[test]
    fn every_semantic_problem_is_reported_with_its_location() {
        let text = r#"[server]
listen = "localhost"
path = "webhook"
max_body_bytes = 0

[channels.dev]
kind = "slak"

[channels.reviews]
kind = "slack"

[[routes]]
events = ["issues"]
channel = "nowhere"
"#;
        assert_eq!(
            errors(text),
            vec![
                "test.toml:2:10: listen address 'localhost' is not IP:PORT (for example \"127.0.0.1:8080\" or \"0.0.0.0:8080\")",
                "test.toml:3:8: path 'webhook' must start with '/' and hold no query",
                "test.toml:4:18: max_body_bytes must be a positive integer",
                "test.toml:7:8: unknown channel kind 'slak'; expected \"slack\" or \"console\"",
                "test.toml:9:1: slack channel 'reviews' needs webhook_url_env (preferred) or webhook_url",
                "test.toml:14:11: route names undefined channel 'nowhere' (defined channels: dev, reviews)",
            ]
        );
    }

    #[test]
    fn every_route_problem_is_reported_with_its_location() {
        let text = r#"[channels.dev]
kind = "console"

[[routes]]
events = ["pull_requests", "ping", "issues"]
actions = ["merged", "opend"]
channel = "dev"

[[routes]]
events = ["push"]
actions = ["opened"]
repos = ["octo-org/{api"]
bots = "never"
skip = "noise"
continue = true

[[routes]]
channel = "dev"
skip = "both"

[[routes]]
draft = true
"#;
        assert_eq!(
            errors(text),
            vec![
                "test.toml:5:11: unknown event 'pull_requests'; did you mean 'pull_request'? notifier handles: issues, issue_comment, pull_request, pull_request_review, star, watch, fork, release, push, create, delete",
                "test.toml:5:28: ping deliveries are always recorded as skipped ('ping'); no route can post them",
                "test.toml:6:12: unknown action 'merged' for issues; notifier handles: assigned, closed, edited, labeled, opened, reopened, unassigned, unlabeled",
                "test.toml:6:22: unknown action 'opend' for issues; did you mean 'opened'? notifier handles: assigned, closed, edited, labeled, opened, reopened, unassigned, unlabeled",
                "test.toml:11:12: push has no actions; remove actions",
                "test.toml:12:10: invalid pattern 'octo-org/{api' in repos: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)",
                "test.toml:13:8: bots = 'never' is not one of \"include\", \"exclude\", \"only\"",
                "test.toml:15:12: a skip route ends routing; continue = true has no effect here",
                "test.toml:18:11: a route takes channel or skip, not both",
                "test.toml:21:1: route needs channel = \"NAME\" or skip = \"reason\"",
            ]
        );
    }

    #[test]
    fn a_route_that_can_never_match_is_reported() {
        let text = "[channels.dev]\nkind = \"console\"\n\n[[routes]]\nevents = [\"issues\"]\nchannel = \"dev\"\n\n\
                    [[routes]]\nevents = [\"issues\"]\nactions = [\"opened\"]\nchannel = \"dev\"\n";
        assert_eq!(
            errors(text),
            vec![
                "test.toml:8:1: route 2 can never match: route 1 (line 4) matches every delivery it would and does not continue"
            ]
        );
    }

    #[test]
    fn an_inline_webhook_url_that_is_not_http_is_refused_without_echoing_it() {
        let got = errors(
            "[channels.dev]\nkind = \"slack\"\nwebhook_url = \"hooks.slack.com/T0/B0/secret\"\n",
        );
        assert_eq!(got, vec!["test.toml:3:15: webhook_url of channel 'dev' is not an http(s) URL"]);
    }

    #[test]
    fn secrets_accept_a_list_for_rotation() {
        let config = parse("t.toml", "[server]\nsecret_env = [\"NEW\", \"OLD\"]\n").unwrap();
        let env = |name: &str| Some(format!("value-of-{name}").into());
        let secrets = config.secrets_from(env).unwrap();
        assert_eq!(secrets, vec![Secret::new("value-of-NEW"), Secret::new("value-of-OLD")]);
    }

    #[test]
    fn secret_files_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret value\n").unwrap();
        let text = format!("[server]\nsecret_file = {:?}\n", file.display().to_string());
        let config = parse("t.toml", &text).unwrap();
        assert_eq!(config.secrets_from(|_| None).unwrap(), vec![Secret::new("s3cret value")]);
    }

    #[test]
    fn unset_secret_variables_are_named_with_their_location() {
        let config = parse("t.toml", "[server]\nsecret_env = \"HOOK_SECRET\"\n").unwrap();
        let err = config.secrets_from(|_| None).unwrap_err().to_string();
        assert!(err.starts_with("t.toml:2:14: the environment variable HOOK_SECRET"), "{err}");
        assert!(err.contains("not set"), "{err}");
    }

    #[test]
    fn unset_webhook_url_variables_are_reported_and_urls_never_echoed() {
        let text = "[channels.dev]\nkind = \"slack\"\nwebhook_url_env = \"SLACK_DEV\"\n\n\
                    [channels.ops]\nkind = \"slack\"\nwebhook_url_env = \"SLACK_OPS\"\n";
        let config = parse("t.toml", text).unwrap();
        let env = |name: &str| (name == "SLACK_OPS").then(|| "not a url with s3cret".to_string());
        let err = config.channel_targets_from(env).unwrap_err().to_string();
        assert!(
            err.contains(
                "t.toml:3:19: the environment variable SLACK_DEV for channel 'dev' is not set"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "t.toml:7:19: the environment variable SLACK_OPS for channel 'ops' does not hold"
            ),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }
}
