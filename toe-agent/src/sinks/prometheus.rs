//! The `/metrics` exposition (prometheus-client's `Collector`). Every
//! quantity of the period model is encoded by iterating the catalogue over
//! each interface's run total, the same [`Blocks`] an NDJSON summary
//! holds; the families that are not quantities (verdicts, the device, the
//! agent's cost) are declared in the catalogue too. Names and meanings:
//! docs/metrics.md.
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use crate::kernel::attach::ProbeStatus;
use crate::model::nic::Reconciled;
use crate::model::{
    catalogue::{self, MetricFamily, Quantity, Scope, Value},
    class::DeviceClass,
    period::Blocks,
    summary::HistSummary,
    verdict::{Coverage, Verdict},
};
use crate::sys::ethtool::{Feature, OFFLOAD_FEATURES};

/// What one traced interface exposes.
#[derive(Debug, Default)]
pub(crate) struct ExposedIface {
    pub(crate) up: bool,
    /// Everything measured since the agent started, across re-attachments.
    pub(crate) run: Blocks,
    /// What the probes attached last could see.
    pub(crate) coverage: Coverage,
    /// Software fallbacks by offload, cumulative.
    pub(crate) fallbacks: BTreeMap<&'static str, u64>,
    pub(crate) verdicts: Vec<Verdict>,
    /// Driver and device class of the device last attached.
    pub(crate) device: Option<(String, DeviceClass)>,
    /// How each probe of the last attachment is attached.
    pub(crate) probes: Vec<ProbeStatus>,
    /// The driver's figures against the probes', newest period.
    pub(crate) nic: Vec<Reconciled>,
    /// The device's features at the newest reading.
    pub(crate) features: Vec<Feature>,
}

/// The agent's own cost.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AgentCost {
    pub(crate) cpu_ns: u64,
    pub(crate) rss: u64,
    pub(crate) bpf_runs: u64,
    pub(crate) bpf_run_ns: u64,
    pub(crate) bpf_missed: u64,
    /// BPF statistics are on: runs and run time are known.
    pub(crate) self_stats: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Exposed {
    pub(crate) kernel: String,
    /// The host's offload-related sysctls (sys::host::SYSCTLS), by name.
    pub(crate) sysctls: Vec<(String, String)>,
    pub(crate) ifaces: BTreeMap<String, ExposedIface>,
    pub(crate) agent: AgentCost,
}

#[derive(Debug, Clone)]
pub(crate) struct Metrics(pub(crate) Arc<Mutex<Exposed>>);

