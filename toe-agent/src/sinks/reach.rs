//! Every quantity of the catalogue reaches every sink: NDJSON (its path),
//! Prometheus (its family and labels), the view and `report --compare`
//! (its path or title), the plots (each distribution) and the table in
//! docs/metrics.md. A quantity added to a family shows up everywhere, or
//! this fails.
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use toe_agent_common::{Hist, NapiIdStats, SoftirqStats, hist::bucket_index};

use crate::{
    kernel::{collect::Totals, overhead::Overhead},
    model::{
        catalogue::{self, Value},
        period::Blocks,
        verdict::{self, Coverage},
    },
    sinks::{prometheus, recording, view},
};

fn hist(v: u64) -> Hist {
    let mut h = Hist::ZERO;
    h.buckets[bucket_index(v)] = 3;
    h.sum = 3 * v;
    h
}

/// A period in which every counter, every split and every histogram has
/// something.
pub(crate) fn everything() -> Blocks {
    let mut t = Totals::default();
    let (handoff, skb, tx) = (&mut t.handoff, &mut t.skb, &mut t.tx);
    for h in [
        &mut handoff.segment_len,
        &mut handoff.handoff_gso_size,
        &mut skb.skb_len,
        &mut skb.segs_per_skb,
        &mut tx.queued_len,
        &mut tx.segs_per_queued,
        &mut tx.xmit_len,
        &mut tx.segs_per_xmit,
        &mut tx.xmit_gso_size,
        &mut t.napi.work,
        &mut t.napi.poll_ns,
        &mut t.gro.hold_ns,
        &mut t.tcp_probe.srtt_us,
        &mut t.tcp_probe.cwnd,
    ] {
        *h = hist(1448);
    }
    for c in [
        &mut handoff.segment_csum[..],
        &mut skb.skb_csum,
        &mut handoff.handoff_by_hook,
        &mut tx.queued_csum,
        &mut tx.xmit_csum,
        &mut tx.queued_gso,
        &mut tx.xmit_gso,
        &mut handoff.queue[..3],
        &mut skb.skb_queue[..3],
        &mut tx.queue[..3],
    ] {
        c.iter_mut().for_each(|n| *n = 7);
    }
    t.tcp.bad_csum = 1;
    t.drops.by_reason[12] = 4;
    t.retransmit.skbs = 2;
    t.retransmit.segments = 3;
    handoff.nontcp_handoff_large = 1;
    skb.nontcp_skbs = 2;
    skb.nontcp_skb_segs = 2;
    skb.ip_fragments = 1;
    t.napi.budget_exhausted = 1;
    t.napi_by_id.insert(
        8193,
        NapiIdStats {
            polls: 3,
            work: 9,
            budget_exhausted: 1,
            budget: 64,
        },
    );
    let mut cpu = SoftirqStats::zero();
    cpu.time_ns = [1_000_000, 2_000_000];
    cpu.count = [10, 20];
    cpu.duration = [hist(5_000), hist(9_000)];
    cpu.raise_latency = [hist(700), hist(900)];
    t.softirq = vec![cpu, cpu];
    Blocks::from_totals(&t)
}

use crate::kernel::collect::Counters as _;

/// The value at a dotted path of a JSON object.
fn at<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

#[test]
fn every_quantity_is_in_the_ndjson_record() {
    let json = serde_json::to_value(everything()).unwrap();
    for q in crate::probes::quantities() {
        let v = at(&json, q.path).unwrap_or_else(|| panic!("{} not in {json}", q.path));
        assert!(!v.is_null(), "{}", q.path);
    }
}

