//! Least privilege, as docs/cli.md states it: trace and serve run as an
//! unprivileged user holding CAP_BPF and CAP_PERFMON and nothing else
//! (the systemd unit and the DaemonSet grant exactly these), and without
//! one of them the error names it. The audit needs no capability at all
//! (tests/tests/audit.rs runs it as nobody).
use std::time::{Duration, Instant};

use serde_json::Value;
use toe_agent_tests::{Lab, privileged};

const CAPS: &[&str] = &["bpf", "perfmon"];

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn trace_runs_with_only_cap_bpf_and_cap_perfmon() {
    if !privileged("trace_runs_with_only_cap_bpf_and_cap_perfmon") {
        return;
    }
    let lab = Lab::new();
    let agent = lab.agent_with_caps(
        &lab.ns_b,
        CAPS,
        &[
            "trace",
            "--iface",
            &lab.dev_b,
            "--duration",
            "5",
            "--ndjson",
            "-",
        ],
    );
    // Attached well before the traffic (the header is on stdout, read at
    // the end, so give it time).
    std::thread::sleep(Duration::from_millis(1500));
    lab.iperf(2);
    let done = agent.wait(Duration::from_secs(30));
    assert!(done.status.success(), "{}", done.stderr);
    let records: Vec<Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let header = &records[0];
    let probes = header["probes"].as_array().unwrap();
    assert!(
        probes.iter().all(|p| p["status"] == "attached"),
        "every probe on its BTF hook: {probes:?}"
    );
    let summary = records.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["end_reason"], "duration");
    // Sampled by default: the windows attached and detached the
    // per-segment programs with these capabilities too.
    assert!(
        u(&summary["rx"]["segs_per_skb"]["sum"]) > 10_000,
        "{summary}"
    );
    assert!(u(&summary["sample"]["windows"]) >= 3, "{summary}");
    assert!(u(&summary["rx"]["segments"]) > 0, "{summary}");
    // The device's features are read without CAP_NET_ADMIN (ethtool's
    // get commands need none: net/ethtool/ioctl.c, dev_ethtool()).
    let tso = &summary["verdicts"][0];
    assert_eq!(tso["configured"]["feature"], "tx-tcp-segmentation", "{tso}");
    assert!(done.stderr.trim().is_empty(), "{}", done.stderr);
}

#[test]
fn serve_runs_with_only_cap_bpf_and_cap_perfmon() {
    if !privileged("serve_runs_with_only_cap_bpf_and_cap_perfmon") {
        return;
    }
    let lab = Lab::new();
    let agent = lab.agent_with_caps(
        &lab.ns_b,
        CAPS,
        &[
            "serve",
            "--iface",
            &lab.dev_b,
            "--listen",
            "127.0.0.1:9471",
            "--interval",
            "0.2",
        ],
    );
    let curl = |path: &str| {
        let url = format!("http://127.0.0.1:9471{path}");
        let out = lab.exec(&lab.ns_b, &["curl", "-s", "--max-time", "5", &url]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !curl("/healthz").starts_with("ok") {
        assert!(Instant::now() < deadline, "serve never became healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.iperf(1);
    std::thread::sleep(Duration::from_millis(500));
    let metrics = curl("/metrics");
    // The segments after GRO: whole, although the hand-offs are sampled.
    let segments: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("toe_rx_segments_per_skb_sum{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(segments > 10_000.0, "{segments}");
    let probes: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("toe_probe_attached{"))
        .collect();
    assert!(
        !probes.is_empty()
            && probes
                .iter()
                .all(|l| l.contains("state=\"attached\"") && l.ends_with(" 1")),
        "{probes:?}"
    );
    agent.signal(libc::SIGTERM);
    let done = agent.wait(Duration::from_secs(10));
    assert!(done.status.success(), "{}", done.stderr);
}

/// Each capability left out is named; trace and serve alike exit 1 with
/// one line.
#[test]
fn a_missing_capability_is_named() {
    if !privileged("a_missing_capability_is_named") {
        return;
    }
    let lab = Lab::new();
    let cases: [(&[&str], &str); 3] = [
        (&["bpf"], "(missing CAP_PERFMON)"),
        (&["perfmon"], "(missing CAP_BPF)"),
        (&[], "(missing CAP_BPF and CAP_PERFMON)"),
    ];
    for (caps, named) in cases {
        for cmd in [
            vec!["trace", "--iface", &lab.dev_b, "--duration", "1"],
            vec!["serve", "--iface", &lab.dev_b, "--listen", "127.0.0.1:9472"],
        ] {
            let done = lab
                .agent_with_caps(&lab.ns_b, caps, &cmd)
                .wait(Duration::from_secs(10));
            let err = done.stderr.trim();
            assert_eq!(done.status.code(), Some(1), "{cmd:?} with {caps:?}: {err}");
            assert!(err.contains(named), "{cmd:?} with {caps:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    // Classic tracepoints need tracefs, which under `ip netns exec` the
    // agent mounts in a mount namespace of its own: CAP_SYS_ADMIN.
    let done = lab
        .agent_with_caps(
            &lab.ns_b,
            CAPS,
            &[
                "trace",
                "--iface",
                &lab.dev_b,
                "--duration",
                "1",
                "--classic",
            ],
        )
        .wait(Duration::from_secs(10));
    let err = done.stderr.trim();
    assert_eq!(done.status.code(), Some(1), "{err}");
    assert!(err.contains("(needs CAP_SYS_ADMIN)"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
