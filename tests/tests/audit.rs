//! `toe-agent audit` end to end, on veth devices in namespaces created
//! here, and on this machine's own first interface.
use std::{process::Command, time::Duration};

use serde_json::Value;
use toe_agent_tests::{Lab, agent_bin, privileged, scratch};

fn audit_in(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(agent_bin().unwrap())
        .arg("audit")
        .args(args)
        .output()
        .unwrap()
}

fn ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn audit_finds_checksum_off_with_tso_wanted_and_forwarding_bridge_ports() {
    if !privileged("audit_finds_checksum_off_with_tso_wanted_and_forwarding_bridge_ports") {
        return;
    }
    let lab = Lab::new();
    // Receiver side: a forwarding host whose veth is a bridge port.
    lab.exec(&lab.ns_b, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    lab.exec(&lab.ns_b, &["ip", "link", "add", "br0", "type", "bridge"]);
    lab.exec(
        &lab.ns_b,
        &["ip", "link", "set", &lab.dev_b, "master", "br0"],
    );
    // Sender side: TX checksum off while TSO stays requested.
    lab.offloads(&lab.ns_a, &lab.dev_a, &[("tx", false)]);

    let out = audit_in(
        &lab.ns_a,
        &["--iface", &lab.dev_a, "--json", "--sample", "0.3"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schema_version"], 1);
    let found = ids(&report);
    assert!(
        found.contains(&"csum_off_tso_wanted".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"feature_not_active".to_string()),
        "{found:?}"
    );
    let csum = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "csum_off_tso_wanted")
        .unwrap();
    assert_eq!(csum["severity"], 7);
    assert_eq!(csum["fix"], format!("ethtool -K {} tx on", lab.dev_a));
    let iface = &report["snapshot"]["interfaces"][0];
    assert_eq!(iface["driver"]["driver"], "veth");
    assert_eq!(iface["speed_mbps"], 10000);
    assert!(
        iface["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "rx-gro")
    );

    // The receiver: forwarding and a bridge port are seen (LRO itself cannot
    // be turned on on veth; the LRO rule is tested on recorded NIC data).
    let out = audit_in(
        &lab.ns_b,
        &["--iface", &lab.dev_b, "--json", "--sample", "0.3"],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["snapshot"]["interfaces"][0]["master"], "br0");
    assert_eq!(
        report["snapshot"]["host"]["sysctls"]["net.ipv4.ip_forward"],
        "1"
    );

    // Human report: grouped by severity, with the fix.
    let out = audit_in(&lab.ns_a, &["--iface", &lab.dev_a, "--sample", "0.3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\nHIGH\n") && text.contains(&format!("fix: ethtool -K {} tx on", lab.dev_a)),
        "{text}"
    );

    // --fail-on: a high finding fails at "high", not at "critical".
    let out = audit_in(
        &lab.ns_a,
        &[
            "--iface",
            &lab.dev_a,
            "--sample",
            "0.2",
            "--fail-on",
            "high",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("findings at severity 7 or above"));
    let out = audit_in(
        &lab.ns_a,
        &[
            "--iface",
            &lab.dev_a,
            "--sample",
            "0.2",
            "--fail-on",
            "critical",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn audit_diff_shows_what_differs_between_hosts() {
    if !privileged("audit_diff_shows_what_differs_between_hosts") {
        return;
    }
    let lab = Lab::new();
    let (a, b) = (scratch("host-a.json"), scratch("host-b.json"));
    let out = audit_in(
        &lab.ns_a,
        &["--iface", &lab.dev_a, "--json", "--sample", "0.2"],
    );
    std::fs::write(&a, &out.stdout).unwrap();
    lab.offloads(&lab.ns_a, &lab.dev_a, &[("gro", true)]);
    let out = audit_in(
        &lab.ns_a,
        &["--iface", &lab.dev_a, "--json", "--sample", "0.2"],
    );
    std::fs::write(&b, &out.stdout).unwrap();
    let out = Command::new(agent_bin().unwrap())
        .args(["audit", "--diff"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("{} feature rx-gro: off | on", lab.dev_a)),
        "{text}"
    );
    // Three hosts: each against the baseline, then each setting with the
    // hosts where it differs.
    let three = Command::new(agent_bin().unwrap())
        .args(["audit", "--diff"])
        .args([&a, &b, &a, &b])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&three.stdout);
    assert_eq!(three.status.code(), Some(1), "{text}");
    let setting = format!(
        "  {} feature rx-gro: {}, {}",
        lab.dev_a,
        b.display(),
        b.display()
    );
    assert!(
        text.contains(&format!("where each setting differs from {}:", a.display()))
            && text.lines().any(|l| l == setting),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&three.stderr).contains("across 3 hosts"),
        "{}",
        String::from_utf8_lossy(&three.stderr)
    );
    let same = Command::new(agent_bin().unwrap())
        .args(["audit", "--diff"])
        .arg(&a)
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&same.stdout).starts_with("no differences"));
    // A recorded report can be judged again.
    let again = Command::new(agent_bin().unwrap())
        .args(["audit", "--from"])
        .arg(&a)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("findings:"));
}

#[test]
fn audit_bad_input() {
    if !privileged("audit_bad_input") {
        return;
    }
    let lab = Lab::new();
    let out = audit_in(&lab.ns_a, &["--iface", "nosuch0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no interface named 'nosuch0'") && err.contains(&lab.dev_a),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);

    let out = audit_in(&lab.ns_a, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to audit"));

    let bad = scratch("truncated.json");
    std::fs::write(&bad, "{\"schema_version\": 1, \"snapshot\": {").unwrap();
    let out = Command::new(agent_bin().unwrap())
        .args(["audit", "--from"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not JSON"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));

    // The interface vanishes between the two samples.
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns_a])
        .arg(agent_bin().unwrap())
        .args(["audit", "--iface", &lab.dev_a, "--sample", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    lab.exec(&lab.ns_a, &["ip", "link", "del", &lab.dev_a]);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "interface {} disappeared during the audit",
            lab.dev_a
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn audit_of_this_machines_first_interface_and_unreadable_kmsg() {
    if !privileged("audit_of_this_machines_first_interface_and_unreadable_kmsg") {
        return;
    }
    let first = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .min()
        .expect("an interface besides lo");
    let out = Command::new(agent_bin().unwrap())
        .args(["audit", "--iface", &first, "--sample", "0.5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("{first}: device")) && text.contains("findings:"),
        "{text}"
    );
    // As root the kernel answers the IPsec SA dump (xfrm netlink), and
    // the kernel log's lines are dated.
    let out = Command::new(agent_bin().unwrap())
        .args(["audit", "--iface", &first, "--sample", "0.2", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let host = &report["snapshot"]["host"];
    assert!(host["xfrm"]["error"].is_null(), "{}", host["xfrm"]);
    assert!(host["xfrm"]["sas"].is_array(), "{}", host["xfrm"]);
    assert_eq!(host["kmsg"]["window_s"], 86400);
    for e in host["kmsg"]["entries"].as_array().unwrap() {
        assert!(e["age_s"].is_u64() && e["kind"].is_string(), "{e}");
    }

    // As nobody (no CAP_SYSLOG): /dev/kmsg cannot be read; the audit says
    // so and goes on.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(agent_bin().unwrap())
        .args(["audit", "--iface", "lo", "--sample", "0.2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Without CAP_NET_ADMIN the SAs cannot be read: said, not fatal.
    let xfrm = &report["snapshot"]["host"]["xfrm"];
    assert!(
        xfrm["error"]
            .as_str()
            .unwrap()
            .contains("Operation not permitted"),
        "{xfrm}"
    );
    assert!(ids(&report).contains(&"xfrm_unreadable".to_string()));
    if std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").is_ok_and(|v| v.trim() == "1") {
        assert!(
            report["snapshot"]["host"]["kmsg"]["error"]
                .as_str()
                .unwrap()
                .contains("/dev/kmsg")
        );
        assert!(ids(&report).contains(&"kernel_log_unreadable".to_string()));
    }
}
