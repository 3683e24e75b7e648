//! Every fixture in `../shared/fixtures/github/`, through the real binary to the mock Slack.

use serde_json::{Value, json};

use crate::support::*;

enum Expected {
    /// Posted to Slack with exactly this body.
    Posted(Value),
    /// Stored and skipped with this reason.
    Skipped(&'static str),
}

use Expected::{Posted, Skipped};

/// What each fixture must become, in the order the test sends them (file-name order).
fn expectations() -> Vec<(&'static str, Expected)> {
    vec![
        (
            "create",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* created tag `simple-tag`",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World>",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat created tag simple-tag"
            })),
        ),
        (
            "delete",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* deleted tag `simple-tag`",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World>",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat deleted tag simple-tag"
            })),
        ),
        (
            "fork",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Octocoders|Octocoders>* forked <https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> to <https://github.com/Octocoders/Hello-World|Octocoders/Hello-World>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World>",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "Octocoders forked Codertocat/Hello-World to Octocoders/Hello-World"
            })),
        ),
        (
            "issue_comment.created",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* commented on issue <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file>\n>You are totally right! I'll get this fixed right away.",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · <https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400|View comment>",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat commented on issue #1: Spelling error in the README file"
            })),
        ),
        (
            "issues.assigned",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* assigned *<https://github.com/Codertocat|Codertocat>* to issue <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat assigned Codertocat to issue #1: Spelling error in the README file"
            })),
        ),
        (
            "issues.closed",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* closed issue <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file> as completed",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat closed issue #1 as completed: Spelling error in the README file"
            })),
        ),
        (
            "issues.edited",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* edited issue <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat edited issue #1: Spelling error in the README file"
            })),
        ),
        (
            "issues.labeled",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* added label `bug` to issue <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat added label bug to issue #1: Spelling error in the README file"
            })),
        ),
        (
            "issues.opened",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* opened issue <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file>\n>It looks like you accidently spelled 'commit' with two 't's.",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat opened issue #1: Spelling error in the README file"
            })),
        ),
        (
            "issues.reopened",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* reopened issue <https://github.com/Codertocat/Hello-World/issues/1|#1 Spelling error in the README file>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat reopened issue #1: Spelling error in the README file"
            })),
        ),
        ("ping", Skipped("ping")),
        (
            "pull_request.closed",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* closed pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.> without merging",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat closed pull request #2 without merging: Update the README with new information."
            })),
        ),
        (
            "pull_request.closed.merged",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* merged pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.> into `master`",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat merged pull request #2 into master: Update the README with new information."
            })),
        ),
        (
            "pull_request.converted_to_draft",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* converted pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.> to a draft",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` (draft) · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat converted pull request #2 to a draft: Update the README with new information."
            })),
        ),
        (
            "pull_request.opened",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* opened pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.>\n>This is a pretty simple change that we need to pull into master.",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat opened pull request #2: Update the README with new information."
            })),
        ),
        (
            "pull_request.ready_for_review",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* marked pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.> as ready for review",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat marked pull request #2 as ready for review: Update the README with new information."
            })),
        ),
        (
            "pull_request.reopened",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* reopened pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat reopened pull request #2: Update the README with new information."
            })),
        ),
        (
            "pull_request.review_requested",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* requested a review from *<http://github.com/octocat|octocat>* on pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat requested a review from octocat on pull request #2: Update the README with new information."
            })),
        ),
        (
            "pull_request.review_requested.team",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* requested a review from team <https://github.com/orgs/Octocoders/teams/justice-league|Justice League> on pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat requested a review from team Justice League on pull request #2: Update the README with new information."
            })),
        ),
        (
            "pull_request.synchronize",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* pushed new commits to pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · <https://github.com/Codertocat/Hello-World/compare/f95f852bd8fca8fcc58a9a2d6c842781e32a215e...ec26c3e57ca3a959ca5aad62de7213c562f8c821|Compare changes> · `changes` → `master` · `bug`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat pushed new commits to pull request #2: Update the README with new information."
            })),
        ),
        (
            "pull_request_review.submitted",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* reviewed pull request <https://github.com/Codertocat/Hello-World/pull/2|#2 Update the README with new information.>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · <https://github.com/Codertocat/Hello-World/pull/2#pullrequestreview-237895671|View review> · `changes` → `master`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat reviewed pull request #2: Update the README with new information."
            })),
        ),
        (
            "push",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* pushed <https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246|1 commit> to new branch `master`\n• <https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246|6113728> Initial commit — Codertocat",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World>",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat pushed 1 commit to new branch master"
            })),
        ),
        (
            "release.published",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* published release <https://github.com/Codertocat/Hello-World/releases/tag/0.0.1|0.0.1>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · tag `0.0.1`",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "[Codertocat/Hello-World] Codertocat published release 0.0.1"
            })),
        ),
        (
            "star.created",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* starred <https://github.com/Codertocat/Hello-World|Codertocat/Hello-World>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · ★ 1 star",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "Codertocat starred Codertocat/Hello-World"
            })),
        ),
        (
            "star.deleted",
            Posted(json!({
                "blocks": [
                    {
                        "text": {
                            "text": "*<https://github.com/Codertocat|Codertocat>* unstarred <https://github.com/Codertocat/Hello-World|Codertocat/Hello-World>",
                            "type": "mrkdwn"
                        },
                        "type": "section"
                    },
                    {
                        "elements": [
                            {
                                "text": "<https://github.com/Codertocat/Hello-World|Codertocat/Hello-World> · ★ 0 stars",
                                "type": "mrkdwn"
                            }
                        ],
                        "type": "context"
                    }
                ],
                "text": "Codertocat unstarred Codertocat/Hello-World"
            })),
        ),
        // Sent after star.created, as GitHub does: the same star, announced once.
        ("watch.started", Skipped("duplicate: already announced by delivery d-star.created")),
    ]
}

