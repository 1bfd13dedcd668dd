//! `toe-agent lab` and the verdicts end to end: the whole matrix, on veth and
//! on the emulated NIC, checked against the table below (what veth on these
//! kernels does, docs/kernel-notes.md "veth as a lab", and what the drivers
//! each emulated row imitates hand the stack, docs/lab.md), and `trace`
//! giving the same verdicts live.
use std::{process::Command, time::Duration};

use serde_json::Value;
use toe_agent_tests::{Lab, agent_bin, privileged, read_ndjson, scratch, wait_for_lines};

/// (offload, mechanism, mismatch)
type Row = (&'static str, &'static str, bool);

/// (config, its five verdicts) for the whole matrix.
const EXPECTED: &[(&str, [Row; 5])] = &[
    (
        "all-on",
        [
            ("tx_segmentation", "deferred", false),
            ("tx_checksum", "deferred", false),
            ("rx_coalescing", "deferred", false),
            ("rx_checksum", "deferred", false),
            ("rss", "off", false),
        ],
    ),
    (
        "gro-no-tso",
        [
            ("tx_segmentation", "software", false),
            ("tx_checksum", "deferred", false),
            ("rx_coalescing", "software", false),
            ("rx_checksum", "deferred", false),
            ("rss", "off", false),
        ],
    ),
    (
        "no-tso-gso",
        [
            // GSO off, yet TCP skbs are still segmented by the kernel.
            ("tx_segmentation", "software", true),
            ("tx_checksum", "deferred", false),
            ("rx_coalescing", "off", false),
            ("rx_checksum", "deferred", false),
            ("rss", "off", false),
        ],
    ),
    (
        "no-txcsum-gro",
        [
            ("tx_segmentation", "software", false),
            ("tx_checksum", "software", false),
            ("rx_coalescing", "software", false),
            // rx-checksum is on, but the CPU verifies every packet.
            ("rx_checksum", "software", true),
            ("rss", "off", false),
        ],
    ),
    (
        "no-txcsum",
        [
            ("tx_segmentation", "software", false),
            ("tx_checksum", "software", false),
            ("rx_coalescing", "off", false),
            ("rx_checksum", "software", true),
            ("rss", "off", false),
        ],
    ),
    (
        "rx-gro-off",
        [
            ("tx_segmentation", "deferred", false),
            ("tx_checksum", "deferred", false),
            ("rx_coalescing", "deferred", false),
            ("rx_checksum", "deferred", false),
            ("rss", "off", false),
        ],
    ),
    (
        "all-off",
        [
            ("tx_segmentation", "software", true),
            ("tx_checksum", "software", false),
            ("rx_coalescing", "off", false),
            ("rx_checksum", "software", false),
            ("rss", "off", false),
        ],
    ),
    // The emulated NIC, judged as a physical device.
    (
        "loss",
        [
            ("tx_segmentation", "deferred", false),
            ("tx_checksum", "deferred", false),
            ("rx_coalescing", "deferred", false),
            ("rx_checksum", "deferred", false),
            ("rss", "off", false),
        ],
    ),
    (
        "slow-reader",
        [
            ("tx_segmentation", "deferred", false),
            ("tx_checksum", "deferred", false),
            ("rx_coalescing", "deferred", false),
            ("rx_checksum", "deferred", false),
            ("rss", "off", false),
        ],
    ),
    (
        "nic-no-offload",
        [
            ("tx_segmentation", "software", false),
            ("tx_checksum", "software", false),
            ("rx_coalescing", "software", false),
            ("rx_checksum", "software", false),
            ("rss", "off", false),
        ],
    ),
    (
        "nic-tso-csum",
        [
            ("tx_segmentation", "hardware", false),
            ("tx_checksum", "hardware", false),
            ("rx_coalescing", "software", false),
            // Declared on, handed up CHECKSUM_NONE: e1000e under QEMU.
            ("rx_checksum", "software", true),
            ("rss", "off", false),
        ],
    ),
    (
        "nic-lro",
        [
            ("tx_segmentation", "hardware", false),
            ("tx_checksum", "hardware", false),
            ("rx_coalescing", "hardware", false),
            ("rx_checksum", "software", false),
            ("rss", "off", false),
        ],
    ),
    (
        "nic-hw-gro",
        [
            ("tx_segmentation", "hardware", false),
            ("tx_checksum", "hardware", false),
            ("rx_coalescing", "hardware", false),
            ("rx_checksum", "hardware", false),
            ("rss", "off", false),
        ],
    ),
    (
        "nic-lro-no-gso",
        [
            ("tx_segmentation", "hardware", false),
            ("tx_checksum", "hardware", false),
            // Coalesced although the NIC declares LRO and HW-GRO off.
            ("rx_coalescing", "hardware", true),
            ("rx_checksum", "software", false),
            ("rss", "off", false),
        ],
    ),
    ("nic-rss-2", NIC_RSS),
    ("nic-rss-4", NIC_RSS),
    ("nic-rss-32", NIC_RSS),
];