/// Labels as prometheus-client wants them.
type Labels = Vec<(&'static str, String)>;

/// One metric family of constant values: a counter (`ConstCounter`) or a
/// gauge (`ConstGauge`), whatever the value type.
fn family<M: EncodeMetric, V: Copy>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: &[(Labels, V)],
    metric: impl Fn(V) -> M,
) -> std::fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in series {
        metric(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A counter family declared in the catalogue.
fn counters<V: Copy>(
    enc: &mut DescriptorEncoder,
    f: &MetricFamily,
    series: &[(Labels, V)],
) -> std::fmt::Result
where
    ConstCounter<V>: EncodeMetric,
{
    debug_assert!(f.counter, "{} is declared a gauge", f.metric);
    let kind = MetricType::Counter;
    family(enc, f.metric, f.help, kind, series, ConstCounter::new)
}

/// A gauge family declared in the catalogue.
fn gauges<V: Copy>(
    enc: &mut DescriptorEncoder,
    f: &MetricFamily,
    series: &[(Labels, V)],
) -> std::fmt::Result
where
    ConstGauge<V>: EncodeMetric,
{
    debug_assert!(!f.counter, "{} is declared a counter", f.metric);
    family(
        enc,
        f.metric,
        f.help,
        MetricType::Gauge,
        series,
        ConstGauge::new,
    )
}

/// The kernel's log-linear buckets merged to powers of two (a log-linear
/// bucket never straddles one, so the merge is exact), plus +Inf.
fn pow2_buckets(h: &HistSummary, scale: f64) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = (0..=32)
        .map(|p| (((1u64 << p) as f64 - 1.0).max(0.0) * scale, 0))
        .collect();
    for &(upper, c) in &h.buckets {
        let p = (64 - upper.leading_zeros()).min(32) as usize;
        out[p].1 += c;
    }
    out.push((f64::INFINITY, 0));
    out
}

/// An interface whose series are exposed: its name and state.
type Up<'a> = (&'a String, &'a ExposedIface);

/// The series of one catalogue family (entries sharing a metric name):
/// for each interface up, or once for the host, and each entry.
fn quantity_family(
    enc: &mut DescriptorEncoder,
    entries: &[&Quantity],
    up: &[Up],
) -> std::fmt::Result {
    let Some(first) = entries.first() else {
        return Ok(());
    };
    let scale = first.unit.prometheus_scale();
    // Host-wide quantities are the same for every interface's probes: the
    // first interface up speaks for the host.
    let sources: Vec<(Labels, &ExposedIface)> = match first.scope {
        Scope::Device => up
            .iter()
            .map(|(n, i)| (vec![("iface", n.to_string())], *i))
            .collect(),
        Scope::Host => up.first().map(|(_, i)| (vec![], *i)).into_iter().collect(),
    };
    let mut counts: Vec<(Labels, f64)> = Vec::new();
    let mut hists: Vec<(Labels, &HistSummary)> = Vec::new();
    for (base, iface) in &sources {
        for q in entries.iter().filter(|q| q.measured(iface.coverage)) {
            let mut labels = base.clone();
            labels.extend(q.labels.iter().map(|(k, v)| (*k, v.to_string())));
            match q.value {
                Value::Count(of) => counts.push((labels, of(&iface.run) as f64 * scale)),
                Value::Split { key, of } => {
                    for (k, v) in of(&iface.run) {
                        let mut l = labels.clone();
                        l.push((key, k));
                        counts.push((l, v as f64 * scale));
                    }
                }
                Value::Hist(of) => hists.push((labels, of(&iface.run))),
            }
        }
    }
    if first.is_histogram() {
        if hists.is_empty() {
            return Ok(());
        }
        let mut m = enc.encode_descriptor(first.metric, first.help, None, MetricType::Histogram)?;
        for (labels, h) in hists {
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                h.sum as f64 * scale,
                h.count,
                &pow2_buckets(h, scale),
                None,
            )?;
        }
        return Ok(());
    }
    // Integer counts stay integers in the exposition; scaled ones (seconds)
    // are floating point.
    if scale == 1.0 {
        let ints: Vec<(Labels, u64)> = counts.into_iter().map(|(l, v)| (l, v as u64)).collect();
        family(
            enc,
            first.metric,
            first.help,
            MetricType::Counter,
            &ints,
            ConstCounter::new,
        )
    } else {
        family(
            enc,
            first.metric,
            first.help,
            MetricType::Counter,
            &counts,
            ConstCounter::new,
        )
    }
}

/// Every catalogue quantity, family by family in catalogue order.
fn quantities(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let mut order: Vec<&'static str> = Vec::new();
    let mut groups: BTreeMap<&'static str, Vec<&Quantity>> = BTreeMap::new();
    for q in crate::probes::quantities() {
        if !groups.contains_key(q.metric) {
            order.push(q.metric);
        }
        groups.entry(q.metric).or_default().push(q);
    }
    for metric in order {
        quantity_family(enc, &groups[metric], up)?;
    }
    Ok(())
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let enc = &mut enc;
        let s = self.0.lock().map_err(|_| std::fmt::Error)?;
        let version = env!("CARGO_PKG_VERSION").to_string();
        let build = vec![("version", version), ("kernel", s.kernel.clone())];
        gauges(enc, &catalogue::BUILD_INFO, &[(build, 1i64)])?;
        let sysctls: Vec<(Labels, i64)> = s
            .sysctls
            .iter()
            .map(|(n, v)| (vec![("name", n.clone()), ("value", v.clone())], 1))
            .collect();
        gauges(enc, &catalogue::SYSCTL_INFO, &sysctls)?;
        let all: Vec<Up> = s.ifaces.iter().collect();
        let up_flags: Vec<(Labels, i64)> = all
            .iter()
            .map(|(n, i)| (vec![("iface", n.to_string())], i.up as i64))
            .collect();
        gauges(enc, &catalogue::IFACE_UP, &up_flags)?;
        let up: Vec<Up> = all.into_iter().filter(|(_, i)| i.up).collect();
        device(enc, &up)?;
        probes(enc, &up)?;
        sampling(enc, &up)?;
        features(enc, &up)?;
        nic(enc, &up)?;
        quantities(enc, &up)?;
        fallbacks(enc, &up)?;
        verdicts(enc, &up)?;
        agent(enc, &s.agent)
    }
}

