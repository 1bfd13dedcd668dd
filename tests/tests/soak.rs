//! The soak: trace and serve for ten minutes (TOE_SOAK_SECS) under
//! continuous TCP traffic on a veth pair, while a second interface that
//! serve also traces is deleted and re-created again and again. Not part
//! of `cargo xtask test`: `cargo xtask soak` runs it (docs/cli.md).
//!
//! It proves over the whole run that trace's counts equal perf's, that the
//! NDJSON file ends in its summary, that /metrics answers every scrape (one
//! a second), that serve attaches again each time the interface returns,
//! and that both agents stay flat: resident memory, open descriptors and
//! BPF programs the same at the end as at the start. The figures go to
//! `TOE_SOAK_OUT` (target/soak/soak.json under xtask) and stdout.
use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use toe_agent_tests::{
    Lab, PerfCount, assert_counts_match, privileged, read_ndjson, scratch, sh, wait_for_lines,
};

/// One look at an agent process from /proc.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    rss_kib: u64,
    fds: usize,
    /// Descriptors of BPF programs and of the links that attach them.
    bpf_fds: usize,
}

fn sample(pid: i32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let targets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    Sample {
        rss_kib,
        fds: targets.len(),
        bpf_fds: targets.iter().filter(|t| t.contains("bpf")).count(),
    }
}

fn figures(s: &Sample) -> Value {
    json!({"rss_kib": s.rss_kib, "fds": s.fds, "bpf_fds": s.bpf_fds})
}

/// The second veth pair, the one that comes and goes: `dev_c` in the
/// sender's namespace, `dev_d` (traced by serve) in the receiver's.
struct Churn<'a> {
    lab: &'a Lab,
    dev_c: String,
    dev_d: String,
    subnet: String,
}

impl Churn<'_> {
    fn create(&self) {
        sh(&[
            "ip",
            "link",
            "add",
            &self.dev_c,
            "netns",
            &self.lab.ns_a,
            "type",
            "veth",
            "peer",
            "name",
            &self.dev_d,
            "netns",
            &self.lab.ns_b,
        ]);
        for (ns, dev, host) in [
            (&self.lab.ns_a, &self.dev_c, 1),
            (&self.lab.ns_b, &self.dev_d, 2),
        ] {
            let addr = format!("{}.{host}/24", self.subnet);
            self.lab.exec(ns, &["ip", "addr", "add", &addr, "dev", dev]);
            self.lab.exec(ns, &["ip", "link", "set", dev, "up"]);
        }
    }

    fn delete(&self) {
        sh(&["ip", "-n", &self.lab.ns_b, "link", "del", &self.dev_d]);
    }

    /// A second of TCP over the pair.
    fn traffic(&self) {
        let addr = format!("{}.2", self.subnet);
        let mut server = self.lab.iperf_server(&self.lab.ns_b, &addr, 5202);
        let out = self.lab.exec(
            &self.lab.ns_a,
            &["iperf3", "-c", &addr, "-p", "5202", "-t", "1"],
        );
        assert!(out.status.success(), "iperf3 over the churned pair");
        let _ = server.wait();
    }
}

