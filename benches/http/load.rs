//! The load generator: HTTP/1.1 keep-alive connections (hyper) posting
//! pre-minted responses to the ACS, each response at most once. The closed
//! loop finds the maximum throughput; the open loop sends at a fixed rate on
//! a schedule and counts each latency from its scheduled send time, so a
//! stalled server is charged for the requests it held up (no coordinated
//! omission). Then the database is checked against the answers.

use super::Args;
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, LOCATION};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The responses to post (as form bodies) and the next one to take.
struct Feed {
    bodies: Vec<String>,
    next: AtomicUsize,
}

impl Feed {
    /// The index of the next unposted response.
    fn take(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.bodies.len()).then_some(i)
    }

    fn left(&self) -> usize {
        self.bodies
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed))
    }
}

/// What one phase saw.
#[derive(Default)]
struct Tally {
    /// Logins answered 303 to `/me`: a session was made.
    ok: usize,
    /// Any other answer (a failure page, an error status).
    refused: usize,
    /// No answer (connection error, timeout).
    errors: usize,
    latencies_us: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.refused += o.refused;
        self.errors += o.errors;
        self.latencies_us.extend(o.latencies_us);
    }

    fn record(&mut self, answer: Result<bool, String>, since: Instant) {
        self.latencies_us.push(since.elapsed().as_micros() as u64);
        match answer {
            Ok(true) => self.ok += 1,
            Ok(false) => self.refused += 1,
            Err(_) => self.errors += 1,
        }
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// One keep-alive connection to the server.
struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<String>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Conn {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    async fn open(&mut self) -> Result<&mut SendRequest<String>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let tcp = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?;
            tcp.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| "no connection".into())
    }

    /// Posts one response; true when it made a session (303 to `/me`).
    async fn post(&mut self, body: &str) -> Result<bool, String> {
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(body)).await;
        let answer = answer.unwrap_or_else(|_| Err("timeout".into()));
        if answer.is_err() {
            self.sender = None;
        }
        answer
    }

    async fn exchange(&mut self, body: &str) -> Result<bool, String> {
        let host = self.host.clone();
        let sender = self.open().await?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = hyper::Request::post("/saml/acs")
            .header(HOST, host)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.to_string())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let made = response.status() == hyper::StatusCode::SEE_OTHER
            && response.headers().get(LOCATION).is_some_and(|l| l == "/me");
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(made)
    }
}

