//! `toe-agent report` as a user runs it: on recorded files, on a file the
//! agent just wrote, and on damaged ones.
use std::process::Command;

use toe_agent_tests::{Lab, agent_bin, has_agent, privileged, scratch, wait_for_lines};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../toe-agent/fixtures/ndjson");

fn report(args: &[&str]) -> std::process::Output {
    Command::new(agent_bin().unwrap())
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn report_compares_and_draws() {
    // Files in, text and SVG out: no root needed.
    if !has_agent("report_compares_and_draws") {
        return;
    }
    let (a, b) = (
        format!("{FIXTURES}/gro_tso_off.ndjson"),
        format!("{FIXTURES}/gro_tso_on.ndjson"),
    );
    let dir = scratch("svg");
    let out = report(&["--compare", &a, &b, "--svg", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("verdicts (before -> after):") && text.contains("changed"),
        "{text}"
    );
    // The 11 distributions with events in these runs (one per catalogue
    // histogram) and 4 time series.
    assert!(text.contains("wrote 15 SVG files"), "{text}");
    for f in [
        "rx_segment_len.svg",
        "softirq_net_rx_duration_ns.svg",
        "series_softirq_pct.svg",
        "series_segs_per_skb.svg",
    ] {
        let svg = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(svg.starts_with("<svg"), "{f}");
    }
}

#[test]
fn report_reads_what_trace_wrote_and_refuses_damage() {
    if !privileged("report_reads_what_trace_wrote_and_refuses_damage") {
        return;
    }
    let lab = Lab::new();
    let nd = scratch("for-report.ndjson");
    let agent = lab.trace(&lab.ns_b, &lab.dev_b, "0.5", &nd, &[]);
    wait_for_lines(&nd, 1, std::time::Duration::from_secs(20));
    lab.iperf(1);
    agent.signal(libc::SIGINT);
    assert!(
        agent
            .wait(std::time::Duration::from_secs(20))
            .status
            .success()
    );
    let out = report(&[nd.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ended by signal") && text.contains("tx_segmentation"),
        "{text}"
    );

    // Truncated in the middle of the summary line.
    let full = std::fs::read_to_string(&nd).unwrap();
    let cut = scratch("cut.ndjson");
    std::fs::write(&cut, &full[..full.len() - 30]).unwrap();
    let out = report(&[cut.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    let last = full.lines().count();
    assert!(
        err.contains(&format!("line {last}: truncated record")),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = report(&["/nonexistent.ndjson"]);
    assert_eq!(out.status.code(), Some(2));
}