const NIC_RSS: [Row; 5] = [
    ("tx_segmentation", "hardware", false),
    ("tx_checksum", "hardware", false),
    ("rx_coalescing", "hardware", false),
    ("rx_checksum", "hardware", false),
    ("rss", "hardware", false),
];

/// What `ip ARGS` prints.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("running ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(agent_bin().unwrap())
        .arg("lab")
        .args(args)
        .output()
        .expect("running toe-agent lab")
}

#[test]
fn lab_matrix_gives_the_expected_verdicts() {
    if !privileged("lab_matrix_gives_the_expected_verdicts") {
        return;
    }
    let out = lab(&["--json", "--duration", "1.5"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("lab --json: {e}; stderr: {stderr}"));
    let configs = report["configs"].as_array().unwrap();
    assert_eq!(configs.len(), EXPECTED.len());
    let mut wrong = Vec::new();
    // (offload, mechanism) pairs the emulated rows produced.
    let mut nic_seen = std::collections::BTreeSet::new();
    for ((name, table), got) in EXPECTED.iter().zip(configs) {
        assert_eq!(got["name"], *name);
        assert!(got["throughput_gbps"].as_f64().unwrap() > 0.1, "{got}");
        let emulated = name.starts_with("nic-");
        assert_eq!(
            got["link"],
            if emulated { "emulated_nic" } else { "veth" },
            "{name}"
        );
        assert_eq!(
            got["device_class"],
            if emulated { "physical" } else { "virtual" },
            "{name}"
        );
        let tcp = &got["tcp"];
        match *name {
            // The rule's drops are the stack's NETFILTER_DROP (the count
            // after the agents' last reading, the teardown's, may differ
            // by a packet or two), and TCP retransmitted them.
            "loss" => {
                let rule = tcp["nft_dropped"].as_u64().unwrap();
                let seen = tcp["receiver_drops"]["by_reason"]["NETFILTER_DROP"]
                    .as_u64()
                    .unwrap_or(0);
                assert!(rule > 50 && rule.abs_diff(seen) <= 3, "{tcp}");
                assert!(tcp["retransmits"].as_u64().unwrap() >= seen / 2, "{tcp}");
            }
            // The reader's pace: 20 MB/s is 0.16 Gbit/s.
            "slow-reader" => {
                assert!(got["throughput_gbps"].as_f64().unwrap() < 0.25, "{got}");
            }
            _ => assert!(tcp["nft_dropped"].is_null(), "{name}: {tcp}"),
        }
        if emulated {
            // The silicon carried the transfer, and said how fast.
            let silicon = &got["silicon"];
            assert!(silicon["frames_per_s"].as_f64().unwrap() > 1000.0, "{got}");
            assert_eq!(silicon["dropped"], 0, "{name}: {silicon}");
        }
        for ((offload, mechanism, mismatch), v) in
            table.iter().zip(got["verdicts"].as_array().unwrap())
        {
            assert_eq!(v["offload"], *offload);
            assert!(!v["evidence"].as_str().unwrap().is_empty());
            // Every expectation names the code that makes it so.
            assert!(
                v["expected"]["because"].as_str().unwrap().contains("()"),
                "{name}/{offload}: {}",
                v["expected"]["because"]
            );
            if emulated {
                nic_seen.insert((*offload, v["mechanism"].as_str().unwrap().to_string()));
                for word in ["virtual", "deferred", "never checksummed"] {
                    assert!(
                        !v["evidence"].as_str().unwrap().contains(word),
                        "{name}/{offload}: {}",
                        v["evidence"]
                    );
                }
            }
            if v["mechanism"] != *mechanism || v["mismatch"] != *mismatch {
                wrong.push(format!("{name}/{offload}: got {} mismatch {} ({}), want {mechanism} mismatch {mismatch}", v["mechanism"], v["mismatch"], v["evidence"]));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // On a physical-class device, every hardware branch ran end to end,
    // and so did its software (or off) counterpart.
    for (offload, mechanisms) in [
        ("tx_segmentation", &["hardware", "software"][..]),
        ("tx_checksum", &["hardware", "software"]),
        ("rx_checksum", &["hardware", "software"]),
        ("rx_coalescing", &["hardware", "software"]),
        ("rss", &["hardware", "off"]),
    ] {
        for m in mechanisms {
            assert!(
                nic_seen.contains(&(offload, m.to_string())),
                "no emulated row gave {offload} {m}: {nic_seen:?}"
            );
        }
    }
    assert_eq!(report["as_expected"], true);
    assert!(out.status.success(), "{stderr}");
    // Nothing left behind.
    let left = ip(&["netns", "list"]);
    assert!(!left.contains("toe-lab"), "{left}");
}

#[test]
fn lab_table_names_configurations_and_evidence() {
    if !privileged("lab_table_names_configurations_and_evidence") {
        return;
    }
    let out = lab(&["--config", "no-txcsum", "--duration", "1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("no-txcsum (veth, sender TX checksum off, receiver GRO off)"),
        "{text}"
    );
    assert!(
        text.contains("checksums verified by the CPU although rx-checksum is on"),
        "{text}"
    );
    assert!(text.contains("MISMATCH"), "{text}");
    assert!(text.contains("every verdict as expected"), "{text}");
}

#[test]
fn lab_refuses_bad_input_and_taken_names() {
    if !privileged("lab_refuses_bad_input_and_taken_names") {
        return;
    }
    let out = lab(&["--config", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no lab configuration 'nope'; there are: all-on, gro-no-tso"),
        "{err}"
    );

    let list = lab(&["--list"]);
    assert!(String::from_utf8_lossy(&list.stdout).lines().count() >= 15);

    Command::new("ip")
        .args(["netns", "add", "toe-lab-rx"])
        .status()
        .unwrap();
    let out = lab(&["--config", "all-on"]);
    Command::new("ip")
        .args(["netns", "del", "toe-lab-rx"])
        .status()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("network namespace toe-lab-rx already exists"),
        "{err}"
    );

    // Not root: refused before anything is created.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(agent_bin().unwrap())
        .args(["lab", "--config", "all-on"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("must run as root"), "{err}");
}

/// Interrupted while the emulated NIC carries traffic over 32 queues: the
/// silicon stops, its taps vanish with it, and so do the namespaces.
#[test]
fn lab_cleans_up_the_emulated_nic_on_sigterm() {
    if !privileged("lab_cleans_up_the_emulated_nic_on_sigterm") {
        return;
    }
    let child = Command::new(agent_bin().unwrap())
        .args(["lab", "--config", "nic-rss-32", "--duration", "10"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let tap_up = || {
        Command::new("ip")
            .args(["-n", "toe-lab-rx", "link", "show", "lab-rx"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    while !tap_up() {
        assert!(std::time::Instant::now() < deadline, "lab did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(2000));
    let started = std::time::Instant::now();
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted; the lab's namespaces were removed"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{err}");
    assert!(!std::path::Path::new("/run/netns/toe-lab-rx").exists());
    assert!(!std::path::Path::new("/run/netns/toe-lab-tx").exists());
    let links = ip(&["link", "show"]);
    assert!(
        !links.contains("lab-rx") && !links.contains("lab-tx"),
        "{links}"
    );
}

#[test]
fn lab_cleans_up_on_sigint() {
    if !privileged("lab_cleans_up_on_sigint") {
        return;
    }
    let child = Command::new(agent_bin().unwrap())
        .args(["lab", "--duration", "5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the lab is mid-transfer (its namespaces exist), then Ctrl-C.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::path::Path::new("/run/netns/toe-lab-rx").exists() {
        assert!(std::time::Instant::now() < deadline, "lab did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted; the lab's namespaces were removed"),
        "{err}"
    );
    assert!(!std::path::Path::new("/run/netns/toe-lab-rx").exists());
    assert!(!std::path::Path::new("/run/netns/toe-lab-tx").exists());
}

/// `trace` judges live what the lab judges: software GSO on the sender,
/// software GRO on the receiver, in interval and summary records.
#[test]
fn trace_reports_verdicts_live() {
    if !privileged("trace_reports_verdicts_live") {
        return;
    }
    let lab = Lab::new();
    lab.offloads(&lab.ns_a, &lab.dev_a, &[("tso", false)]);
    lab.offloads(&lab.ns_b, &lab.dev_b, &[("gro", true), ("rx", true)]);
    let (tx_nd, rx_nd) = (scratch("verdict-tx.ndjson"), scratch("verdict-rx.ndjson"));
    let sender = lab.trace(&lab.ns_a, &lab.dev_a, "0.5", &tx_nd, &[]);
    let receiver = lab.trace(&lab.ns_b, &lab.dev_b, "0.5", &rx_nd, &[]);
    wait_for_lines(&tx_nd, 1, Duration::from_secs(20));
    wait_for_lines(&rx_nd, 1, Duration::from_secs(20));
    lab.iperf(2);
    sender.signal(libc::SIGTERM);
    receiver.signal(libc::SIGTERM);
    let (s, r) = (
        sender.wait(Duration::from_secs(20)),
        receiver.wait(Duration::from_secs(20)),
    );
    assert!(
        s.status.success() && r.status.success(),
        "{} {}",
        s.stderr,
        r.stderr
    );

    let verdict = |records: &[Value], offload: &str| -> Value {
        let summary = records.last().unwrap();
        assert_eq!(summary["type"], "summary");
        summary["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["offload"] == offload)
            .unwrap()
            .clone()
    };
    let tx = read_ndjson(&tx_nd);
    let rx = read_ndjson(&rx_nd);
    let seg = verdict(&tx, "tx_segmentation");
    assert_eq!(seg["mechanism"], "software", "{seg}");
    assert_eq!(seg["mismatch"], false);
    assert_eq!(seg["configured"]["feature"], "tx-tcp-segmentation");
    assert_eq!(seg["configured"]["active"], false);
    assert!(
        seg["evidence"]
            .as_str()
            .unwrap()
            .contains("segmentation done in software (GSO)")
    );
    let coal = verdict(&rx, "rx_coalescing");
    assert_eq!(coal["mechanism"], "software", "{coal}");
    assert_eq!(verdict(&rx, "rx_checksum")["mechanism"], "deferred");
    // The busiest interval says the same as the summary.
    let busiest = rx
        .iter()
        .filter(|r| r["type"] == "interval")
        .max_by_key(|r| r["rx"]["segments"].as_u64().unwrap())
        .unwrap();
    let live = busiest["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["offload"] == "rx_coalescing")
        .unwrap();
    assert_eq!(live["mechanism"], "software");
    // The text view carries a line per offload.
    assert!(
        r.stdout.contains("rx_coalescing    software"),
        "{}",
        r.stdout
    );
    assert!(
        s.stdout.contains("tx_segmentation  software"),
        "{}",
        s.stdout
    );
}

#[test]
fn bench_measures_and_writes_its_figures() {
    if !privileged("bench_measures_and_writes_its_figures") {
        return;
    }
    let out_path = toe_agent_tests::scratch("overhead.json");
    let out = Command::new(agent_bin().unwrap())
        .args(["bench", "--pairs", "1", "--duration", "1", "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    let series: Vec<(&str, &str)> = r["throughput"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(t["median_ratio"].as_f64().unwrap() > 0.5, "{t}");
            (t["config"].as_str().unwrap(), t["probes"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        series,
        [
            ("gro-no-tso", "agent"),
            ("gro-no-tso", "agent-whole"),
            ("gro-no-tso", "agent-per-skb"),
            ("gro-no-tso", "empty"),
            ("gro-no-tso", "empty-per-skb"),
            ("all-on", "agent"),
        ]
    );
    // The floor's empty programs are gone with the bench.
    let left: Vec<String> = toe_agent_tests::loaded_programs()
        .into_iter()
        .filter(|n| n.starts_with("baseline_"))
        .collect();
    assert!(left.is_empty(), "still loaded: {left:?}");
    let programs = r["programs"].as_array().unwrap();
    let napi = programs
        .iter()
        .find(|p| p["name"] == "napi_gro_receive_entry")
        .expect("per-segment program measured");
    assert!(
        napi["runs"].as_u64().unwrap() > 10_000 && napi["ns_per_run"].as_f64().unwrap() > 0.0,
        "{napi}"
    );
    assert!(napi["per_segment"].as_bool().unwrap(), "{napi}");
    // An skb-level program's own work is its cost above the empty one's.
    let after_gro = programs
        .iter()
        .find(|p| p["name"] == "netif_receive_skb")
        .expect("per-skb program measured");
    let (ns, above) = (
        after_gro["ns_per_run"].as_f64().unwrap(),
        after_gro["ns_above_empty"].as_f64().unwrap(),
    );
    let floor = r["empty_program_ns_per_run"].as_f64().unwrap();
    assert!((ns - floor - above).abs() < 0.01, "{after_gro} {floor}");
    // The building blocks, each measured alone.
    let blocks = r["building_blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3, "{blocks:?}");
    for b in blocks {
        assert!(b["ns_per_run"].as_f64().unwrap() > 0.0, "{b}");
    }
    // Every lab configuration judged sampled and whole.
    let verdicts = r["verdicts"].as_array().unwrap();
    assert!(verdicts.len() >= 17, "{verdicts:?}");
    for v in verdicts {
        assert_eq!(v["sampled"].as_array().unwrap().len(), 5, "{v}");
    }
    assert!(r["startup_ms"].as_f64().unwrap() > 0.0);
    let targets: Vec<&str> = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in [
        "per-skb programs above empty",
        "the same, all offloads on",
        "verdicts sampled = whole",
    ] {
        assert!(targets.contains(&name), "{targets:?}");
    }
    assert_eq!(targets.len(), 10, "{targets:?}");
    assert!(
        text.contains("targets:") && text.contains("ns per program run"),
        "{text}"
    );
}
