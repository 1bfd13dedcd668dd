//! `toe-agent serve` scraped by a real Prometheus server (Debian's
//! package), all inside a namespace the test creates.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use toe_agent_tests::{Lab, agent_bin, privileged, scratch, sh};

/// A process of ours, killed by PID on drop.
struct Proc(Child);

impl Proc {
    /// SIGTERM, then what it wrote to stderr.
    fn stop(mut self) -> String {
        let pid = self.0.id().to_string();
        sh(&["kill", "-TERM", &pid]);
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        let _ = self.0.wait();
        err
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns_b, "curl", "-s", "--max-time", "5"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn serve(lab: &Lab, extra: &[&str]) -> Proc {
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns_b])
        .arg(agent_bin().unwrap())
        .args(["serve", "--iface", &lab.dev_b, "--listen", "127.0.0.1:9469"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let p = Proc(child);
    wait_for("serve", Duration::from_secs(20), || {
        curl(lab, &["http://127.0.0.1:9469/healthz"]).starts_with("ok")
    });
    p
}

/// Prometheus's instant query, as the first value of the first series.
fn query(lab: &Lab, expr: &str) -> Vec<Value> {
    let body = curl(
        lab,
        &[
            "-G",
            "http://127.0.0.1:9090/api/v1/query",
            "--data-urlencode",
            &format!("query={expr}"),
        ],
    );
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{expr}: {e}: {body}"));
    assert_eq!(v["status"], "success", "{body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn value(series: &Value) -> f64 {
    series["value"][1].as_str().unwrap().parse().unwrap()
}

#[test]
fn prometheus_scrapes_serve() {
    if !privileged("prometheus_scrapes_serve") {
        return;
    }
    let lab = Lab::new();
    lab.offloads(&lab.ns_a, &lab.dev_a, &[("tso", false)]);
    lab.offloads(&lab.ns_b, &lab.dev_b, &[("gro", true)]);
    let server = serve(&lab, &[]);

    let dir = scratch("prometheus");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: toe-agent\n    static_configs:\n      - targets: ['127.0.0.1:9469']\n",
    )
    .unwrap();
    let prometheus = Proc(
        Command::new("ip")
            .args(["netns", "exec", &lab.ns_b, "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .args(["--web.listen-address=127.0.0.1:9090", "--log.level=warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus"),
    );
    wait_for("prometheus", Duration::from_secs(30), || {
        curl(&lab, &["http://127.0.0.1:9090/-/ready"]).contains("Ready")
    });

    // Prometheus applies new targets on a 5 s tick: wait for a first scrape.
    let up_query = "up{job=\"toe-agent\"}";
    wait_for("a first scrape", Duration::from_secs(30), || {
        !query(&lab, up_query).is_empty()
    });
    let up = query(&lab, up_query);
    assert_eq!(value(&up[0]), 1.0, "{up:?}");

    lab.iperf(3);
    // The segments every skb after GRO carried: whole, sampled or not.
    let whole = format!("toe_rx_segments_per_skb_sum{{iface=\"{}\"}}", lab.dev_b);
    wait_for(
        "the transfer in Prometheus",
        Duration::from_secs(20),
        || {
            query(&lab, &whole)
                .first()
                .is_some_and(|s| value(s) > 100_000.0)
        },
    );
    // One more scrape, so that every series has caught up.
    std::thread::sleep(Duration::from_millis(1500));
    let whole = value(&query(&lab, &whole)[0]);
    let skbs = value(&query(&lab, "toe_rx_skbs_total")[0]);
    let per_skb = whole / skbs;
    assert!(per_skb > 4.0, "software GRO merges: {per_skb}");
    // The hand-offs are counted in the sampling windows only (10% of the
    // time by default), and the sampling is exported with them.
    let fraction = value(&query(&lab, "toe_sample_fraction")[0]);
    assert_eq!(fraction, 0.1);
    let windows = value(&query(&lab, "toe_sampled_seconds_total")[0]);
    assert!(windows > 0.2, "{windows} s of sampling windows");
    let handoffs = value(&query(&lab, "toe_rx_segments_total")[0]);
    let share = handoffs / whole;
    assert!((0.03..=0.3).contains(&share), "hand-offs sampled: {share}");
    let verdict = query(&lab, "toe_offload_verdict{offload=\"rx_coalescing\"}");
    assert_eq!(verdict.len(), 1, "{verdict:?}");
    assert_eq!(verdict[0]["metric"]["mechanism"], "software", "{verdict:?}");
    assert_eq!(verdict[0]["metric"]["configured"], "rx-gro=on");
    assert_eq!(verdict[0]["metric"]["mismatch"], "false");
    let csum = query(
        &lab,
        "sum by (state) (toe_rx_csum_total{stage=\"handoff\"})",
    );
    assert!(
        csum.iter()
            .any(|s| s["metric"]["state"] == "partial" && value(s) > 100_000.0),
        "{csum:?}"
    );
    let hist = query(&lab, "histogram_quantile(0.5, toe_rx_segment_bytes_bucket)");
    let p50 = value(&hist[0]);
    assert!((1000.0..=2048.0).contains(&p50), "median segment {p50}");
    assert!(!query(&lab, "toe_build_info").is_empty());
    // The class the verdicts judge the device as: veth is virtual.
    let info = query(&lab, "toe_device_info");
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0]["metric"]["driver"], "veth", "{info:?}");
    assert_eq!(info[0]["metric"]["device_class"], "virtual", "{info:?}");
    assert!(!query(&lab, "toe_softirq_duration_seconds_count").is_empty());
    assert!(value(&query(&lab, "toe_agent_resident_memory_bytes")[0]) > 1e6);

    // The exposition passes promtool's checks.
    let text = curl(&lab, &["http://127.0.0.1:9469/metrics"]);
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(check.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The rules shipped in deploy/ load in Prometheus's own checker.
    let rules = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/prometheus/rules.yml"
    );
    let out = Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // SIGTERM: a clean exit.
    let mut server = server;
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    drop(prometheus);
}

#[test]
fn serve_survives_the_interface_going_away_and_back() {
    if !privileged("serve_survives_the_interface_going_away_and_back") {
        return;
    }
    let lab = Lab::new();
    let _server = serve(&lab, &["--interval", "0.2"]);
    let metric = |name: &str| {
        curl(&lab, &["http://127.0.0.1:9469/metrics"])
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    lab.iperf(1);
    wait_for("counts", Duration::from_secs(5), || {
        metric("toe_rx_segments_total").is_some_and(|v| v != "0")
    });
    let before: u64 = metric("toe_rx_segments_total").unwrap().parse().unwrap();

    sh(&["ip", "-n", &lab.ns_b, "link", "del", &lab.dev_b]);
    wait_for("down", Duration::from_secs(5), || {
        metric("toe_iface_up").as_deref() == Some("0")
    });
    assert_eq!(
        metric("toe_rx_segments_total"),
        None,
        "series stop while the interface is gone"
    );
    assert!(
        curl(
            &lab,
            &["-w", "%{http_code}", "http://127.0.0.1:9469/healthz"]
        )
        .ends_with("503")
    );

    lab.link();
    wait_for("up again", Duration::from_secs(5), || {
        metric("toe_iface_up").as_deref() == Some("1")
    });
    lab.iperf(1);
    wait_for("resumed", Duration::from_secs(5), || {
        metric("toe_rx_segments_total")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|v| v > before)
    });
    assert!(curl(&lab, &["http://127.0.0.1:9469/healthz"]).starts_with("ok"));
}

/// `ip netns exec` hides the host's tracefs, so serve's classic fallback
/// mounts one in a private mount namespace (unshare(CLONE_NEWNS)); the
/// interface then goes away and comes back, and the sampler thread of a
/// multi-threaded serve attaches the classic programs again.
#[test]
fn serve_on_classic_tracepoints_attaches_again_from_its_sampler_thread() {
    if !privileged("serve_on_classic_tracepoints_attaches_again_from_its_sampler_thread") {
        return;
    }
    let lab = Lab::new();
    let server = serve(&lab, &["--interval", "0.2", "--classic"]);
    let scrape = || curl(&lab, &["http://127.0.0.1:9469/metrics"]);
    let value_of = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    // No probe is on its BTF tracepoint; those with a classic fallback
    // (the hand-off, after GRO, transmit, softirq and NAPI families) count
    // on it, the others (no classic program) are failed.
    let on_classic = |text: &str| {
        let probes: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("toe_probe_attached{"))
            .collect();
        let classic = probes
            .iter()
            .filter(|l| {
                l.contains("hook=\"tracepoint/")
                    && l.contains("state=\"degraded\"")
                    && l.ends_with(" 1")
            })
            .count();
        classic >= 12 && probes.iter().all(|l| !l.contains("state=\"attached\""))
    };
    lab.iperf(1);
    wait_for("counts", Duration::from_secs(5), || {
        value_of(&scrape(), "toe_rx_segments_total").is_some_and(|v| v > 1000)
    });
    let text = scrape();
    assert!(on_classic(&text), "{text}");
    let before = value_of(&text, "toe_rx_skbs_total").unwrap();
    assert!(before > 0, "{text}");

    sh(&["ip", "-n", &lab.ns_b, "link", "del", &lab.dev_b]);
    wait_for("down", Duration::from_secs(5), || {
        value_of(&scrape(), "toe_iface_up") == Some(0)
    });
    lab.link();
    wait_for("up again", Duration::from_secs(5), || {
        value_of(&scrape(), "toe_iface_up") == Some(1)
    });
    lab.iperf(1);
    wait_for("resumed", Duration::from_secs(5), || {
        value_of(&scrape(), "toe_rx_skbs_total").is_some_and(|v| v > before)
    });
    let text = scrape();
    assert!(on_classic(&text), "{text}");
    assert!(curl(&lab, &["http://127.0.0.1:9469/healthz"]).starts_with("ok"));
    let stderr = server.stop();
    assert_eq!(
        stderr.matches("probes on classic tracepoints").count(),
        2,
        "once per attachment: {stderr}"
    );
    assert!(!stderr.contains("unshare"), "{stderr}");
}

#[test]
fn serve_per_skb_exports_what_it_cannot_see_as_not_measured() {
    if !privileged("serve_per_skb_exports_what_it_cannot_see_as_not_measured") {
        return;
    }
    let lab = Lab::new();
    let _server = serve(&lab, &["--interval", "0.2", "--window", "25", "--per-skb"]);
    let metrics = || curl(&lab, &["http://127.0.0.1:9469/metrics"]);
    let verdict = |text: &str, offload: &str| {
        text.lines()
            .filter(|l| l.starts_with("toe_offload_verdict{"))
            .filter(|l| l.contains(&format!("offload=\"{offload}\"")))
            .find(|l| l.ends_with(" 1"))
            .map(str::to_string)
    };
    lab.iperf(1);
    wait_for("verdicts over the transfer", Duration::from_secs(5), || {
        verdict(&metrics(), "tx_segmentation").is_some_and(|l| !l.contains("not_exercised"))
    });
    let text = metrics();
    for (offload, mechanism) in [
        ("tx_segmentation", "not_measured"),
        ("tx_checksum", "not_measured"),
        ("rx_coalescing", "not_measured"),
        ("rx_checksum", "not_measured"),
        ("rss", "off"),
    ] {
        let line = verdict(&text, offload).unwrap_or_else(|| panic!("no {offload}: {text}"));
        assert!(
            line.contains(&format!("mechanism=\"{mechanism}\"")),
            "{line}"
        );
    }
    // Skbs are counted; the per-segment hand-off is not attached at all.
    let counter = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(counter("toe_rx_skbs_total") > 100, "{text}");
    assert_eq!(counter("toe_rx_segments_total"), 0, "{text}");
    // The programs' skipped runs are exported; none on these hooks.
    assert!(
        text.lines()
            .any(|l| l.starts_with("toe_bpf_program_missed_runs_total ")),
        "{text}"
    );
    assert_eq!(counter("toe_bpf_program_missed_runs_total"), 0, "{text}");
}

#[test]
fn serve_rejects_bad_input() {
    if !privileged("serve_rejects_bad_input") {
        return;
    }
    let lab = Lab::new();
    let run = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &lab.ns_b])
            .arg(agent_bin().unwrap())
            .arg("serve")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--iface", "nosuch0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no interface named 'nosuch0'"));
    let out = run(&["--iface", &lab.dev_b, "--listen", "10.99.99.99:9469"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on 10.99.99.99:9469"));
    let out = run(&["--iface", &lab.dev_b, "--sample", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must be more than 0 and at most 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The DaemonSet must not serve the node's address without authentication:
/// with hostNetwork the pod's address is the node's.
#[test]
fn the_daemonset_keeps_serve_on_loopback_behind_a_proxy() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/kubernetes/daemonset.yaml"
    ))
    .unwrap();
    let serve = yaml
        .lines()
        .find(|l| l.contains("args: [\"serve\""))
        .expect("the agent's args");
    assert!(
        serve.contains("\"--listen\", \"127.0.0.1:9469\""),
        "{serve}"
    );
    assert!(
        !yaml.contains("POD_IP):9469"),
        "the agent bound to the node address"
    );
    // The proxy is the only way in, and it checks tokens on /metrics.
    assert!(yaml.contains("--upstream=http://127.0.0.1:9469/"));
    assert!(yaml.contains("--secure-listen-address=$(POD_IP):9443"));
    assert!(yaml.contains("nonResourceURLs: [\"/metrics\"]"));
}
