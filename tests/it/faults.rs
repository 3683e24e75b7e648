//! Nothing lost, nothing let in: Slack failures, crashes, storage faults and hostile input.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

fn slack_channel(name: &str, slack: &MockSlack, extra: &str) -> String {
    format!(
        "[channels.{name}]\nkind = \"slack\"\nwebhook_url = \"{}\"\n{extra}\n",
        slack.url(&format!("/services/{name}"))
    )
}

/// `issues.opened.json` with its title set to `title`, so each message can be told apart.
fn issue_titled(title: &str) -> Vec<u8> {
    let mut json: Value = serde_json::from_slice(&fixture("issues.opened.json")).unwrap();
    json["issue"]["title"] = json!(title);
    serde_json::to_vec(&json).unwrap()
}

fn texts(slack: &MockSlack) -> Vec<String> {
    slack.requests().iter().map(|r| r.json()["text"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_429_pauses_its_channel_for_retry_after_and_keeps_the_order() {
    let slack = MockSlack::start();
    slack.script([Reply::Status {
        status: 429,
        body: "rate_limited".into(),
        retry_after: Some(1),
    }]);
    let ws = everything_to(&slack, "");
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-1", &issue_titled("first")).0, 202);
    assert_eq!(server.deliver("issues", "d-2", &issue_titled("second")).0, 202);
    let requests = slack.wait_for_requests(3);
    ws.wait_until_done("d-2");
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "the channel waited only {gap:?} after Retry-After: 1"
    );
    let titles: Vec<String> = texts(&slack);
    assert!(titles[0].ends_with("#1: first") && titles[1].ends_with("#1: first"), "{titles:?}");
    assert!(titles[2].ends_with("#1: second"), "order kept: {titles:?}");
    assert_eq!(ws.wait_until_done("d-1")["attempts"], 2);
}

#[test]
fn a_hanging_channel_does_not_hold_up_another() {
    let stuck = MockSlack::start();
    stuck.script([Reply::Hang, Reply::Hang, Reply::Hang]);
    let healthy = MockSlack::start();
    let ws = Workspace::new();
    ws.write_config_with_worker(
        "send_timeout_ms = 5000",
        &format!(
            "{}{}[[routes]]\nchannel = \"stuck\"\ncontinue = true\n[[routes]]\nchannel = \"healthy\"\n",
            slack_channel("stuck", &stuck, "max_per_second = 0"),
            slack_channel("healthy", &healthy, "max_per_second = 0"),
        ),
    );
    let server = ws.serve();
    let started = Instant::now();
    for i in 0..3 {
        let id = format!("d-{i}");
        assert_eq!(server.deliver("issues", &id, &issue_titled(&id)).0, 202);
    }
    healthy.wait_for_requests(3);
    assert!(started.elapsed() < Duration::from_secs(3), "healthy waited {:?}", started.elapsed());
    assert_eq!(stuck.requests().len(), 1, "the stuck channel is still on its first message");
    let pending = ws.deliveries().iter().filter(|d| d["status"] == "pending").count();
    assert_eq!(pending, 3, "each delivery waits for the stuck channel");
}

#[test]
fn pacing_spaces_a_burst_to_max_per_second_after_the_first_few() {
    let slack = MockSlack::start();
    let ws = Workspace::new();
    ws.write_config(&format!(
        "{}[[routes]]\nchannel = \"dev\"\n",
        slack_channel("dev", &slack, "max_per_second = 10")
    ));
    let server = ws.serve();
    for i in 0..7 {
        let id = format!("d-{i}");
        assert_eq!(server.deliver("issues", &id, &issue_titled(&id)).0, 202);
    }
    let requests = slack.wait_for_requests(7);
    // Three go at once (the burst), then one every 100 ms.
    let spread = requests[6].at - requests[0].at;
    assert!(
        spread >= Duration::from_millis(350),
        "7 messages at 10/s with a burst of 3 took {spread:?}"
    );
    assert!(spread < Duration::from_secs(3), "{spread:?}");
}

#[test]
fn permanent_slack_errors_fail_at_once_with_slacks_error_string() {
    for (status, body) in [
        (400, "invalid_payload"),
        (400, "invalid_blocks"),
        (400, "no_text"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ] {
        let slack = MockSlack::start();
        slack.script([Reply::Status { status, body: body.into(), retry_after: None }]);
        let ws = everything_to(&slack, "");
        let server = ws.serve();
        assert_eq!(server.deliver("issues", "d-1", &fixture("issues.opened.json")).0, 202);
        let logged = ws.wait_until_done("d-1");
        assert_eq!(logged["status"], "failed");
        assert_eq!(logged["reason"], format!("channel dev: Slack answered HTTP {status}: {body}"));
        assert_eq!(slack.requests().len(), 1, "{status} {body} is not retried");
    }
}

/// Sends `count` distinct signed deliveries from `threads` threads; returns the ids answered 2xx.
fn burst(url: &str, prefix: &str, count: usize, threads: usize, acked: Arc<Mutex<Vec<String>>>) {
    let next = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (url, prefix, next, acked) =
                (url.to_string(), prefix.to_string(), Arc::clone(&next), Arc::clone(&acked));
            thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(5)))
                    .build()
                    .into();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count {
                        return;
                    }
                    let id = format!("{prefix}-{i:05}");
                    let body = issue_titled(&id);
                    let signature =
                        notifier::signature::sign(&notifier::signature::Secret::new(SECRET), &body);
                    let response = agent
                        .post(&url)
                        .header("X-GitHub-Event", "issues")
                        .header("X-GitHub-Delivery", &id)
                        .header("X-Hub-Signature-256", &signature)
                        .header("Content-Type", "application/json")
                        .send(&body[..]);
                    if let Ok(response) = response
                        && response.status().is_success()
                    {
                        acked.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}

/// Sends bursts and kills serve with SIGKILL `kills` times mid-burst; then checks that every
/// delivery answered 2xx was posted, and that duplicates are no more than the kills could cause.
fn kill_9_run(deliveries_per_round: usize, kills: usize) {
    let slack = MockSlack::start();
    let ws = everything_to(&slack, "");
    let acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..kills {
        let server = ws.serve();
        let url = server.url.clone();
        let acked_now = Arc::clone(&acked);
        let prefix = format!("r{round}");
        let sender =
            thread::spawn(move || burst(&url, &prefix, deliveries_per_round, 4, acked_now));
        let target = acked.lock().unwrap().len() + deliveries_per_round / 3;
        wait_for("a third of the burst to be acknowledged", || {
            (acked.lock().unwrap().len() >= target).then_some(())
        });
        server.kill9();
        sender.join().unwrap();
    }
    let _server = ws.serve();
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    let posted = wait_for("every acknowledged delivery to be posted", || {
        let posted = texts(&slack);
        acked
            .iter()
            .all(|id| posted.iter().any(|t| t.ends_with(&format!("#1: {id}"))))
            .then_some(posted)
    });
    let log = ws.deliveries_limit(100_000);
    for id in &acked {
        let entry = log
            .iter()
            .find(|d| d["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} was acknowledged but not stored"));
        assert_eq!(entry["status"], "processed", "{entry}");
    }
    // At most the message in flight at each kill is posted twice.
    let mut titles = posted.clone();
    titles.sort();
    titles.dedup();
    let duplicates = posted.len() - titles.len();
    eprintln!(
        "kill -9 x{kills}: {} deliveries acknowledged, all posted; {} posts, {duplicates} duplicates",
        acked.len(),
        posted.len()
    );
    assert!(duplicates <= kills, "{duplicates} duplicates after {kills} kills");
}

#[test]
fn kill_9_mid_burst_loses_no_acknowledged_delivery() {
    kill_9_run(60, 1);
}

#[test]
#[ignore = "long: 2000 deliveries sent across five kills; run with cargo test -- --ignored"]
fn kill_9_repeatedly_under_load_loses_no_acknowledged_delivery() {
    kill_9_run(400, 5);
}

#[test]
fn sigterm_lets_the_message_in_flight_finish_and_it_is_not_sent_again() {
    let slack = MockSlack::start();
    slack.script([Reply::Slow(Duration::from_millis(700))]);
    let ws = everything_to(&slack, "");
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-slow", &issue_titled("slow")).0, 202);
    slack.wait_for_requests(1);
    assert!(server.terminate().success(), "serve exits 0 on SIGTERM");
    assert_eq!(
        ws.wait_until_done("d-slow")["status"],
        "processed",
        "the send in flight was recorded"
    );

    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-after", &issue_titled("after")).0, 202);
    ws.wait_until_done("d-after");
    assert_eq!(texts(&slack).len(), 2, "the slow message was not sent again: {:?}", texts(&slack));
}

#[test]
fn a_second_serve_on_the_same_database_is_refused() {
    let ws = Workspace::new();
    ws.write_config("");
    let _first = ws.serve();
    let out = ws.run(&["serve", "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another notifier serve is using"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_full_database_answers_503_and_serve_recovers_once_space_is_freed() {
    let slack = MockSlack::start();
    let ws = everything_to(&slack, "[storage]\nmax_bytes = 262144\n\n");
    let server = ws.serve();
    // Something else takes most of the space, as old data or another file on the disk would.
    let db = rusqlite::Connection::open(ws.db()).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch("CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (zeroblob(180000));")
        .unwrap();

    let mut stored = Vec::new();
    let full = (0..100).find_map(|i| {
        let id = format!("d-{i}");
        match server.deliver("issues", &id, &issue_titled(&id)) {
            (202, _) => {
                stored.push(id);
                None
            }
            (status, text) => Some((status, text)),
        }
    });
    let (status, text) = full.expect("a 256 KiB database fills up within 100 deliveries");
    assert_eq!((status, text.trim()), (503, "storage is full; redeliver later"));
    assert!(server.stderr().contains("the database is full"), "{}", server.stderr());

    // The space comes back; serve carries on by itself, without a restart.
    db.execute_batch("DROP TABLE filler").unwrap();
    drop(db);
    assert_eq!(server.deliver("issues", "d-after", &issue_titled("after")).0, 202);
    for id in stored.iter().chain([&"d-after".to_string()]) {
        assert_eq!(ws.wait_until_done(id)["status"], "processed", "{id}");
    }
    assert_eq!(texts(&slack).len(), stored.len() + 1);
}

#[test]
fn a_slowloris_attack_does_not_stop_serving() {
    let ws = Workspace::new();
    ws.write_config("[server]\nheader_timeout_ms = 2000\n");
    let server = ws.serve();
    let addr = server.base().trim_start_matches("http://").to_string();
    let slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).unwrap();
            stream
                .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\n")
                .unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    assert_eq!(server.deliver("ping", "d-during", &fixture("ping.json")).0, 202);
    // Well before the header timeout could have freed anything.
    assert!(started.elapsed() < Duration::from_millis(1500), "served in {:?}", started.elapsed());
    // The header timeout then closes every slow connection.
    for mut stream in slow {
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let closed = stream.read_to_end(&mut rest).is_ok();
        assert!(closed, "a slow connection was still open after 5 s");
    }
    assert_eq!(server.deliver("ping", "d-after", &fixture("ping.json")).0, 202);
}

#[test]
fn a_body_sent_too_slowly_gets_408_and_oversized_headers_get_431() {
    let ws = Workspace::new();
    ws.write_config("[server]\nbody_timeout_ms = 300\n");
    let server = ws.serve();
    let addr = server.base().trim_start_matches("http://").to_string();

    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"partial\":")
        .unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");

    let mut stream = TcpStream::connect(&addr).unwrap();
    let huge = "x".repeat(100 * 1024);
    let _ = write!(stream, "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Padding: {huge}\r\n\r\n");
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 431"), "{}", &response[..response.len().min(200)]);

    assert_eq!(server.deliver("ping", "d-after", &fixture("ping.json")).0, 202, "still serving");
}

#[test]
fn authentic_bodies_that_are_not_json_objects_get_400_and_nothing_is_stored() {
    let ws = Workspace::new();
    ws.write_config("");
    let server = ws.serve();
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(1000), "]".repeat(1000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8", b"{\"title\":\"\xff\xfe\"}".to_vec()),
        ("an array", b"[1, 2, 3]".to_vec()),
        ("a string", b"\"hello\"".to_vec()),
        ("deeply nested", deep.into_bytes()),
        ("empty", Vec::new()),
    ];
    for (what, body) in cases {
        let (status, text) = server.deliver("issues", "d-bad", &body);
        assert_eq!(status, 400, "{what}: {text}");
    }
    assert_eq!(ws.deliveries(), Vec::<Value>::new());
}

#[test]
fn a_weak_secret_gets_a_warning_that_never_shows_it() {
    let ws = Workspace::new();
    ws.write_config("");
    for (secret, warning) in
        [("abc123xyz", "shorter than 16 bytes"), (" padded-secret-0123456789 ", "whitespace")]
    {
        let mut cmd = notifier();
        cmd.arg("--config").arg(ws.config()).arg("--db").arg(ws.db());
        cmd.env("GITHUB_WEBHOOK_SECRET", secret);
        let server = Server::start(cmd);
        let stderr = wait_for("the warning", || {
            let stderr = server.stderr();
            stderr.contains(warning).then_some(stderr)
        });
        assert!(!stderr.contains(secret.trim()), "the secret reached the log:\n{stderr}");
    }
}

#[test]
fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let ws = Workspace::new();
    ws.write_config("[server]\nmax_connections = 2\nheader_timeout_ms = 1500\n");
    let server = ws.serve();
    let addr = server.base().trim_start_matches("http://").to_string();
    // Two clients connect and say nothing: both slots are taken until the header timeout. The
    // kernel hands connections to accept() in the order they were made, so these go first.
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let started = Instant::now();
    assert_eq!(server.deliver("ping", "d-waits", &fixture("ping.json")).0, 202);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "the third connection was served after {waited:?}"
    );
    drop(idle);
}
