//! Intake and end-to-end benchmark: how fast `serve` acknowledges signed webhooks, and how long
//! until each is posted to a (local, instant) Slack.
//!
//! ```text
//! cargo run --release --example bench -- [DELIVERIES] [CONCURRENCY]
//! ```
//!
//! It runs the same pieces as `notifier serve` (receiver, writer thread, worker, SQLite in WAL
//! with synchronous=FULL on a temp file in the current directory's file system), sends
//! DELIVERIES (default 2000) copies of `issues.opened.json`, each with its own delivery id, from
//! CONCURRENCY (default 8) client threads over loopback, and prints latency percentiles and
//! rates. Slack is a local stub that answers `200 ok` at once, so the drain figure measures
//! notifier, not Slack.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use notifier::commands::Relay;
use notifier::signature::{Secret, sign};

const SECRET: &str = "benchmark-secret-0123456789abcdef";

fn main() -> Result<(), notifier::Error> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8).max(1);

    let fixture =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/github/issues.opened.json");
    let body = std::fs::read(fixture).map_err(|e| format!("reading {fixture}: {e}"))?;
    let signature = sign(&Secret::new(SECRET), &body);

    let posted = Arc::new(AtomicUsize::new(0));
    let slack_url = stub_slack(Arc::clone(&posted))?;

    let dir = tempfile::tempdir_in(".")?;
    let config_text = format!(
        "[server]\nsecret_env = \"NOTIFIER_BENCH_SECRET\"\n\
         [storage]\npath = {:?}\n\
         [worker]\npoll_interval_ms = 1000\n\
         [channels.dev]\nkind = \"slack\"\nmax_per_second = 0\nwebhook_url = \"{slack_url}\"\n\
         [[routes]]\nevents = [\"issues\"]\nchannel = \"dev\"\n",
        dir.path().join("bench.db").display().to_string()
    );
    // SAFETY: set before any other thread of this process is started.
    unsafe { std::env::set_var("NOTIFIER_BENCH_SECRET", SECRET) };
    let config = notifier::config::parse("bench.toml", &config_text)?;
    let relay = Relay::start(&config)?;

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(notifier::server::run(listener, relay.intake(), async {
        let _ = stop_rx.await;
    }));

    println!(
        "notifier intake benchmark: {total} deliveries of {} bytes, {concurrency} client threads",
        body.len()
    );
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, url, body, signature) =
                (Arc::clone(&next), url.clone(), body.clone(), signature.clone());
            thread::spawn(move || -> Vec<Duration> {
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return latencies;
                    }
                    let id = format!("bench-{i:08}");
                    let sent = Instant::now();
                    let res = agent
                        .post(&url)
                        .header("X-GitHub-Event", "issues")
                        .header("X-GitHub-Delivery", &id)
                        .header("X-Hub-Signature-256", &signature)
                        .header("Content-Type", "application/json")
                        .send(&body[..])
                        .expect("POST to notifier");
                    assert_eq!(res.status().as_u16(), 202, "delivery {id}");
                    latencies.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut latencies: Vec<Duration> =
        clients.into_iter().flat_map(|c| c.join().expect("client thread")).collect();
    let acked = started.elapsed();
    while posted.load(Ordering::Relaxed) < total {
        thread::sleep(Duration::from_millis(5));
    }
    let drained = started.elapsed();

    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("acknowledged (202, committed to disk):");
    println!(
        "  all {total} in {:.2} s = {:.0} deliveries/s",
        acked.as_secs_f64(),
        total as f64 / acked.as_secs_f64()
    );
    println!(
        "  latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(pct(1.0))
    );
    println!(
        "posted to Slack stub: all {total} after {:.2} s = {:.0} messages/s end to end",
        drained.as_secs_f64(),
        total as f64 / drained.as_secs_f64()
    );

    let _ = stop_tx.send(());
    runtime.block_on(server)?;
    drop(runtime);
    relay.stop();
    Ok(())
}

/// A Slack stand-in that answers every request `200 ok` and counts them. Returns its URL.
fn stub_slack(posted: Arc<AtomicUsize>) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/services/bench", listener.local_addr()?);
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let posted = Arc::clone(&posted);
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("cloning a socket"));
                let mut writer = stream;
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim_end().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    posted.fetch_add(1, Ordering::Relaxed);
                    if writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}
