//! The other subcommands, run as a user would.

use std::io::Write;
use std::process::Stdio;

use crate::support::*;

#[test]
fn sign_reproduces_githubs_published_vector_from_stdin() {
    let mut child = notifier()
        .args(["sign", "--secret-env", "VECTOR_SECRET"])
        .env("VECTOR_SECRET", "It's a Secret to Everybody")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Hello, World!").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n"
    );
}

#[test]
fn sign_uses_the_configured_secret_and_reads_a_file() {
    let ws = Workspace::new();
    ws.write_config("");
    let path = fixture_path("issues.opened.json");
    let out = ws.run(&["sign", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = notifier::signature::sign(
        &notifier::signature::Secret::new(SECRET),
        &fixture("issues.opened.json"),
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{expected}\n"));
}

#[test]
fn sign_names_the_missing_variable() {
    let out = notifier()
        .args(["sign", "--secret-env", "NO_SUCH_SECRET_VAR"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NO_SUCH_SECRET_VAR is not set"), "{stderr}");
}

#[test]
fn deliveries_shows_the_log_as_a_table_and_as_json_lines() {
    let slack = MockSlack::start();
    let ws = Workspace::new();
    ws.write_config(&format!(
        "[channels.dev]\nkind = \"slack\"\nmax_per_second = 0\nwebhook_url = \"{}\"\n\n[[routes]]\nevents = [\"issues\"]\nchannel = \"dev\"\n",
        slack.url("/services/T0/B0/SECRETPART")
    ));
    let server = ws.serve();
    server.deliver("ping", "d-ping", &fixture("ping.json"));
    server.deliver("issues", "d-issue", &fixture("issues.opened.json"));
    ws.wait_until_done("d-issue");
    ws.wait_until_done("d-ping");

    let out = ws.run(&["deliveries"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let issue_row = table.lines().find(|l| l.contains("d-issue")).expect(&table);
    for cell in ["issues.opened", "Codertocat/Hello-World", "processed", "→ dev (route 1)"] {
        assert!(issue_row.contains(cell), "{cell} missing from {issue_row}");
    }
    let ping_row = table.lines().find(|l| l.contains("d-ping")).expect(&table);
    assert!(ping_row.contains("skipped") && ping_row.contains("ping"), "{ping_row}");
    assert!(table.find("d-issue") < table.find("d-ping"), "newest first:\n{table}");
    assert!(!table.contains("SECRETPART"), "a webhook URL leaked:\n{table}");

    let rows = ws.deliveries();
    assert_eq!(rows.len(), 2);
    for key in ["id", "event", "action", "repo", "status", "reason"] {
        assert!(rows[0].get(key).is_some(), "key {key} missing from {}", rows[0]);
    }
    assert!(!server.stderr().contains("SECRETPART"), "a webhook URL reached the log");
}

#[test]
fn deliveries_without_a_database_says_what_to_do() {
    let ws = Workspace::new();
    ws.write_config("");
    let out = ws.run(&["deliveries"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no database at") && stderr.contains("--db"), "{stderr}");
}

#[test]
fn a_broken_config_is_reported_with_file_line_and_column() {
    let ws = Workspace::new();
    ws.write_config("[server]\nlisten = \"127.0.0.1:8080\"\nport = 8080\n");
    let out = ws.run(&["serve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:9:1: unknown field `port`", ws.config().display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(out.stdout.is_empty());
}

fn failing_then_fixed_workspace(slack: &MockSlack) -> Workspace {
    slack.script([Reply::Status {
        status: 404,
        body: "channel_not_found".into(),
        retry_after: None,
    }]);
    everything_to(slack, "")
}

#[test]
fn replay_runs_failed_deliveries_again_and_waits_for_the_outcome() {
    let slack = MockSlack::start();
    let ws = failing_then_fixed_workspace(&slack);
    let server = ws.serve();
    server.deliver("issues", "d-failed", &fixture("issues.opened.json"));
    server.deliver("ping", "d-ping", &fixture("ping.json"));
    assert_eq!(ws.wait_until_done("d-failed")["status"], "failed");
    ws.wait_until_done("d-ping");

    let out = ws.run(&["deliveries", "--status", "failed"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("d-failed") && !table.contains("d-ping"), "{table}");

    let out = ws.run(&["replay", "--wait"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Requeued 1 deliveries."), "{stdout}");
    assert!(stdout.contains("Replayed 1: 0 failed."), "{stdout}");
    assert_eq!(ws.wait_until_done("d-failed")["status"], "processed");
    assert_eq!(slack.requests().len(), 2);
    assert_eq!(
        ws.wait_until_done("d-ping")["status"],
        "skipped",
        "only failed ones are replayed by default"
    );
}

#[test]
fn replay_without_a_running_serve_leaves_them_for_the_next_one() {
    let slack = MockSlack::start();
    let ws = failing_then_fixed_workspace(&slack);
    let server = ws.serve();
    server.deliver("issues", "d-failed", &fixture("issues.opened.json"));
    assert_eq!(ws.wait_until_done("d-failed")["status"], "failed");
    assert!(server.terminate().success());

    let out = ws.run(&["replay", "--dry-run", "d-failed"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Would replay 1 deliveries"), "{stdout}");
    assert_eq!(ws.deliveries()[0]["status"], "failed", "a dry run changes nothing");

    let out = ws.run(&["replay", "d-failed"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("No notifier serve is running"), "{stdout}");
    assert_eq!(ws.deliveries()[0]["status"], "pending");

    let _server = ws.serve();
    assert_eq!(ws.wait_until_done("d-failed")["status"], "processed");

    let out = ws.run(&["replay", "d-nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no delivery d-nope"));
}
