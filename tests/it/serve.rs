//! `notifier serve` end to end: real binary, real HTTP on loopback, mock Slack.

use serde_json::json;

use crate::support::*;

/// A workspace whose config sends issues to one mock Slack channel.
fn issues_to_slack(slack: &MockSlack, extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "{extra}\n[channels.dev]\nkind = \"slack\"\nmax_per_second = 0\nwebhook_url = \"{}\"\n\n\
         [[routes]]\nevents = [\"issues\"]\nchannel = \"dev\"\n",
        slack.url("/services/T000/B000/dev")
    ));
    ws
}

fn issue_opened_message() -> serde_json::Value {
    json!({
        "text": "[Codertocat/Hello-World] Codertocat opened issue #1: Spelling error in the README file",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*<https://github.com/Codertocat|Codertocat>* opened issue \
                             <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file>\n\
                             >It looks like you accidently spelled 'commit' with two 't's."
                }
            },
            {
                "type": "context",
                "elements": [{
                    "type": "mrkdwn",
                    "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `bug`"
                }]
            }
        ]
    })
}

#[test]
fn a_signed_issue_reaches_slack_as_block_kit_with_a_fallback() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();

    let (status, _) = server.deliver("issues", "d-issue-1", &fixture("issues.opened.json"));
    assert_eq!(status, 202);

    let requests = slack.wait_for_requests(1);
    assert_eq!(requests[0].path, "/services/T000/B000/dev");
    let content_type = requests[0].header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    assert_eq!(requests[0].json(), issue_opened_message());

    let logged = ws.wait_until_done("d-issue-1");
    assert_eq!(logged["status"], "processed");
    assert_eq!(logged["event"], "issues");
    assert_eq!(logged["action"], "opened");
    assert_eq!(logged["repo"], "Codertocat/Hello-World");
    assert_eq!(logged["hook_id"], "123456");
    assert_eq!(logged["sends"], json!([{ "route": 1, "channel": "dev" }]));
}

#[test]
fn a_wrong_signature_gets_401_and_stores_nothing() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    let body = fixture("issues.opened.json");
    let good = notifier::signature::sign(&notifier::signature::Secret::new(SECRET), &body);
    let wrong_secret =
        notifier::signature::sign(&notifier::signature::Secret::new("not-the-secret"), &body);
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("X-Hub-Signature-256", &wrong_secret)],
        vec![],
        vec![("X-Hub-Signature-256", "sha1=0123456789abcdef0123456789abcdef01234567")],
        vec![("X-Hub-Signature-256", "sha256=zz")],
        vec![("X-Hub-Signature-256", "")],
        vec![("X-Hub-Signature-256", &good), ("X-Hub-Signature-256", &good)],
    ];
    for extra in cases {
        let mut headers = vec![
            ("X-GitHub-Event", "issues"),
            ("X-GitHub-Delivery", "d-forged"),
            ("Content-Type", "application/json"),
        ];
        headers.extend(extra.iter().copied());
        let (status, text) = server.post(&server.url, &headers, &body);
        assert_eq!(status, 401, "{extra:?}");
        assert!(
            !text.contains(&good[7..]) && !text.contains(&wrong_secret[7..]),
            "digest echoed: {text}"
        );
    }
    // A signature over other bytes: one byte changed after signing.
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let headers = [
        ("X-GitHub-Event", "issues"),
        ("X-GitHub-Delivery", "d-tampered"),
        ("X-Hub-Signature-256", good.as_str()),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(server.post(&server.url, &headers, &tampered).0, 401);

    assert_eq!(ws.deliveries(), Vec::<serde_json::Value>::new());
    assert!(!server.stderr().contains(&good[7..]), "a digest reached the log");
    assert!(slack.requests().is_empty());
}

#[test]
fn the_same_delivery_twice_is_acknowledged_and_posted_once() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    let body = fixture("issues.opened.json");

    assert_eq!(server.deliver("issues", "d-dup", &body).0, 202);
    let (status, text) = server.deliver("issues", "d-dup", &body);
    assert_eq!((status, text.trim()), (200, "duplicate delivery; already stored"));
    // The worker takes deliveries in order: once a later one is posted, a second copy of the
    // first would have been posted before it.
    assert_eq!(server.deliver("issues", "d-after", &fixture("issues.opened.json")).0, 202);
    ws.wait_until_done("d-after");

    assert_eq!(slack.requests().len(), 2);
    let ids: Vec<_> =
        ws.deliveries().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, vec!["d-after", "d-dup"]);
}

#[test]
fn a_reused_delivery_id_with_another_body_is_refused_with_409() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-1", &fixture("issues.opened.json")).0, 202);
    assert_eq!(server.deliver("issues", "d-1", &fixture("issues.edited.json")).0, 409);
    let logged = ws.wait_until_done("d-1");
    assert_eq!(logged["action"], "opened");
}