/// `C` connections, each posting the next response as soon as the last is
/// answered, for `secs` seconds.
async fn closed_loop(feed: &Arc<Feed>, addr: SocketAddr, c: usize, secs: f64) -> (Tally, f64) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..c)
        .map(|_| {
            let feed = feed.clone();
            tokio::spawn(async move {
                let (mut conn, mut t) = (Conn::new(addr), Tally::default());
                while Instant::now() < deadline {
                    let Some(i) = feed.take() else { break };
                    let sent = Instant::now();
                    let answer = conn.post(&feed.bodies[i]).await;
                    t.record(answer, sent);
                }
                t
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await.unwrap_or_default());
    }
    (tally, start.elapsed().as_secs_f64())
}

/// `rate` requests a second for `secs` seconds on a fixed schedule, served
/// by `c` connections; a request waiting for a free connection is late, and
/// its latency says so.
async fn open_loop(
    feed: &Arc<Feed>,
    addr: SocketAddr,
    c: usize,
    rate: f64,
    secs: f64,
) -> (Tally, f64) {
    let n = (rate * secs).round() as usize;
    let (tx, rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    let rx = Arc::new(Mutex::new(rx));
    let workers: Vec<_> = (0..c)
        .map(|_| {
            let (rx, feed) = (rx.clone(), feed.clone());
            tokio::spawn(async move {
                let (mut conn, mut t) = (Conn::new(addr), Tally::default());
                loop {
                    let job = rx.lock().await.recv().await;
                    let Some((i, scheduled)) = job else { break };
                    let answer = conn.post(&feed.bodies[i]).await;
                    t.record(answer, scheduled);
                }
                t
            })
        })
        .collect();
    let start = Instant::now() + Duration::from_millis(20);
    for k in 0..n {
        let Some(i) = feed.take() else { break };
        let at = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        if tx.send((i, at)).is_err() {
            break;
        }
    }
    drop(tx);
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(w.await.unwrap_or_default());
    }
    (tally, start.elapsed().as_secs_f64())
}

/// One phase's line of the report, and its figures for the summary.
fn report(name: &str, mut t: Tally, secs: f64, cpu: super::measure::Cpu, out: &mut Vec<String>) {
    let done = t.ok + t.refused + t.errors;
    let rate = t.ok as f64 / secs;
    let (p50, p99, max) = (
        t.percentile_ms(0.50),
        t.percentile_ms(0.99),
        t.percentile_ms(1.0),
    );
    println!(
        "{name:<22} {done:>7} posted {:>8.0} logins/s  p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  max {max:>8.1} ms  server CPU {:>6.3} ms/login  generator CPU {:>6.3} ms/login{}",
        rate,
        cpu.server_ms / t.ok.max(1) as f64,
        cpu.generator_ms / t.ok.max(1) as f64,
        if t.refused + t.errors > 0 {
            format!("  ({} refused, {} no answer)", t.refused, t.errors)
        } else {
            String::new()
        }
    );
    let key = name.replace([' ', '/', ','], "_");
    out.push(format!(
        "{key} rate={rate:.0} p50_ms={p50:.2} p99_ms={p99:.2} cpu_ms={:.3}",
        cpu.server_ms / t.ok.max(1) as f64
    ));
}

/// The whole `load` command; see the module documentation.
pub async fn run(args: &Args) -> Result<(), String> {
    use super::measure::{check_database, Cpu, Proc};
    let dir = PathBuf::from(args.need("dir")?);
    let addr: SocketAddr = args
        .need("addr")?
        .parse()
        .map_err(|e| format!("--addr: {e}"))?;
    let server = Proc::new(args.need("pid")?, args.get("clk-tck", 100.0));
    let me = Proc::new("self".into(), args.get("clk-tck", 100.0));
    let (c, secs): (usize, f64) = (args.get("connections", 16), args.get("seconds", 10.0));
    let open_c: usize = args.get("open-connections", 64);
    let rate_secs: f64 = args.get("rate-seconds", 5.0);
    let rates: Vec<f64> = args
        .get("rates", "200,500,1000,2000".to_string())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let text = std::fs::read_to_string(dir.join("responses.txt")).map_err(|e| e.to_string())?;
    let bodies: Vec<String> = text
        .lines()
        .map(|b| serde_urlencoded::to_string([("SAMLResponse", b)]).unwrap_or_default())
        .collect();
    let needed: f64 = rates.iter().map(|r| r * rate_secs).sum();
    let feed = Arc::new(Feed {
        bodies,
        next: AtomicUsize::new(0),
    });
    if (feed.left() as f64) < needed + 1.0 {
        return Err(format!(
            "{} responses; the open loop alone needs {needed}",
            feed.left()
        ));
    }
    println!(
        "posting to http://{addr}/saml/acs, {} responses minted",
        feed.left()
    );
    let (mut total, mut summary) = (Tally::default(), Vec::new());
    // Closed loop first, on what the open loop leaves.
    let closed_feed = Arc::new(Feed {
        bodies: feed.bodies[needed as usize..].to_vec(),
        next: AtomicUsize::new(0),
    });
    let before = Cpu::read(&server, &me)?;
    let (t, s) = closed_loop(&closed_feed, addr, c, secs).await;
    let name = format!("closed loop, {c} conns");
    report(
        &name,
        t.clone_counts(),
        s,
        Cpu::read(&server, &me)?.since(&before),
        &mut summary,
    );
    total.merge(t);
    for rate in rates {
        let before = Cpu::read(&server, &me)?;
        let (t, s) = open_loop(&feed, addr, open_c, rate, rate_secs).await;
        let name = format!("open loop {rate:.0}/s");
        report(
            &name,
            t.clone_counts(),
            s,
            Cpu::read(&server, &me)?.since(&before),
            &mut summary,
        );
        total.merge(t);
    }
    let hwm = server.peak_rss_kib()?;
    println!("server peak RSS (VmHWM) {:.1} MiB", hwm as f64 / 1024.0);
    summary.push(format!("rss_mib={:.1}", hwm as f64 / 1024.0));
    check_database(&dir.join("bench.db"), total.ok, total.refused, total.errors).await?;
    let path = dir.join("summary.txt");
    std::fs::write(&path, summary.join("\n") + "\n").map_err(|e| e.to_string())
}

impl Tally {
    /// The counts and latencies, for a report, keeping the original to merge.
    fn clone_counts(&self) -> Tally {
        Tally {
            ok: self.ok,
            refused: self.refused,
            errors: self.errors,
            latencies_us: self.latencies_us.clone(),
        }
    }
}