fn device(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let series: Vec<(Labels, i64)> = up
        .iter()
        .filter_map(|(n, i)| {
            let (driver, class) = i.device.as_ref()?;
            let labels = vec![
                ("iface", n.to_string()),
                ("driver", driver.clone()),
                ("device_class", class.name().to_string()),
            ];
            Some((labels, 1))
        })
        .collect();
    gauges(enc, &catalogue::DEVICE_INFO, &series)
}

/// Which hook each probe is on: a fleet sees at once the hosts whose
/// kernels put probes on their classic fallbacks, or none.
fn probes(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let series: Vec<(Labels, i64)> = up
        .iter()
        .flat_map(|(n, i)| {
            i.probes.iter().map(move |p| {
                let labels = vec![
                    ("iface", n.to_string()),
                    ("probe", p.name.clone()),
                    ("hook", p.hook.clone()),
                    ("state", p.status.name().to_string()),
                ];
                (labels, p.status.counts() as i64)
            })
        })
        .collect();
    gauges(enc, &catalogue::PROBE_ATTACHED, &series)
}

/// How the per-segment probes are sampled, so that their counters can be
/// read as rates within the windows.
fn sampling(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let label = |n: &str| vec![("iface", n.to_string())];
    let fraction: Vec<(Labels, f64)> = up
        .iter()
        .map(|(n, i)| (label(n), i.run.sample.fraction))
        .collect();
    let secs: Vec<(Labels, f64)> = up
        .iter()
        .map(|(n, i)| (label(n), i.run.sample.secs))
        .collect();
    gauges(enc, &catalogue::SAMPLE_FRACTION, &fraction)?;
    counters(enc, &catalogue::SAMPLED_SECONDS, &secs)
}

/// Each offload feature's state, so that a fleet can be asked which hosts
/// differ (`count by (active) (toe_feature_info{feature="rx-gro"})`).
fn features(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let on = |b: bool| if b { "on" } else { "off" }.to_string();
    let series: Vec<(Labels, i64)> = up
        .iter()
        .flat_map(|(n, i)| {
            i.features
                .iter()
                .filter(|f| OFFLOAD_FEATURES.contains(&f.name.as_str()))
                .map(move |f| {
                    let labels = vec![
                        ("iface", n.to_string()),
                        ("feature", f.name.clone()),
                        ("active", on(f.active)),
                        ("requested", on(f.requested)),
                        ("fixed", f.fixed().to_string()),
                    ];
                    (labels, 1)
                })
        })
        .collect();
    gauges(enc, &catalogue::FEATURE_INFO, &series)
}

/// Where the driver's own counters and the probes describe the same
/// packets (model::nic): whether they agree, and the ratio.
fn nic(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let mut agree = Vec::new();
    let mut ratio = Vec::new();
    for (n, i) in up {
        for r in &i.nic {
            let labels = vec![
                ("iface", n.to_string()),
                ("offload", r.offload.name().to_string()),
                ("what", r.what.clone()),
                ("source", r.source.clone()),
            ];
            agree.push((labels.clone(), r.agree as i64));
            ratio.push((labels, r.ratio));
        }
    }
    gauges(enc, &catalogue::NIC_AGREES, &agree)?;
    gauges(enc, &catalogue::NIC_RATIO, &ratio)
}

fn fallbacks(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let series: Vec<(Labels, u64)> = up
        .iter()
        .flat_map(|(n, i)| {
            i.fallbacks.iter().map(move |(o, v)| {
                (
                    vec![("iface", n.to_string()), ("offload", o.to_string())],
                    *v,
                )
            })
        })
        .collect();
    counters(enc, &catalogue::SOFTWARE_FALLBACK, &series)
}