#[test]
fn ping_is_stored_and_skipped() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    assert_eq!(server.deliver("ping", "d-ping", &fixture("ping.json")).0, 202);
    let logged = ws.wait_until_done("d-ping");
    assert_eq!(
        (logged["status"].as_str(), logged["reason"].as_str()),
        (Some("skipped"), Some("ping"))
    );
    assert!(slack.requests().is_empty());
}

#[test]
fn an_unknown_event_is_acknowledged_and_skipped_as_unsupported() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    let body = br#"{"action":"rerequested","repository":{"full_name":"o/r"}}"#;
    assert_eq!(server.deliver("check_suite_v9", "d-unknown", body).0, 202);
    let logged = ws.wait_until_done("d-unknown");
    assert_eq!(logged["status"], "skipped");
    assert_eq!(logged["reason"], "unsupported: check_suite_v9.rerequested");
    assert_eq!(logged["repo"], "o/r");
}

#[test]
fn an_event_no_route_wants_is_skipped_with_the_reason() {
    let slack = MockSlack::start();
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[channels.dev]\nkind = \"slack\"\nmax_per_second = 0\nwebhook_url = \"{}\"\n\n\
         [[routes]]\nevents = [\"issues\"]\nactions = [\"closed\"]\nchannel = \"dev\"\n",
        slack.url("/dev")
    ));
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-unrouted", &fixture("issues.opened.json")).0, 202);
    let logged = ws.wait_until_done("d-unrouted");
    assert_eq!(
        (logged["status"].as_str(), logged["reason"].as_str()),
        (Some("skipped"), Some("no route matched"))
    );
}

#[test]
fn a_form_encoded_delivery_gives_the_same_message_as_json() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    let json = fixture("issues.opened.json");
    let form = format!("payload={}", form_urlencoded::byte_serialize(&json).collect::<String>());
    let signature =
        notifier::signature::sign(&notifier::signature::Secret::new(SECRET), form.as_bytes());
    let headers = [
        ("X-GitHub-Event", "issues"),
        ("X-GitHub-Delivery", "d-form"),
        ("X-Hub-Signature-256", signature.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    assert_eq!(server.post(&server.url, &headers, form.as_bytes()).0, 202);
    assert_eq!(slack.wait_for_requests(1)[0].json(), issue_opened_message());
}

#[test]
fn an_oversized_body_gets_413_and_stores_nothing() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "[server]\nmax_body_bytes = 4096\n");
    let server = ws.serve();
    // Declared by Content-Length: refused before the body is read.
    assert_eq!(server.deliver("issues", "d-big", &fixture("issues.opened.json")).0, 413);
    // Streamed without a length: refused once the limit is passed.
    let mut stream =
        std::net::TcpStream::connect(server.base().trim_start_matches("http://")).unwrap();
    use std::io::{Read, Write};
    let chunk = vec![b' '; 1000];
    write!(
        stream,
        "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\nX-GitHub-Delivery: d-chunked\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    for _ in 0..10 {
        if write!(stream, "{:x}\r\n", chunk.len())
            .and_then(|_| stream.write_all(&chunk))
            .and_then(|_| stream.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(ws.deliveries(), Vec::<serde_json::Value>::new());
}

#[test]
fn requests_without_githubs_headers_get_400() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    let body = fixture("issues.opened.json");
    let signature = notifier::signature::sign(&notifier::signature::Secret::new(SECRET), &body);
    let without_event = [("X-GitHub-Delivery", "d-1"), ("X-Hub-Signature-256", signature.as_str())];
    let without_id = [("X-GitHub-Event", "issues"), ("X-Hub-Signature-256", signature.as_str())];
    assert_eq!(server.post(&server.url, &without_event, &body).0, 400);
    assert_eq!(server.post(&server.url, &without_id, &body).0, 400);
    let not_json = b"not json";
    let sig = notifier::signature::sign(&notifier::signature::Secret::new(SECRET), not_json);
    let headers = [
        ("X-GitHub-Event", "issues"),
        ("X-GitHub-Delivery", "d-2"),
        ("X-Hub-Signature-256", sig.as_str()),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(server.post(&server.url, &headers, not_json).0, 400);
    assert_eq!(ws.deliveries(), Vec::<serde_json::Value>::new());
}

#[test]
fn slack_errors_worth_retrying_are_retried_until_they_succeed() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    slack.script([
        Reply::Status { status: 500, body: "internal_error".into(), retry_after: None },
        Reply::Status { status: 429, body: "rate_limited".into(), retry_after: Some(0) },
        Reply::ok(),
    ]);
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-retry", &fixture("issues.opened.json")).0, 202);
    let logged = ws.wait_until_done("d-retry");
    assert_eq!(logged["status"], "processed");
    assert_eq!(logged["attempts"], 3);
    let requests = slack.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.json() == issue_opened_message()));
}

#[test]
fn a_permanent_slack_error_fails_the_delivery_at_once_with_slacks_reason() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    slack.script([Reply::Status {
        status: 404,
        body: "channel_not_found".into(),
        retry_after: None,
    }]);
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-404", &fixture("issues.opened.json")).0, 202);
    let logged = ws.wait_until_done("d-404");
    assert_eq!(logged["status"], "failed");
    assert_eq!(logged["reason"], "channel dev: Slack answered HTTP 404: channel_not_found");
    assert_eq!(logged["attempts"], 1);
    assert_eq!(slack.requests().len(), 1);
}