/// One GET inside the receiver's namespace: the body, or None on any
/// failure (not running yet, an error status, 2 s without an answer).
fn scrape(lab: &Lab, url: &str) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns_b,
            "curl",
            "-sf",
            "--max-time",
            "2",
            url,
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
#[ignore = "runs for ten minutes: cargo xtask soak"]
fn soak() {
    assert!(privileged("soak"), "the soak needs root");
    let secs: u64 = std::env::var("TOE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let lab = Lab::new();
    let churn = Churn {
        lab: &lab,
        dev_c: format!("tc{}", &lab.dev_a[2..]),
        dev_d: format!("td{}", &lab.dev_b[2..]),
        subnet: "10.214.0".into(),
    };
    churn.create();

    // trace on the stable pair for the whole run, perf around it.
    let perf = PerfCount::start(
        &[
            "net:netif_receive_skb",
            "net:netif_rx_entry",
            "net:napi_gro_receive_entry",
        ],
        &lab.dev_b,
        scratch("soak.perf"),
    );
    let perf_start = lab.rx_packets(&lab.ns_b, &lab.dev_b);
    let nd = scratch("soak.ndjson");
    let trace = lab.trace(&lab.ns_b, &lab.dev_b, "1", &nd, &[]);
    wait_for_lines(&nd, 1, Duration::from_secs(20));
    let early = lab.rx_packets(&lab.ns_b, &lab.dev_b) - perf_start;

    let serve = lab.agent(
        &lab.ns_b,
        &[
            "serve",
            "--iface",
            &lab.dev_b,
            "--iface",
            &churn.dev_d,
            "--listen",
            "127.0.0.1:9473",
        ],
    );
    let health = "http://127.0.0.1:9473/healthz";
    let deadline = Instant::now() + Duration::from_secs(20);
    while scrape(&lab, health).is_none() {
        assert!(Instant::now() < deadline, "serve never became healthy");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Continuous traffic, below what the two CPUs can carry so that the
    // scrapes and the churn run beside it.
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns_b,
            "iperf3",
            "-s",
            "-1",
            "-B",
            &lab.addr_b,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let client = Command::new("ip")
        .args(["netns", "exec", &lab.ns_a, "iperf3", "-c", &lab.addr_b])
        .args(["-b", "3G", "-t", &secs.to_string(), "-J"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut server, client) = (Proc(server), Proc(client));

    // Settle, then the first samples.
    std::thread::sleep(Duration::from_secs(5));
    let start = (sample(trace.pid()), sample(serve.pid()));
    let began = Instant::now();
    let (mut scrapes, mut failed, mut churns) = (0u64, 0u64, 0u64);
    // serve's resident memory after each re-attachment.
    let mut serve_rss = Vec::new();
    let mut max_rss = (start.0.rss_kib, start.1.rss_kib);
    let churn_every = Duration::from_secs((secs / 8).max(10));
    let mut next_churn = began + churn_every;
    // Leave the last 15 s without churn: the end samples see it attached.
    while began.elapsed() < Duration::from_secs(secs.saturating_sub(10)) {
        let tick = Instant::now();
        match scrape(&lab, "http://127.0.0.1:9473/metrics") {
            Some(m) if m.contains("toe_iface_up") => scrapes += 1,
            _ => failed += 1,
        }
        let (t, s) = (sample(trace.pid()), sample(serve.pid()));
        max_rss = (max_rss.0.max(t.rss_kib), max_rss.1.max(s.rss_kib));
        if Instant::now() >= next_churn
            && began.elapsed() < Duration::from_secs(secs.saturating_sub(25))
        {
            churn.delete();
            std::thread::sleep(Duration::from_secs(2));
            churn.create();
            churn.traffic();
            churns += 1;
            serve_rss.push(sample(serve.pid()).rss_kib);
            next_churn += churn_every;
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    let end = (sample(trace.pid()), sample(serve.pid()));

    let iperf: Value = {
        let out = client.wait_output();
        let _ = server.0.wait();
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    };
    std::thread::sleep(Duration::from_millis(300));
    lab.wait_quiet(&lab.ns_b, &lab.dev_b, Duration::from_millis(1000));
    let before = lab.rx_packets(&lab.ns_b, &lab.dev_b);
    trace.signal(libc::SIGTERM);
    let traced = trace.wait(Duration::from_secs(20));
    let counts = perf.stop();
    let late = early + lab.rx_packets(&lab.ns_b, &lab.dev_b) - before;
    serve.signal(libc::SIGTERM);
    let served = serve.wait(Duration::from_secs(20));

    let records = read_ndjson(&nd);
    let summary = records.last().unwrap();
    let rx = &summary["rx"];
    let report = json!({
        "seconds": began.elapsed().as_secs(),
        "iperf_gbps": iperf["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or(0.0) / 1e9,
        "trace": {"start": figures(&start.0), "end": figures(&end.0), "max_rss_kib": max_rss.0,
                  "skbs": rx["skbs"], "segments": rx["segments"],
                  "perf_skbs": counts["net:netif_receive_skb"],
                  "intervals": records.len() - 2},
        "serve": {"start": figures(&start.1), "end": figures(&end.1), "max_rss_kib": max_rss.1,
                  "scrapes": scrapes, "failed_scrapes": failed, "churns": churns,
                  "rss_kib_after_churns": serve_rss},
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if let Ok(out) = std::env::var("TOE_SOAK_OUT") {
        std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    }

    assert!(traced.status.success(), "{}", traced.stderr);
    assert!(served.status.success(), "{}", served.stderr);
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["end_reason"], "signal");
    assert_counts_match(
        u(&rx["skbs"]),
        &counts,
        &["net:netif_receive_skb"],
        late,
        "skbs",
    );
    let handoffs = ["net:netif_rx_entry", "net:napi_gro_receive_entry"];
    assert_counts_match(u(&rx["segments"]), &counts, &handoffs, late, "segments");
    assert_eq!(failed, 0, "{failed} of {} scrapes failed", scrapes + failed);
    assert!(churns >= 5, "{churns} churns");
    assert_eq!(
        served
            .stderr
            .matches(&format!("{} attached", churn.dev_d))
            .count() as u64,
        churns,
        "serve attached again after each churn: {}",
        served.stderr
    );
    for (name, s, e) in [("trace", start.0, end.0), ("serve", start.1, end.1)] {
        assert_eq!(s.fds, e.fds, "{name}: descriptors {s:?} -> {e:?}");
        assert_eq!(
            s.bpf_fds, e.bpf_fds,
            "{name}: BPF descriptors {s:?} -> {e:?}"
        );
        // Flat: allocator noise, not growth with time.
        assert!(
            e.rss_kib <= s.rss_kib + s.rss_kib / 4 + 2048,
            "{name}: RSS {s:?} -> {e:?}"
        );
    }
}

/// A child process of ours, killed by PID if the soak fails early.
struct Proc(std::process::Child);

impl Proc {
    fn wait_output(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(mut o) = self.0.stdout.take() {
            std::io::Read::read_to_end(&mut o, &mut out).unwrap();
        }
        let _ = self.0.wait();
        out
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