/// The current verdict and mismatch flag of each offload.
fn verdicts(enc: &mut DescriptorEncoder, up: &[Up]) -> std::fmt::Result {
    let mut verdicts = Vec::new();
    let mut mismatch = Vec::new();
    for (n, i) in up {
        for v in &i.verdicts {
            let configured = v
                .configured
                .as_ref()
                .map(|c| format!("{}={}", c.feature, if c.active { "on" } else { "off" }))
                .unwrap_or_else(|| "unknown".into());
            let offload = ("offload", v.offload.name().to_string());
            verdicts.push((
                vec![
                    ("iface", n.to_string()),
                    offload.clone(),
                    ("mechanism", v.mechanism.name().to_string()),
                    ("configured", configured),
                    ("mismatch", v.mismatch.to_string()),
                ],
                1i64,
            ));
            mismatch.push((vec![("iface", n.to_string()), offload], v.mismatch as i64));
        }
    }
    gauges(enc, &catalogue::OFFLOAD_VERDICT, &verdicts)?;
    gauges(enc, &catalogue::OFFLOAD_MISMATCH, &mismatch)
}

/// The agent's own cost.
fn agent(enc: &mut DescriptorEncoder, a: &AgentCost) -> std::fmt::Result {
    counters(
        enc,
        &catalogue::AGENT_CPU,
        &[(vec![], a.cpu_ns as f64 * 1e-9)],
    )?;
    gauges(enc, &catalogue::AGENT_RSS, &[(vec![], a.rss as i64)])?;
    counters(enc, &catalogue::BPF_MISSED, &[(vec![], a.bpf_missed)])?;
    if a.self_stats {
        counters(enc, &catalogue::BPF_RUNS, &[(vec![], a.bpf_runs)])?;
        counters(
            enc,
            &catalogue::BPF_RUN_TIME,
            &[(vec![], a.bpf_run_ns as f64 * 1e-9)],
        )?;
    }
    Ok(())
}

