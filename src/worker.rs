//! The worker: a router thread, and one sender thread per channel.
//!
//! ```text
//! router:          store.claim → github::normalize → rules::route → render::message → store.route
//! sender (each):   store.claim_post → pace → slack::send → store.record_post
//! ```
//!
//! The router turns each stored delivery into a skip, a failure, or one outbox row per channel
//! it goes to. Each channel's sender posts its own rows in order, so one channel's trouble (a
//! hanging webhook, a 429, an outage) never holds up another's.
//!
//! The database holds the truth; [`Wakeup`] only makes the threads look early. The receiver's
//! writer calls [`Wakeup::notify`] after each commit, and the router after each routing, so new
//! work is picked up at once. Every thread also polls, so it finds rows queued by another process
//! (`notifier replay`) or whose retry time has come.
//!
//! # Retries
//!
//! A retryable failure (429, 5xx, 408, timeout, network) puts the message back with a later
//! `next_attempt_at_ms` and pauses its channel until then, keeping the channel's messages in
//! order: exponential backoff from `retry_initial` up to `retry_max`, with jitter, or Slack's
//! `Retry-After` for a 429 (a missing or unreadable value counts as [`DEFAULT_RETRY_AFTER`], and
//! any value is clamped to [`MAX_RETRY_AFTER`]). After `max_attempts` attempts, or once the
//! message is older than `give_up_after`, it is `failed`. Any other 4xx fails it at once.
//!
//! # Pacing
//!
//! Slack allows about one message per second per incoming webhook, with short bursts. Each
//! sender spends tokens from a bucket that refills at the channel's `max_per_second` and holds
//! [`PACING_BURST`]; 0 turns pacing off.
//!
//! # Duplicate announcements
//!
//! GitHub sends `watch` started alongside `star` created for one star. Both normalize to the
//! same announcement; the first routed is posted, and the other is skipped with the reason
//! `duplicate: already announced by delivery ID`.
//!
//! # Stopping
//!
//! [`Wakeup::stop`] lets every thread finish what it is sending, then return.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::config::{Destination, RouteConfig, Target, WorkerConfig};
use crate::github::{self, Normalized};
use crate::render;
use crate::rules::{self, Decision};
use crate::slack::{self, SendError};
use crate::store::{Claimed, NewPost, Post, PostOutcome, Routing, Store, Summary, now_ms};

/// How long an announcement (a star) suppresses the same announcement from another delivery.
/// GitHub sends `watch` started within seconds of `star` created; a longer window also keeps
/// star, unstar, star again from announcing twice.
const ANNOUNCEMENT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The wait after a 429 without a readable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The longest wait a 429's `Retry-After` can impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// How many messages a channel may send at once after a quiet spell.
pub const PACING_BURST: f64 = 3.0;

/// Wakes the worker's threads early, or stops them.
#[derive(Default)]
pub struct Wakeup {
    state: Mutex<WakeState>,
    changed: Condvar,
}

#[derive(Default)]
struct WakeState {
    /// Bumped by every notify, so that each waiting thread sees it.
    generation: u64,
    stopped: bool,
}

impl Wakeup {
    /// Something new is in the database.
    pub fn notify(&self) {
        self.state.lock().expect("wakeup lock poisoned").generation += 1;
        self.changed.notify_all();
    }

    /// Finish what you are doing and return.
    pub fn stop(&self) {
        self.state.lock().expect("wakeup lock poisoned").stopped = true;
        self.changed.notify_all();
    }

    fn is_stopped(&self) -> bool {
        self.state.lock().expect("wakeup lock poisoned").stopped
    }

    /// The current generation; pass it to [`Wakeup::wait`] after looking for work.
    fn generation(&self) -> u64 {
        self.state.lock().expect("wakeup lock poisoned").generation
    }

    /// Waits until notified after generation `seen`, stopped, or `timeout` passes.
    fn wait(&self, seen: u64, timeout: Duration) {
        let state = self.state.lock().expect("wakeup lock poisoned");
        let _ = self
            .changed
            .wait_timeout_while(state, timeout, |s| s.generation == seen && !s.stopped)
            .expect("wakeup lock poisoned");
    }
}

/// The worker's threads and what they need.
pub struct Worker {
    /// The router's connection.
    pub store: Store,
    /// One connection per sender, by channel name; every channel needs one.
    pub sender_stores: BTreeMap<String, Store>,
    pub routes: Vec<RouteConfig>,
    pub channels: BTreeMap<String, Destination>,
    pub settings: WorkerConfig,
}

