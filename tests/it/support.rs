//! Shared pieces of the integration tests: fixtures, a running `notifier serve`, a mock Slack.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use notifier::signature::{Secret, sign};

/// The secret every test server runs with.
pub const SECRET: &str = "integration-test-secret-0123456789";

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

/// A payload from `../shared/fixtures/github/`, byte for byte.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/github").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/github").join(name)
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out after {DEADLINE:?} waiting for {what}");
        thread::sleep(POLL);
    }
}

/// The `notifier` binary with a clean environment: no `NOTIFIER_*` variables, no secret.
pub fn notifier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_notifier"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("NOTIFIER_")
            || key.starts_with("SLACK_")
            || key == "GITHUB_WEBHOOK_SECRET"
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("NOTIFIER_LOG", "info");
    cmd
}

/// A temporary directory with a config file and a database path.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("creating a temp dir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config(&self) -> PathBuf {
        self.path("notifier.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.path("notifier.db")
    }

    /// Writes `notifier.toml`: fast worker timings, then `body`.
    pub fn write_config(&self, body: &str) {
        self.write_config_with_worker("send_timeout_ms = 2000", body);
    }

    /// Writes `notifier.toml`: fast retry timings and the `worker` lines, then `body`.
    pub fn write_config_with_worker(&self, worker: &str, body: &str) {
        let text = format!(
            "[worker]\npoll_interval_ms = 50\nretry_initial_ms = 20\nretry_max_ms = 100\n{worker}\n\n{body}"
        );
        std::fs::write(self.config(), text).expect("writing the config");
    }

    /// Runs `notifier --config … --db … ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        notifier()
            .arg("--config")
            .arg(self.config())
            .arg("--db")
            .arg(self.db())
            .args(args)
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .output()
            .expect("running notifier")
    }

    /// `notifier deliveries --json`, parsed.
    pub fn deliveries(&self) -> Vec<serde_json::Value> {
        self.deliveries_limit(50)
    }

    /// `notifier deliveries --json --limit N`, parsed.
    pub fn deliveries_limit(&self, limit: usize) -> Vec<serde_json::Value> {
        let out = self.run(&["deliveries", "--json", "--limit", &limit.to_string()]);
        assert!(
            out.status.success(),
            "deliveries failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("deliveries --json prints JSON lines"))
            .collect()
    }

    /// Waits until delivery `id` has left `pending`, and returns its log entry.
    pub fn wait_until_done(&self, id: &str) -> serde_json::Value {
        wait_for(&format!("delivery {id} to finish"), || {
            self.deliveries().into_iter().find(|d| d["id"] == id && d["status"] != "pending")
        })
    }

    /// Starts `notifier serve` on this workspace's config and database, on a free port.
    pub fn serve(&self) -> Server {
        let mut cmd = notifier();
        cmd.arg("--config").arg(self.config()).arg("--db").arg(self.db());
        cmd.env("GITHUB_WEBHOOK_SECRET", SECRET);
        Server::start(cmd)
    }
}

/// A workspace whose config posts every event to one mock Slack channel, `dev`, unpaced;
/// `before` goes first (a `[storage]` or `[server]` table, say).
pub fn everything_to(slack: &MockSlack, before: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write_config(&format!(
        "{before}\n[channels.dev]\nkind = \"slack\"\nmax_per_second = 0\nwebhook_url = \"{}\"\n\n\
         [[routes]]\nchannel = \"dev\"\n",
        slack.url("/services/dev")
    ));
    ws
}

/// A running `notifier serve`, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Spawns `cmd serve --listen 127.0.0.1:0` and reads the address from its first line.
    pub fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning notifier serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = match lines.next() {
            Some(Ok(line)) => line,
            _ => {
                let status = child.wait().unwrap();
                thread::sleep(Duration::from_millis(100));
                panic!("serve exited ({status}) before listening: {}", stderr.lock().unwrap());
            }
        };
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let stdout = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stdout);
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut out = sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        Server { child, url, stdout, stderr }
    }

    /// The server's base URL, without the webhook path.
    pub fn base(&self) -> String {
        let rest = &self.url["http://".len()..];
        format!("http://{}", &rest[..rest.find('/').unwrap()])
    }

    /// What serve printed on stdout after its first line.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// POSTs a fixture as GitHub would: JSON, signed with [`SECRET`].
    pub fn deliver(&self, event: &str, id: &str, body: &[u8]) -> (u16, String) {
        let signature = sign(&Secret::new(SECRET), body);
        self.post(
            &self.url,
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", id),
                ("X-GitHub-Hook-ID", "123456"),
                ("X-Hub-Signature-256", &signature),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    }

    /// POSTs `body` to `url` with exactly `headers`.
    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        let mut req = agent().post(url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut res = req.send(body).expect("POST to notifier");
        (res.status().as_u16(), res.body_mut().read_to_string().unwrap_or_default())
    }

    /// Kills the process with SIGKILL, as a power cut or the OOM killer would.
    pub fn kill9(mut self) {
        self.child.kill().expect("killing serve");
        self.child.wait().expect("reaping serve");
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "serve did not exit after SIGTERM");
            thread::sleep(POLL);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that returns 4xx and 5xx as responses, not errors.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// One request the mock Slack received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When its body had arrived.
    pub at: Instant,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("Slack request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A scripted answer of the mock Slack.
#[derive(Debug, Clone)]
pub enum Reply {
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Answer 200 `ok` after this long.
    Slow(Duration),
    /// Read the request, then answer nothing until the test ends.
    Hang,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status { status: 200, body: "ok".into(), retry_after: None }
    }
}

/// A Slack incoming-webhook stand-in on `127.0.0.1:0`: records every request and answers as
/// scripted (200 `ok` when the script is empty). Stops on drop.
pub struct MockSlack {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    stopping: Arc<AtomicBool>,
}

impl MockSlack {
    pub fn start() -> MockSlack {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the mock Slack");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (reqs, scr, stop) = (Arc::clone(&requests), Arc::clone(&script), Arc::clone(&stopping));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (reqs, scr, stop) = (Arc::clone(&reqs), Arc::clone(&scr), Arc::clone(&stop));
                thread::spawn(move || serve_connection(stream, &reqs, &scr, &stop));
            }
        });
        MockSlack { addr, requests, script, stopping }
    }

    /// The webhook URL for `path`, e.g. `/services/T0/B0/dev`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived, and returns all of them.
    pub fn wait_for_requests(&self, n: usize) -> Vec<Recorded> {
        wait_for(&format!("{n} Slack request(s)"), || {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
    }
}

impl Drop for MockSlack {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_connection(
    stream: TcpStream,
    requests: &Mutex<Vec<Recorded>>,
    script: &Mutex<VecDeque<Reply>>,
    stopping: &AtomicBool,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests.lock().unwrap().push(Recorded { at: Instant::now(), path, headers, body });
        let reply = script.lock().unwrap().pop_front().unwrap_or_else(Reply::ok);
        let reply = match reply {
            Reply::Slow(delay) => {
                thread::sleep(delay);
                Reply::ok()
            }
            other => other,
        };
        match reply {
            Reply::Slow(_) => unreachable!("answered above"),
            Reply::Hang => {
                while !stopping.load(Ordering::SeqCst) {
                    thread::sleep(POLL);
                }
                return;
            }
            Reply::Status { status, body, retry_after } => {
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n",
                    body.len()
                );
                if let Some(seconds) = retry_after {
                    response.push_str(&format!("retry-after: {seconds}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(&body);
                if writer.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}