#[test]
fn a_slack_that_never_answers_times_out_and_gives_up_after_max_attempts() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    // Two attempts with a short timeout; the mock hangs on both.
    let config = std::fs::read_to_string(ws.config()).unwrap();
    let config =
        config.replace("send_timeout_ms = 2000", "send_timeout_ms = 300\nmax_attempts = 2");
    std::fs::write(ws.config(), config).unwrap();
    slack.script([Reply::Hang, Reply::Hang]);
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-hang", &fixture("issues.opened.json")).0, 202);
    let logged = ws.wait_until_done("d-hang");
    assert_eq!(logged["status"], "failed");
    let reason = logged["reason"].as_str().unwrap();
    assert!(reason.contains("gave up after 2 attempts"), "{reason}");
    assert!(!reason.contains("/services/"), "the webhook URL leaked: {reason}");
    assert_eq!(slack.requests().len(), 2);
}

#[test]
fn a_locked_database_answers_503_in_time_and_serve_recovers_when_it_is_released() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "[storage]\nbusy_timeout_ms = 200\n");
    let server = ws.serve();
    // Another process holds the write lock, as a backup tool or a stuck script might.
    let locker = rusqlite::Connection::open(ws.db()).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let (status, text) = server.deliver("issues", "d-locked", &fixture("issues.opened.json"));
    assert_eq!(status, 503, "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);

    // GitHub's redelivery (same id) now succeeds and is posted once.
    assert_eq!(server.deliver("issues", "d-locked", &fixture("issues.opened.json")).0, 202);
    assert_eq!(ws.wait_until_done("d-locked")["status"], "processed");
    assert_eq!(slack.requests().len(), 1);
}

#[test]
fn health_methods_and_paths_are_answered() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    let agent = agent();
    let get = |url: &str| agent.get(url).call().unwrap().status().as_u16();
    assert_eq!(get(&format!("{}/healthz", server.base())), 200);
    assert_eq!(get(&server.url), 405);
    assert_eq!(get(&format!("{}/other", server.base())), 404);
    assert_eq!(server.post(&format!("{}/other", server.base()), &[], b"{}").0, 404);
}

#[test]
fn sigterm_stops_serve_cleanly() {
    let slack = MockSlack::start();
    let ws = issues_to_slack(&slack, "");
    let server = ws.serve();
    assert_eq!(server.deliver("issues", "d-1", &fixture("issues.opened.json")).0, 202);
    ws.wait_until_done("d-1");
    assert!(server.terminate().success());
}

#[test]
fn embedded_defaults_print_issues_on_the_console_channel() {
    let ws = Workspace::new();
    let mut cmd = notifier();
    cmd.current_dir(ws.dir.path()).env("GITHUB_WEBHOOK_SECRET", SECRET);
    let server = Server::start(cmd);
    assert!(server.url.ends_with("/webhook"), "{}", server.url);
    assert_eq!(server.deliver("issues", "d-console", &fixture("issues.opened.json")).0, 202);
    let line = wait_for("the console line", || {
        server.stdout().lines().find(|l| l.starts_with("console: ")).map(str::to_string)
    });
    assert_eq!(
        line,
        "console: [Codertocat/Hello-World] Codertocat opened issue #1: Spelling error in the README file"
    );
    assert!(ws.path("notifier.db").exists(), "the default database is ./notifier.db");

    // The defaults skip issue edits, which are too chatty to announce.
    assert_eq!(server.deliver("issues", "d-edited", &fixture("issues.edited.json")).0, 202);
    let edited = wait_for("d-edited to finish", || {
        let out =
            notifier().current_dir(ws.dir.path()).args(["deliveries", "--json"]).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.contains("d-edited") && !l.contains("\"pending\""))?;
        Some(serde_json::from_str::<serde_json::Value>(line).unwrap())
    });
    assert_eq!(
        (edited["status"].as_str(), edited["reason"].as_str()),
        (Some("skipped"), Some("no route matched"))
    );
}

#[test]
fn startup_fails_closed_before_opening_the_port() {
    let ws = Workspace::new();
    ws.write_config("[server]\nsecret_env = \"MY_HOOK_SECRET\"\n");
    let out = notifier()
        .args(["--config"])
        .arg(ws.config())
        .arg("--db")
        .arg(ws.db())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "printed {:?}", String::from_utf8_lossy(&out.stdout));
    assert!(
        stderr.contains("notifier.toml:8:14: the environment variable MY_HOOK_SECRET"),
        "{stderr}"
    );

    // An unusable database: a directory where the file should be.
    ws.write_config("");
    let out = notifier()
        .arg("--config")
        .arg(ws.config())
        .arg("--db")
        .arg(ws.dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("opening database"), "{stderr}");
}