#[test]
fn every_fixture_is_posted_as_expected_or_skipped_with_its_reason() {
    let slack = MockSlack::start();
    let ws = everything_to(&slack, "");
    let server = ws.serve();

    let expectations = expectations();
    let mut files: Vec<String> = std::fs::read_dir(fixture_path(""))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_string))
        .collect();
    files.sort();
    let covered: Vec<&str> = expectations.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        files, covered,
        "every fixture needs an expectation, and every expectation a fixture"
    );

    for (name, expected) in expectations {
        let event = name.split('.').next().unwrap();
        let id = format!("d-{name}");
        let posted_before = slack.requests().len();
        let (status, text) = server.deliver(event, &id, &fixture(&format!("{name}.json")));
        assert_eq!(status, 202, "{name}: {text}");
        let logged = ws.wait_until_done(&id);
        match expected {
            Posted(message) => {
                assert_eq!(logged["status"], "processed", "{name}: {logged}");
                let requests = slack.requests();
                assert_eq!(requests.len(), posted_before + 1, "{name} posted once");
                assert_eq!(requests[posted_before].json(), message, "{name}");
            }
            Skipped(reason) => {
                assert_eq!(
                    (logged["status"].as_str(), logged["reason"].as_str()),
                    (Some("skipped"), Some(reason)),
                    "{name}"
                );
                assert_eq!(slack.requests().len(), posted_before, "{name} posted nothing");
            }
        }
    }
}

#[test]
fn a_star_is_announced_once_whichever_of_star_and_watch_arrives_first() {
    let slack = MockSlack::start();
    let ws = everything_to(&slack, "");
    let server = ws.serve();
    assert_eq!(server.deliver("watch", "d-watch", &fixture("watch.started.json")).0, 202);
    assert_eq!(server.deliver("star", "d-star", &fixture("star.created.json")).0, 202);
    assert_eq!(ws.wait_until_done("d-watch")["status"], "processed");
    let star = ws.wait_until_done("d-star");
    assert_eq!(star["reason"], "duplicate: already announced by delivery d-watch");
    let requests = slack.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["text"], "Codertocat starred Codertocat/Hello-World");
}

#[test]
fn ping_shows_its_hook_id_and_zen_in_deliveries() {
    let ws = Workspace::new();
    ws.write_config("");
    let server = ws.serve();
    assert_eq!(server.deliver("ping", "d-ping", &fixture("ping.json")).0, 202);
    let logged = ws.wait_until_done("d-ping");
    assert_eq!(logged["reason"], "ping");
    assert_eq!(logged["hook_id"], "123456");
    assert_eq!(logged["note"], "zen: Anything added dilutes everything else.");
    let table = String::from_utf8(ws.run(&["deliveries"]).stdout).unwrap();
    assert!(table.contains("zen: Anything added dilutes everything else."), "{table}");
}

#[test]
fn render_previews_a_payload_without_sending() {
    let ws = Workspace::new();
    let out =
        ws.run(&["render", fixture_path("pull_request.closed.merged.json").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["text"],
        "[Codertocat/Hello-World] Codertocat merged pull request #2 into master: Update the README with new information."
    );
    let out = ws.run(&["render", "--event", "ping", fixture_path("ping.json").to_str().unwrap()]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "skipped: ping\n");
}
