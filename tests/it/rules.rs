//! Routing through the real binary, and `notifier rules check`.

use serde_json::{Value, json};

use crate::support::*;

/// Issues to one mock channel, pull requests to another; dependency bots and drafts skipped;
/// releases fanned out to both.
fn two_channel_config(dev: &MockSlack, reviews: &MockSlack) -> String {
    format!(
        r#"[channels.dev]
kind = "slack"
max_per_second = 0
webhook_url = "{}"

[channels.reviews]
kind = "slack"
max_per_second = 0
webhook_url = "{}"

[[routes]]
events = ["issues"]
channel = "dev"

[[routes]]
events = ["pull_request"]
authors = ["dependabot[bot]"]
skip = "dependency update"

[[routes]]
events = ["pull_request"]
draft = true
skip = "draft pull request"

[[routes]]
events = ["pull_request"]
channel = "reviews"

[[routes]]
events = ["release"]
channel = "dev"
continue = true

[[routes]]
events = ["release"]
channel = "reviews"
"#,
        dev.url("/services/dev"),
        reviews.url("/services/reviews")
    )
}

/// `pull_request.opened.json` as dependabot would send it.
fn dependabot_pull_request() -> Vec<u8> {
    let mut json: Value = serde_json::from_slice(&fixture("pull_request.opened.json")).unwrap();
    json["sender"]["login"] = json!("dependabot[bot]");
    json["sender"]["type"] = json!("Bot");
    json["pull_request"]["user"]["login"] = json!("dependabot[bot]");
    serde_json::to_vec(&json).unwrap()
}

fn draft_pull_request() -> Vec<u8> {
    let mut json: Value = serde_json::from_slice(&fixture("pull_request.opened.json")).unwrap();
    json["pull_request"]["draft"] = json!(true);
    serde_json::to_vec(&json).unwrap()
}