#[test]
fn every_quantity_is_exported_to_prometheus() {
    let exposed = prometheus::Exposed {
        ifaces: BTreeMap::from([(
            "eth0".to_string(),
            prometheus::ExposedIface {
                up: true,
                run: everything(),
                coverage: Coverage::default(),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    let text =
        prometheus::openmetrics(&prometheus::Metrics(Arc::new(Mutex::new(exposed)))).unwrap();
    for q in crate::probes::quantities() {
        let suffix = if q.is_histogram() {
            "_bucket"
        } else {
            "_total"
        };
        let series = format!("{}{suffix}{{", q.metric);
        let found = text.lines().any(|l| {
            l.starts_with(&series)
                && q.labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
                && match q.value {
                    Value::Split { key, .. } => l.contains(&format!("{key}=\"")),
                    _ => true,
                }
        });
        assert!(found, "{} ({}) missing from:\n{text}", q.metric, q.path);
    }
    for f in catalogue::OTHER_FAMILIES {
        // The device, the verdicts and the BPF run figures need more state
        // than this test gives; their encoders are tested in prometheus.rs.
        if [
            "toe_build_info",
            "toe_iface_up",
            "toe_agent_cpu_seconds",
            "toe_agent_resident_memory_bytes",
            "toe_bpf_program_missed_runs",
        ]
        .contains(&f.metric)
        {
            assert!(
                text.contains(&format!("# TYPE {} ", f.metric)),
                "{}",
                f.metric
            );
        }
    }
}

#[test]
fn every_quantity_is_in_the_view() {
    let blocks = everything();
    let ctx = view::Context {
        iface: "eth0",
        ifindex: 2,
        driver: "virtio_net",
        class: None,
        mtu: 1500,
        probes: &[],
    };
    let period = view::Period {
        blocks: &blocks,
        verdicts: &verdict::judge(&blocks, &verdict::Device::default()),
        checks: &[],
        overhead: &Overhead::default(),
        secs: 1.0,
        summary: true,
        nic: None,
    };
    let text = view::render(&ctx, "test", &period, false);
    for q in crate::probes::quantities() {
        let shown = match q.value {
            Value::Hist(_) => format!("{} ({})", q.title, q.unit.name()),
            _ => format!("  {} ", q.path),
        };
        assert!(text.contains(&shown), "{shown:?} missing from:\n{text}");
    }
}

const RECORDED: &str = include_str!("../../fixtures/ndjson/gro_tso_off.ndjson");

fn recorded_with_everything() -> recording::Run {
    let mut run = recording::read_run(RECORDED.as_bytes(), "test.ndjson").unwrap();
    run.summary.blocks = everything();
    run
}

#[test]
fn every_quantity_is_compared() {
    let (a, b) = (recorded_with_everything(), recorded_with_everything());
    let text = crate::cmd::report::render_compare(&a, &b, ("a", "b"));
    for q in crate::probes::quantities() {
        let row = match q.value {
            Value::Count(_) => format!("{}/s ", q.path),
            Value::Split { key, .. } => format!("{} {key}=", q.path),
            Value::Hist(_) => format!("{} p99 ", q.path),
        };
        assert!(text.contains(&row), "{row:?} missing from:\n{text}");
    }
}

#[test]
fn every_distribution_is_plotted() {
    let run = recorded_with_everything();
    let dir = std::env::temp_dir().join(format!("toe-reach-{}", std::process::id()));
    crate::sinks::plot::write_all(&dir, &[("run", &run)]).unwrap();
    for q in crate::probes::quantities().filter(|q| q.is_histogram()) {
        let file = dir.join(format!("{}.svg", q.path.replace('.', "_")));
        assert!(file.exists(), "{} not drawn", file.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

use crate::model::catalogue::{Needs, Scope};

/// The catalogue as a Markdown table: the docs are a sink too.
fn markdown() -> String {
    let mut o = String::from(
        "| NDJSON path | Prometheus family | kind | labels | unit | needs | meaning |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for q in crate::probes::quantities() {
        let mut labels: Vec<String> = Vec::new();
        if q.scope == Scope::Device {
            labels.push("iface".into());
        }
        labels.extend(q.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")));
        if let Value::Split { key, .. } = q.value {
            labels.push(key.into());
        }
        let kind = if q.is_histogram() {
            "histogram"
        } else {
            "counter"
        };
        let needs = match q.needs {
            Needs::Always => "",
            Needs::Handoff => "hand-off",
            Needs::DriverXmit => "net_dev_start_xmit",
        };
        o += &format!(
            "| `{}` | `{}` | {kind} | {} | {} | {needs} | {} |\n",
            q.path,
            q.metric,
            labels.join(", "),
            q.unit.name(),
            q.help
        );
    }
    for f in catalogue::OTHER_FAMILIES {
        o += &format!(
            "| | `{}` | {} | {} | | | {} |\n",
            f.metric,
            if f.counter { "counter" } else { "gauge" },
            f.labels,
            f.help
        );
    }
    o
}

/// docs/metrics.md carries the catalogue's table between two markers. Run
/// with `TOE_UPDATE_DOCS=1` to rewrite it after changing the catalogue.
#[test]
fn the_docs_table_is_the_catalogue() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let (begin, end) = ("<!-- catalogue:begin -->\n", "<!-- catalogue:end -->");
    let (Some(i), Some(j)) = (doc.find(begin), doc.find(end)) else {
        panic!("docs/metrics.md lacks the {begin:?} ... {end:?} markers");
    };
    let table = markdown();
    let current = &doc[i + begin.len()..j];
    if std::env::var_os("TOE_UPDATE_DOCS").is_some() {
        let updated = format!("{}{begin}{table}{}", &doc[..i], &doc[j..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        current, table,
        "docs/metrics.md is not the catalogue: run `TOE_UPDATE_DOCS=1 cargo test -p toe-agent the_docs_table`"
    );
}

/// The NDJSON period record of [`everything`], as docs/ndjson.md describes
/// it: the period model's shape is the file format, so a change to it
/// fails here until it is meant (rewrite with `TOE_UPDATE_DOCS=1`).
const PINNED: &str = "src/sinks/testdata/period.json";

#[test]
fn the_period_record_keeps_its_shape() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PINNED);
    let json = serde_json::to_value(everything()).unwrap();
    if std::env::var_os("TOE_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
    }
    let pinned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json, pinned, "the period record changed: {PINNED}");
    // And a record of that shape reads back whole.
    let back: Blocks = serde_json::from_value(pinned).unwrap();
    assert_eq!(back, everything());
}