impl Worker {
    /// Starts the router and the senders.
    pub fn spawn(mut self, wakeup: Arc<Wakeup>) -> std::io::Result<Vec<thread::JoinHandle<()>>> {
        let mut threads = Vec::new();
        for (name, destination) in std::mem::take(&mut self.channels) {
            let store = self.sender_stores.remove(&name).expect("a store for every channel");
            let sender = Sender {
                channel: name.clone(),
                destination,
                store,
                settings: self.settings.clone(),
            };
            let wakeup = Arc::clone(&wakeup);
            threads.push(
                thread::Builder::new()
                    .name(format!("notifier-send-{name}"))
                    .spawn(move || sender.run(&wakeup))?,
            );
        }
        let router = Router { store: self.store, routes: self.routes, settings: self.settings };
        threads.push(
            thread::Builder::new()
                .name("notifier-router".into())
                .spawn(move || router.run(&wakeup))?,
        );
        Ok(threads)
    }
}

struct Router {
    store: Store,
    routes: Vec<RouteConfig>,
    settings: WorkerConfig,
}

impl Router {
    fn run(mut self, wakeup: &Wakeup) {
        while !wakeup.is_stopped() {
            let seen = wakeup.generation();
            match self.store.claim() {
                Ok(Some(delivery)) => {
                    let (summary, routing) = self.decide(&delivery);
                    log_routing(&delivery, &routing);
                    match self.store.route(&delivery.id, &summary, &routing, now_ms()) {
                        Ok(()) => wakeup.notify(),
                        Err(e) => {
                            // It stays unrouted and is tried again after the poll interval.
                            tracing::error!(delivery = %delivery.id, error = %e, "recording a routing failed");
                            wakeup.wait(seen, self.settings.poll_interval);
                        }
                    }
                }
                Ok(None) => wakeup.wait(seen, self.settings.poll_interval),
                Err(e) => {
                    tracing::error!(error = %e, "claiming a delivery failed; retrying after the poll interval");
                    wakeup.wait(seen, self.settings.poll_interval);
                }
            }
        }
    }

    /// Normalizes, routes and renders one delivery.
    fn decide(&self, delivery: &Claimed) -> (Summary, Routing) {
        let parsed = match github::normalize(&delivery.event, delivery.content_type, &delivery.body)
        {
            Ok(parsed) => parsed,
            Err(e) => return (Summary::default(), Routing::Failed { error: e.to_string() }),
        };
        let summary = Summary { action: parsed.action, repo: parsed.repo, note: parsed.note };
        let event = match parsed.normalized {
            Normalized::Event(event) => event,
            Normalized::Skip(reason) => return (summary, Routing::Skipped { reason }),
        };
        let routes = match rules::route(&event, &self.routes) {
            Decision::Send(routes) => routes,
            Decision::Skip { reason, .. } => return (summary, Routing::Skipped { reason }),
        };
        let announcement = event.announcement_key();
        if let Some(earlier) = self.announced_earlier(announcement.as_deref()) {
            let reason = format!("duplicate: already announced by delivery {earlier}");
            return (summary, Routing::Skipped { reason });
        }
        let message = render::message(&event).to_json().to_string();
        let posts = routes
            .into_iter()
            .map(|m| NewPost { route: m.route, channel: m.channel, message: message.clone() })
            .collect();
        (summary, Routing::Post { announcement, posts })
    }

    /// The delivery that already made `announcement` within [`ANNOUNCEMENT_WINDOW`], if any.
    fn announced_earlier(&self, announcement: Option<&str>) -> Option<String> {
        let since = now_ms() - ANNOUNCEMENT_WINDOW.as_millis() as i64;
        match self.store.announced_by(announcement?, since) {
            Ok(earlier) => earlier,
            Err(e) => {
                // Better a second star message than a lost first one.
                tracing::warn!(error = %e, "looking up earlier announcements failed");
                None
            }
        }
    }
}

fn log_routing(delivery: &Claimed, routing: &Routing) {
    let (id, event) = (&delivery.id, &delivery.event);
    match routing {
        Routing::Post { posts, .. } => {
            let channels: Vec<&str> = posts.iter().map(|p| p.channel.as_str()).collect();
            tracing::info!(delivery = %id, %event, channels = %channels.join(","), "routed");
        }
        Routing::Skipped { reason } => tracing::info!(delivery = %id, %event, %reason, "skipped"),
        Routing::Failed { error } => tracing::warn!(delivery = %id, %event, %error, "failed"),
    }
}

/// Posts one channel's messages, in order, paced.
struct Sender {
    channel: String,
    destination: Destination,
    store: Store,
    settings: WorkerConfig,
}