#[test]
fn issues_and_pull_requests_reach_their_channels_and_noise_is_skipped_with_reasons() {
    let dev = MockSlack::start();
    let reviews = MockSlack::start();
    let ws = Workspace::new();
    ws.write_config(&two_channel_config(&dev, &reviews));
    let server = ws.serve();

    let sends = [
        ("issues", "d-issue", fixture("issues.opened.json")),
        ("pull_request", "d-pr", fixture("pull_request.opened.json")),
        ("pull_request", "d-dependabot", dependabot_pull_request()),
        ("pull_request", "d-draft", draft_pull_request()),
        ("release", "d-release", fixture("release.published.json")),
        ("star", "d-star", fixture("star.created.json")),
    ];
    for (event, id, body) in &sends {
        assert_eq!(server.deliver(event, id, body).0, 202, "{id}");
    }
    for (_, id, _) in &sends {
        ws.wait_until_done(id);
    }

    let texts = |slack: &MockSlack| -> Vec<String> {
        slack.requests().iter().map(|r| r.json()["text"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(
        texts(&dev),
        vec![
            "[Codertocat/Hello-World] Codertocat opened issue #1: Spelling error in the README file",
            "[Codertocat/Hello-World] Codertocat published release 0.0.1",
        ]
    );
    assert_eq!(
        texts(&reviews),
        vec![
            "[Codertocat/Hello-World] Codertocat opened pull request #2: Update the README with new information.",
            "[Codertocat/Hello-World] Codertocat published release 0.0.1",
        ]
    );

    let log: Vec<Value> = ws.deliveries();
    let entry = |id: &str| log.iter().find(|d| d["id"] == id).unwrap().clone();
    let status_reason = |id: &str| {
        let d = entry(id);
        (d["status"].as_str().unwrap().to_string(), d["reason"].as_str().map(str::to_string))
    };
    assert_eq!(status_reason("d-dependabot"), ("skipped".into(), Some("dependency update".into())));
    assert_eq!(status_reason("d-draft"), ("skipped".into(), Some("draft pull request".into())));
    assert_eq!(status_reason("d-star"), ("skipped".into(), Some("no route matched".into())));
    assert_eq!(entry("d-issue")["sends"], json!([{ "route": 1, "channel": "dev" }]));
    assert_eq!(entry("d-pr")["sends"], json!([{ "route": 4, "channel": "reviews" }]));
    assert_eq!(
        entry("d-release")["sends"],
        json!([{ "route": 5, "channel": "dev" }, { "route": 6, "channel": "reviews" }])
    );
}

#[test]
fn a_failing_channel_is_retried_without_posting_twice_to_the_channel_that_worked() {
    let dev = MockSlack::start();
    let reviews = MockSlack::start();
    reviews.script([Reply::Status {
        status: 503,
        body: "service_unavailable".into(),
        retry_after: None,
    }]);
    let ws = Workspace::new();
    ws.write_config(&two_channel_config(&dev, &reviews));
    let server = ws.serve();
    assert_eq!(server.deliver("release", "d-release", &fixture("release.published.json")).0, 202);
    let logged = ws.wait_until_done("d-release");
    assert_eq!(
        (logged["status"].as_str(), logged["attempts"].as_u64()),
        (Some("processed"), Some(2))
    );
    assert_eq!(dev.requests().len(), 1, "dev got its message once");
    assert_eq!(reviews.requests().len(), 2, "reviews failed once, then got it");
}

fn check(ws: &Workspace, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["rules", "check"];
    args.extend(extra);
    let out = ws.run(&args);
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_example_config_passes_rules_check_and_lists_its_routes() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("notifier.example.toml");
    let out = notifier()
        .arg("--config")
        .arg(&example)
        .args(["rules", "check"])
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SLACK_DEV_WEBHOOK_URL", "https://hooks.example/services/T0/B0/dev")
        .env("SLACK_REVIEWS_WEBHOOK_URL", "https://hooks.example/services/T0/B0/reviews")
        .env("SLACK_ACTIVITY_WEBHOOK_URL", "https://hooks.example/services/T0/B0/activity")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("no problems; 10 route(s), 3 channel(s)"), "{stdout}");
    assert!(stdout.contains("→ reviews (Slack, $SLACK_REVIEWS_WEBHOOK_URL)"), "{stdout}");
    assert!(stdout.contains("skip: draft pull request"), "{stdout}");
    assert!(!stdout.contains("hooks.example"), "a webhook URL was printed:\n{stdout}");
}

#[test]
fn broken_configs_are_reported_as_file_line_column_and_exit_1() {
    let cases = [
        ("[server\nlisten = \"127.0.0.1:8080\"\n", "7:8: unclosed table, expected `]`"),
        ("[server]\nlisten_port = 8080\n", "8:1: unknown field `listen_port`"),
        (
            "[channels.dev]\nkind = \"console\"\n[[routes]]\nevents = [\"issues\"]\nchannel = \"devs\"\n",
            "11:11: route names undefined channel 'devs' (defined channels: dev)",
        ),
        (
            "[channels.dev]\nkind = \"console\"\n[[routes]]\nevents = [\"pull_requests\"]\nchannel = \"dev\"\n",
            "10:11: unknown event 'pull_requests'; did you mean 'pull_request'?",
        ),
    ];
    for (body, expected) in cases {
        let ws = Workspace::new();
        ws.write_config(body);
        let expected = format!("{}:{expected}", ws.config().display());
        let (code, _, stderr) = check(&ws, &[]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
        // serve refuses the same config with the same message, before opening a port.
        let out = ws.run(&["serve", "--listen", "127.0.0.1:0"]);
        let serve_stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        assert!(serve_stderr.contains(&expected), "serve said:\n{serve_stderr}");
    }
}

#[test]
fn the_dry_run_explains_a_skip_by_the_closest_route_and_its_failed_matcher() {
    let dev = MockSlack::start();
    let reviews = MockSlack::start();
    let ws = Workspace::new();
    ws.write_config(&two_channel_config(&dev, &reviews));
    let server = ws.serve();
    assert_eq!(server.deliver("star", "d-star", &fixture("star.created.json")).0, 202);
    ws.wait_until_done("d-star");

    let (code, stdout, stderr) = check(&ws, &["--delivery", "d-star"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("delivery d-star: star.created in Codertocat/Hello-World by Codertocat"),
        "{stdout}"
    );
    assert!(stdout.contains("Decision: skipped: no route matched. Closest: route 1"), "{stdout}");
    assert!(stdout.contains("events: 'star' is not one of issues"), "{stdout}");
    assert!(stdout.ends_with("Nothing was sent.\n"), "{stdout}");

    let payload = ws.path("pull_request.dependabot.json");
    std::fs::write(&payload, dependabot_pull_request()).unwrap();
    let (code, stdout, _) = check(&ws, &["--payload", payload.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Decision: skipped by route 2: dependency update"), "{stdout}");

    let (code, stdout, _) =
        check(&ws, &["--payload", fixture_path("pull_request.opened.json").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Decision: post to reviews (route 4)."), "{stdout}");
    assert!(
        stdout.contains("\"text\": \"[Codertocat/Hello-World] Codertocat opened pull request #2"),
        "{stdout}"
    );
    assert!(
        dev.requests().is_empty() && reviews.requests().is_empty(),
        "the dry run sent something"
    );
}

#[test]
fn problems_in_the_file_and_in_the_environment_are_reported_together() {
    let ws = Workspace::new();
    ws.write_config(
        "[channels.dev]\nkind = \"slack\"\nwebhook_url_env = \"NOT_SET_ANYWHERE\"\n\
         [[routes]]\nevents = [\"isues\"]\nchannel = \"dev\"\n",
    );
    let (code, _, stderr) = check(&ws, &[]);
    assert_eq!(code, 1);
    let file = ws.config().display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{file}:9:19: the environment variable NOT_SET_ANYWHERE")),
        "{stderr}"
    );
    assert!(
        lines[1]
            .starts_with(&format!("{file}:11:11: unknown event 'isues'; did you mean 'issues'?")),
        "{stderr}"
    );
    assert_eq!(lines[2], format!("error: 2 problems in {file}"));
}