/// The OpenMetrics text of `exposed`.
pub(crate) fn openmetrics(metrics: &Metrics) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(metrics.clone()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// The classic Prometheus text format (0.0.4) for clients that do not ask
/// for OpenMetrics (curl, `promtool check metrics`, older scrapers). The
/// library writes OpenMetrics; the two differ only in that counter families
/// are named with their `_total` suffix in HELP/TYPE and there is no
/// `# EOF` or `# UNIT`.
pub(crate) fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        kernel::{attach::ProbeState, collect::Totals},
        model::verdict,
    };
    use toe_agent_common::hist::bucket_index;

    #[test]
    fn buckets_merge_to_powers_of_two_with_inf() {
        let mut t = Totals::default();
        for (v, n) in [(1500u64, 10u64), (64, 2), (65_000, 1)] {
            t.handoff.segment_len.buckets[bucket_index(v)] += n;
            t.handoff.segment_len.sum += v * n;
        }
        let b = pow2_buckets(&Blocks::from_totals(&t).rx.handoff.segment_len, 1.0);
        assert_eq!(b.last(), Some(&(f64::INFINITY, 0)));
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 13);
        let at = |le: f64| b.iter().find(|x| x.0 == le).unwrap().1;
        assert_eq!(at(2047.0), 10);
        assert_eq!(at(127.0), 2);
        assert_eq!(at(65535.0), 1);
    }

    #[test]
    fn the_nics_word_is_exported_beside_the_probes() {
        let text = text(exposed(Blocks::default(), Coverage::default()));
        let labels = r#"{iface="eth0",offload="rx_coalescing",what="packets handed up",source="qstats rx-packets"}"#;
        for line in [
            format!("toe_nic_agrees{labels} 0"),
            format!("toe_nic_ratio{labels} 0.9"),
            r#"toe_feature_info{iface="eth0",feature="rx-gro",active="on",requested="on",fixed="false"} 1"#.to_string(),
            r#"toe_sysctl_info{name="net.core.netdev_max_backlog",value="1000"} 1"#.to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }

    #[test]
    fn each_probe_says_which_hook_it_is_on() {
        let text = text(exposed(Blocks::default(), Coverage::default()));
        for line in [
            r#"toe_probe_attached{iface="eth0",probe="napi_poll",hook="tp_btf/napi_poll",state="attached"} 1"#,
            r#"toe_probe_attached{iface="eth0",probe="net_dev_queue",hook="tracepoint/net/net_dev_queue",state="degraded"} 1"#,
            r#"toe_probe_attached{iface="eth0",probe="napi_gro_receive_entry",hook="tp_btf/napi_gro_receive_entry",state="skipped"} 0"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }

    fn exposed(run: Blocks, coverage: Coverage) -> Exposed {
        Exposed {
            ifaces: BTreeMap::from([(
                "eth0".to_string(),
                ExposedIface {
                    up: true,
                    run,
                    coverage,
                    fallbacks: BTreeMap::from([("rx_checksum", 5)]),
                    verdicts: verdict::judge(&Blocks::default(), &verdict::Device::default()),
                    device: Some(("virtio_net".into(), DeviceClass::Paravirtual)),
                    features: vec![Feature {
                        name: "rx-gro".into(),
                        available: true,
                        requested: true,
                        active: true,
                        never_changed: false,
                    }],
                    nic: vec![Reconciled {
                        what: "packets handed up".into(),
                        offload: crate::model::verdict::Offload::RxCoalescing,
                        source: "qstats rx-packets".into(),
                        nic: 90,
                        agent: 100,
                        ratio: 0.9,
                        agree: false,
                    }],
                    probes: vec![
                        ProbeStatus {
                            name: "napi_poll".into(),
                            hook: "tp_btf/napi_poll".into(),
                            status: ProbeState::Attached,
                            reason: None,
                        },
                        ProbeStatus {
                            name: "net_dev_queue".into(),
                            hook: "tracepoint/net/net_dev_queue".into(),
                            status: ProbeState::Degraded,
                            reason: Some("no BTF".into()),
                        },
                        ProbeStatus {
                            name: "napi_gro_receive_entry".into(),
                            hook: "tp_btf/napi_gro_receive_entry".into(),
                            status: ProbeState::Skipped,
                            reason: Some("--per-skb".into()),
                        },
                    ],
                },
            )]),
            kernel: "6.18".into(),
            sysctls: vec![("net.core.netdev_max_backlog".into(), "1000".into())],
            ..Exposed::default()
        }
    }

    fn text(e: Exposed) -> String {
        openmetrics(&Metrics(Arc::new(Mutex::new(e)))).unwrap()
    }

    #[test]
    fn exposition_has_the_families() {
        let mut totals = Totals::default();
        totals.handoff.segment_len.buckets[bucket_index(1500)] = 5;
        totals.handoff.segment_len.sum = 7500;
        totals.handoff.segment_csum[0] = 5;
        let text = text(exposed(Blocks::from_totals(&totals), Coverage::default()));
        for want in [
            "toe_rx_segments_total{iface=\"eth0\"} 5",
            "toe_device_info{iface=\"eth0\",driver=\"virtio_net\",device_class=\"paravirtual\"} 1",
            "toe_rx_csum_total{iface=\"eth0\",stage=\"handoff\",state=\"none\"} 5",
            "toe_rx_segment_bytes_bucket{le=\"2047.0\",iface=\"eth0\"} 5",
            "toe_rx_segment_bytes_sum{iface=\"eth0\"} 7500.0",
            "toe_software_fallback_total{iface=\"eth0\",offload=\"rx_checksum\"} 5",
            "toe_offload_verdict{iface=\"eth0\",offload=\"tx_segmentation\",mechanism=\"not_exercised\",configured=\"unknown\",mismatch=\"false\"} 1",
            "toe_build_info{version=\"",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want} in:\n{text}");
        }
    }

    /// What the probes cannot see is left out, not exported as zero.
    #[test]
    fn unmeasured_quantities_have_no_series() {
        let per_skb = Coverage {
            handoff: false,
            handoff_missing: 0,
            driver_xmit: false,
        };
        let text = text(exposed(Blocks::default(), per_skb));
        assert!(
            text.contains("toe_rx_skbs_total{iface=\"eth0\"} 0"),
            "{text}"
        );
        for absent in [
            "toe_rx_segments_total",
            "toe_rx_segment_bytes",
            "toe_tx_xmit_skbs",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    #[test]
    fn classic_text_names_counters_with_total() {
        let om = "# HELP toe_rx_segments Packets.\n# TYPE toe_rx_segments counter\ntoe_rx_segments_total{iface=\"a\"} 5\n# HELP toe_iface_up Up.\n# TYPE toe_iface_up gauge\ntoe_iface_up{iface=\"a\"} 1\n# EOF\n";
        let text = classic_text(om);
        assert_eq!(
            text,
            "# HELP toe_rx_segments_total Packets.\n# TYPE toe_rx_segments_total counter\ntoe_rx_segments_total{iface=\"a\"} 5\n# HELP toe_iface_up Up.\n# TYPE toe_iface_up gauge\ntoe_iface_up{iface=\"a\"} 1\n"
        );
    }
}