impl Sender {
    fn run(mut self, wakeup: &Wakeup) {
        let slack = slack::Client::new(self.settings.send_timeout);
        let mut pacer = Pacer::new(self.destination.max_per_second, now_ms());
        // Set after a retryable failure: nothing is sent to this channel before then.
        let mut paused_until = 0;
        // A message sent whose outcome could not be written (a full disk): it is written again
        // before anything else is sent, instead of the message being sent again.
        let mut unrecorded: Option<(Post, PostOutcome)> = None;
        while !wakeup.is_stopped() {
            let seen = wakeup.generation();
            if let Some((post, outcome)) = unrecorded.take()
                && let Err(e) = self.store.record_post(&post, &outcome, now_ms())
            {
                tracing::error!(delivery = %post.delivery_id, error = %e, "recording a post failed; will try again");
                unrecorded = Some((post, outcome));
                wakeup.wait(seen, self.settings.poll_interval);
                continue;
            }
            let now = now_ms();
            let wait = (paused_until - now).max(pacer.wait_ms(now));
            if wait > 0 {
                wakeup.wait(seen, Duration::from_millis(wait as u64));
                continue;
            }
            match self.store.claim_post(&self.channel, now) {
                Ok(Some(post)) => {
                    pacer.take(now_ms());
                    let outcome = self.attempt(&slack, &post);
                    if let PostOutcome::Retry { at_ms, .. } = outcome {
                        paused_until = at_ms;
                    }
                    unrecorded = Some((post, outcome));
                }
                Ok(None) => {
                    // Sleep until the next retry is due, or the poll interval.
                    let poll = self.settings.poll_interval;
                    let due = self.store.next_post_due(&self.channel).ok().flatten();
                    let until_due = due.map(|due| Duration::from_millis((due - now).max(1) as u64));
                    wakeup.wait(seen, until_due.map_or(poll, |d| d.min(poll)));
                }
                Err(e) => {
                    tracing::error!(channel = %self.channel, error = %e, "claiming a message failed");
                    wakeup.wait(seen, self.settings.poll_interval);
                }
            }
        }
        // Stopping: write down what was just sent, so it is not sent again after a restart.
        if let Some((post, outcome)) = unrecorded
            && let Err(e) = self.store.record_post(&post, &outcome, now_ms())
        {
            tracing::error!(delivery = %post.delivery_id, error = %e, "recording a post at shutdown failed");
        }
    }

    /// Sends one message and decides what happens next.
    fn attempt(&self, slack: &slack::Client, post: &Post) -> PostOutcome {
        let result = match &self.destination.target {
            Target::Slack(url) => slack.send(url, &post.message),
            Target::Console => {
                let text = serde_json::from_str::<serde_json::Value>(&post.message)
                    .ok()
                    .and_then(|m| m["text"].as_str().map(str::to_string))
                    .unwrap_or_default();
                println!("{}: {text}", self.channel);
                Ok(())
            }
        };
        let (channel, delivery) = (&self.channel, &post.delivery_id);
        let now = now_ms();
        let outcome = decide_after(&self.settings, post, result, now, fastrand::f64());
        match &outcome {
            PostOutcome::Sent => tracing::info!(%delivery, %channel, "posted"),
            PostOutcome::Retry { error, at_ms } => {
                tracing::warn!(%delivery, %channel, %error, retry_in_ms = at_ms - now, "will retry")
            }
            PostOutcome::Failed { error } => tracing::warn!(%delivery, %channel, %error, "failed"),
        }
        outcome
    }
}

/// What follows a send's `result`: sent, a retry (when), or failed. Pure, for tests.
fn decide_after(
    settings: &WorkerConfig,
    post: &Post,
    result: Result<(), SendError>,
    now: i64,
    jitter: f64,
) -> PostOutcome {
    let e = match result {
        Ok(()) => return PostOutcome::Sent,
        Err(e) if !e.is_retryable() => return PostOutcome::Failed { error: e.to_string() },
        Err(e) => e,
    };
    let attempts = post.attempts + 1;
    if attempts >= settings.max_attempts {
        return PostOutcome::Failed { error: format!("{e} (gave up after {attempts} attempts)") };
    }
    let age = Duration::from_millis((now - post.created_at_ms).max(0) as u64);
    if age >= settings.give_up_after {
        let error = format!("{e} (gave up after {attempts} attempts over {}s)", age.as_secs());
        return PostOutcome::Failed { error };
    }
    let delay = if e.is_rate_limit() {
        e.retry_after().unwrap_or(DEFAULT_RETRY_AFTER).min(MAX_RETRY_AFTER)
    } else {
        backoff(settings, post.attempts, jitter)
    };
    PostOutcome::Retry { error: e.to_string(), at_ms: now + delay.as_millis() as i64 }
}

/// The delay before retry number `attempts + 1`: `retry_initial · 2^attempts`, capped at
/// `retry_max`, of which the upper half is scaled by `jitter` (0..1) so that retries spread out.
fn backoff(settings: &WorkerConfig, attempts: u32, jitter: f64) -> Duration {
    let full = settings
        .retry_initial
        .saturating_mul(2u32.saturating_pow(attempts.min(31)))
        .min(settings.retry_max);
    full / 2 + (full / 2).mul_f64(jitter.clamp(0.0, 1.0))
}

/// A token bucket: `per_second` tokens a second, at most [`PACING_BURST`] saved. Takes `now` so
/// tests can drive it.
struct Pacer {
    per_ms: f64,
    tokens: f64,
    last_ms: i64,
}

impl Pacer {
    fn new(per_second: f64, now_ms: i64) -> Pacer {
        Pacer { per_ms: per_second / 1000.0, tokens: PACING_BURST, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = (now_ms - self.last_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(PACING_BURST);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Milliseconds until a message may be sent; 0 if now.
    fn wait_ms(&mut self, now_ms: i64) -> i64 {
        if self.per_ms <= 0.0 {
            return 0;
        }
        self.refill(now_ms);
        if self.tokens >= 1.0 { 0 } else { ((1.0 - self.tokens) / self.per_ms).ceil() as i64 }
    }

    fn take(&mut self, now_ms: i64) {
        if self.per_ms > 0.0 {
            self.refill(now_ms);
            self.tokens -= 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkerConfig {
        WorkerConfig {
            poll_interval: Duration::from_secs(1),
            max_attempts: 5,
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(3600),
        }
    }

    fn post(attempts: u32, created_at_ms: i64) -> Post {
        Post { id: 1, delivery_id: "d".into(), message: "{}".into(), attempts, created_at_ms }
    }

    fn status(status: u16, retry_after: Option<u64>) -> Result<(), SendError> {
        Err(SendError::Status {
            status,
            body: "x".into(),
            retry_after: retry_after.map(Duration::from_secs),
        })
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let s = settings();
        assert_eq!(backoff(&s, 0, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&s, 0, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(&s, 3, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(&s, 10, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&s, 40, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn a_429_waits_its_retry_after_clamped_or_the_default() {
        let s = settings();
        let at = |result| match decide_after(&s, &post(0, 0), result, 1_000, 0.5) {
            PostOutcome::Retry { at_ms, .. } => at_ms - 1_000,
            other => panic!("{other:?}"),
        };
        assert_eq!(at(status(429, Some(7))), 7_000);
        assert_eq!(at(status(429, None)), DEFAULT_RETRY_AFTER.as_millis() as i64);
        assert_eq!(at(status(429, Some(86_400))), MAX_RETRY_AFTER.as_millis() as i64);
        assert_eq!(at(status(500, Some(7))), 1_500, "5xx backs off by the schedule");
    }

    #[test]
    fn retries_stop_at_max_attempts_or_max_age_and_permanent_errors_fail_at_once() {
        let s = settings();
        let failed = |p: Post, result| {
            matches!(decide_after(&s, &p, result, 10_000_000, 0.0), PostOutcome::Failed { .. })
        };
        assert!(!failed(post(3, 10_000_000), status(500, None)));
        assert!(failed(post(4, 10_000_000), status(500, None)), "the fifth attempt is the last");
        assert!(failed(post(0, 10_000_000 - 3_600_000), status(503, None)), "an hour old");
        assert!(failed(post(0, 10_000_000), status(404, None)));
        assert!(failed(post(0, 10_000_000), status(400, None)));
        assert_eq!(decide_after(&s, &post(0, 0), Ok(()), 1, 0.0), PostOutcome::Sent);
    }

    #[test]
    fn the_pacer_allows_a_burst_then_one_per_interval() {
        let mut pacer = Pacer::new(1.0, 0);
        for _ in 0..3 {
            assert_eq!(pacer.wait_ms(0), 0);
            pacer.take(0);
        }
        assert_eq!(pacer.wait_ms(0), 1000);
        assert_eq!(pacer.wait_ms(400), 600);
        assert_eq!(pacer.wait_ms(1000), 0);
        pacer.take(1000);
        assert_eq!(pacer.wait_ms(1000), 1000);
        let mut off = Pacer::new(0.0, 0);
        for _ in 0..100 {
            off.take(0);
        }
        assert_eq!(off.wait_ms(0), 0);
    }

    #[test]
    fn wakeup_wait_returns_early_when_notified_after_the_generation_seen() {
        let wakeup = Arc::new(Wakeup::default());
        let seen = wakeup.generation();
        let waker = Arc::clone(&wakeup);
        let t = thread::spawn(move || waker.notify());
        let started = std::time::Instant::now();
        wakeup.wait(seen, Duration::from_secs(30));
        t.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}
