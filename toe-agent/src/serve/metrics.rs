//! The `/metrics` exposition: every family, encoded from the sampler's
//! state when a scrape asks (prometheus-client's `Collector`). Names and
//! meanings: docs/metrics.md.
use super::*;

#[derive(Debug, Clone)]
pub(super) struct Metrics(pub(super) Arc<Mutex<State>>);

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

/// A counter family, of integer or floating-point values.
fn counter<V: Copy>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, V)],
) -> std::fmt::Result
where
    ConstCounter<V>: EncodeMetric,
{
    family(
        enc,
        name,
        help,
        MetricType::Counter,
        series,
        ConstCounter::new,
    )
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, i64)],
) -> std::fmt::Result {
    family(enc, name, help, MetricType::Gauge, series, ConstGauge::new)
}

/// The kernel's log-linear buckets merged to powers of two (a log-linear
/// bucket never straddles one, so the merge is exact), plus +Inf.
fn pow2_buckets(h: &Hist, scale: f64) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = (0..=32)
        .map(|p| (((1u64 << p) as f64 - 1.0).max(0.0) * scale, 0))
        .collect();
    for (i, &c) in h.buckets.iter().enumerate().filter(|(_, c)| **c != 0) {
        let upper = bucket_upper_bound(i);
        let p = (64 - upper.leading_zeros()).min(32) as usize;
        out[p].1 += c;
    }
    out.push((f64::INFINITY, 0));
    out
}

fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    scale: f64,
    series: &[(Labels, &Hist)],
) -> std::fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in series {
        let buckets = pow2_buckets(h, scale);
        m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
            h.sum as f64 * scale,
            h.count(),
            &buckets,
            None,
        )?;
    }
    Ok(())
}

const CSUM_STATES: [&str; 4] = ["none", "unnecessary", "complete", "partial"];

/// The label set of a per-interface series.
fn l(iface: &str) -> Labels {
    vec![("iface", iface.to_string())]
}

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let enc = &mut enc;
        let s = self.0.lock().map_err(|_| std::fmt::Error)?;
        gauge(
            enc,
            "toe_build_info",
            "Agent version and kernel.",
            &[(
                vec![
                    ("version", env!("CARGO_PKG_VERSION").to_string()),
                    ("kernel", s.kernel.clone()),
                ],
                1,
            )],
        )?;
        let all: Vec<(&String, &IfaceState)> = s.ifaces.iter().collect();
        gauge(
            enc,
            "toe_iface_up",
            "1 while the interface exists and its probes are attached.",
            &all.iter()
                .map(|(n, i)| (l(n), i.up as i64))
                .collect::<Vec<_>>(),
        )?;
        let up: Vec<&(&String, &IfaceState)> = all.iter().filter(|(_, i)| i.up).collect();
        gauge(
            enc,
            "toe_device_info",
            "Driver and device class (physical, paravirtual, virtual) the verdicts judge the device as.",
            &up.iter()
                .filter_map(|(n, i)| {
                    let (driver, class) = i.device.as_ref()?;
                    Some((
                        vec![
                            ("iface", n.to_string()),
                            ("driver", driver.clone()),
                            ("device_class", class.name().to_string()),
                        ],
                        1,
                    ))
                })
                .collect::<Vec<_>>(),
        )?;
        let up: &[&(&String, &IfaceState)] = &up;
        counters(enc, up)?;
        histograms(enc, up)?;
        softirqs(enc, up)?;
        verdicts(enc, up)?;
        agent(enc, &s)?;
        Ok(())
    }
}

/// Per-interface counters: packets, skbs, bytes, checksum states, fallbacks.
fn counters(enc: &mut DescriptorEncoder, up: &[&(&String, &IfaceState)]) -> std::fmt::Result {
    let per = |f: &dyn Fn(&Totals) -> u64| -> Vec<(Labels, u64)> {
        up.iter().map(|(n, i)| (l(n), f(&i.totals))).collect()
    };
    counter(
        enc,
        "toe_rx_segments",
        "Packets handed up by the driver (before GRO).",
        &per(&|t| t.rx.segment_len.count()),
    )?;
    counter(
        enc,
        "toe_rx_skbs",
        "skbs delivered to the stack after GRO.",
        &per(&|t| t.rx.skb_len.count()),
    )?;
    counter(
        enc,
        "toe_rx_bytes",
        "Bytes delivered to the stack (skb->len after GRO).",
        &per(&|t| t.rx.skb_len.sum),
    )?;
    counter(
        enc,
        "toe_tx_queued_skbs",
        "skbs at net_dev_queue (before GSO).",
        &per(&|t| t.tx.queued_len.count()),
    )?;
    counter(
        enc,
        "toe_tx_xmit_skbs",
        "skbs handed to the driver (net_dev_start_xmit).",
        &per(&|t| t.tx.xmit_len.count()),
    )?;
    counter(
        enc,
        "toe_tx_wire_segments",
        "Segments the device must put on the wire.",
        &per(&|t| t.tx.segs_per_xmit.sum),
    )?;
    counter(
        enc,
        "toe_tx_bytes",
        "Bytes handed to the driver.",
        &per(&|t| t.tx.xmit_len.sum),
    )?;
    counter(
        enc,
        "toe_napi_polls",
        "NAPI polls of the interface.",
        &per(&|t| t.napi.work.count()),
    )?;
    counter(
        enc,
        "toe_napi_budget_exhausted",
        "NAPI polls that used their whole budget.",
        &per(&|t| t.napi.budget_exhausted),
    )?;
    counter(
        enc,
        "toe_tcp_bad_csum",
        "TCP segments with a bad checksum found by the CPU.",
        &per(&|t| t.rx.bad_csum),
    )?;
    type CsumOf = fn(&Totals) -> &[u64; 4];
    let csum = |stages: [(&str, CsumOf); 2]| -> Vec<(Labels, u64)> {
        let mut out = Vec::new();
        for (n, i) in up {
            for (stage, of) in stages {
                for (state, count) in CSUM_STATES.iter().zip(of(&i.totals)) {
                    let labels = vec![
                        ("iface", n.to_string()),
                        ("stage", stage.to_string()),
                        ("state", state.to_string()),
                    ];
                    out.push((labels, *count));
                }
            }
        }
        out
    };
    let rx_csum = csum([
        ("handoff", |t| &t.rx.segment_csum),
        ("after_gro", |t| &t.rx.skb_csum),
    ]);
    counter(
        enc,
        "toe_rx_csum",
        "Received packets by ip_summed state.",
        &rx_csum,
    )?;
    let tx_csum = csum([
        ("queue", |t| &t.tx.queued_csum),
        ("xmit", |t| &t.tx.xmit_csum),
    ]);
    counter(
        enc,
        "toe_tx_csum",
        "Transmitted skbs by ip_summed state.",
        &tx_csum,
    )?;
    let fallbacks: Vec<(Labels, u64)> = up
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
    counter(
        enc,
        "toe_software_fallback",
        "Packets whose offload work was done by the CPU (per offload verdict).",
        &fallbacks,
    )?;
    Ok(())
}

/// Per-interface length, segment and NAPI histograms.
fn histograms(enc: &mut DescriptorEncoder, up: &[&(&String, &IfaceState)]) -> std::fmt::Result {
    let hists = |f: &dyn Fn(&Totals) -> &Hist| -> Vec<(Labels, &Hist)> {
        up.iter().map(|(n, i)| (l(n), f(&i.totals))).collect()
    };
    histogram(
        enc,
        "toe_rx_segment_bytes",
        "Length of packets at the driver hand-off (before GRO).",
        1.0,
        &hists(&|t| &t.rx.segment_len),
    )?;
    histogram(
        enc,
        "toe_rx_skb_bytes",
        "Length of skbs after GRO.",
        1.0,
        &hists(&|t| &t.rx.skb_len),
    )?;
    histogram(
        enc,
        "toe_rx_segments_per_skb",
        "Segments merged into each skb by GRO.",
        1.0,
        &hists(&|t| &t.rx.segs_per_skb),
    )?;
    histogram(
        enc,
        "toe_tx_queued_bytes",
        "Length of skbs at net_dev_queue (before GSO).",
        1.0,
        &hists(&|t| &t.tx.queued_len),
    )?;
    histogram(
        enc,
        "toe_tx_xmit_bytes",
        "Length of skbs handed to the driver (after GSO).",
        1.0,
        &hists(&|t| &t.tx.xmit_len),
    )?;
    histogram(
        enc,
        "toe_tx_segments_per_xmit",
        "Segments per skb handed to the driver.",
        1.0,
        &hists(&|t| &t.tx.segs_per_xmit),
    )?;
    histogram(
        enc,
        "toe_napi_work_packets",
        "Packets processed per NAPI poll.",
        1.0,
        &hists(&|t| &t.napi.work),
    )?;
    Ok(())
}

/// NET_RX/NET_TX softirq time, host-wide.
fn softirqs(enc: &mut DescriptorEncoder, up: &[&(&String, &IfaceState)]) -> std::fmt::Result {
    // Softirqs are host-wide: every interface's probes see the same ones,
    // so the first interface up speaks for the host.
    if let Some((_, i)) = up.first() {
        let mut dur = Vec::new();
        let mut time: Vec<(Labels, f64)> = Vec::new();
        let mut merged = [Hist::ZERO, Hist::ZERO];
        for (name, v) in [("net_rx", SOFTIRQ_NET_RX), ("net_tx", SOFTIRQ_NET_TX)] {
            for (cpu, c) in i
                .totals
                .softirq
                .iter()
                .enumerate()
                .filter(|(_, c)| c.count[v] != 0)
            {
                crate::collect::Counters::add(&mut merged[v], &c.duration[v]);
                time.push((
                    vec![("vec", name.to_string()), ("cpu", cpu.to_string())],
                    c.time_ns[v] as f64 * 1e-9,
                ));
            }
        }
        for (name, v) in [("net_rx", SOFTIRQ_NET_RX), ("net_tx", SOFTIRQ_NET_TX)] {
            dur.push((vec![("vec", name.to_string())], &merged[v]));
        }
        counter(
            enc,
            "toe_softirq_seconds",
            "Time spent in the NET_RX/NET_TX softirq, per CPU.",
            &time,
        )?;
        histogram(
            enc,
            "toe_softirq_duration_seconds",
            "Duration of NET_RX/NET_TX softirq runs.",
            1e-9,
            &dur,
        )?;
    }
    Ok(())
}

/// The current verdict and mismatch flag of each offload.
fn verdicts(enc: &mut DescriptorEncoder, up: &[&(&String, &IfaceState)]) -> std::fmt::Result {
    let mut verdicts = Vec::new();
    let mut mismatch = Vec::new();
    for (n, i) in up {
        for v in &i.verdicts {
            let configured = v
                .configured
                .as_ref()
                .map(|c| format!("{}={}", c.feature, if c.active { "on" } else { "off" }))
                .unwrap_or_else(|| "unknown".into());
            verdicts.push((
                vec![
                    ("iface", n.to_string()),
                    ("offload", v.offload.name().to_string()),
                    ("mechanism", v.mechanism.name().to_string()),
                    ("configured", configured),
                    ("mismatch", v.mismatch.to_string()),
                ],
                1,
            ));
            mismatch.push((
                vec![
                    ("iface", n.to_string()),
                    ("offload", v.offload.name().to_string()),
                ],
                v.mismatch as i64,
            ));
        }
    }
    gauge(
        enc,
        "toe_offload_verdict",
        "1 for the current verdict of each offload (over the verdict window).",
        &verdicts,
    )?;
    gauge(
        enc,
        "toe_offload_mismatch",
        "1 when an offload's configuration and observation disagree.",
        &mismatch,
    )?;
    Ok(())
}

/// The agent's own cost.
fn agent(enc: &mut DescriptorEncoder, s: &State) -> std::fmt::Result {
    counter(
        enc,
        "toe_agent_cpu_seconds",
        "CPU time of the agent (user + system).",
        &[(vec![], s.agent_cpu_ns as f64 * 1e-9)],
    )?;
    gauge(
        enc,
        "toe_agent_resident_memory_bytes",
        "Resident set size of the agent.",
        &[(vec![], s.agent_rss as i64)],
    )?;
    counter(
        enc,
        "toe_bpf_program_missed_runs",
        "Runs of the agent's BPF programs the kernel skipped (recursion): events not seen.",
        &[(vec![], s.bpf_missed)],
    )?;
    if s.self_stats {
        counter(
            enc,
            "toe_bpf_program_runs",
            "Runs of the agent's BPF programs (kernel BPF statistics).",
            &[(vec![], s.bpf_runs)],
        )?;
        counter(
            enc,
            "toe_bpf_program_run_seconds",
            "Run time of the agent's BPF programs.",
            &[(vec![], s.bpf_run_ns as f64 * 1e-9)],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use toe_agent_common::hist::bucket_index;

    #[test]
    fn buckets_merge_to_powers_of_two_with_inf() {
        let mut h = Hist::ZERO;
        for (v, n) in [(1500u64, 10u64), (64, 2), (65_000, 1)] {
            h.buckets[bucket_index(v)] += n;
            h.sum += v * n;
        }
        let b = pow2_buckets(&h, 1.0);
        assert_eq!(b.last(), Some(&(f64::INFINITY, 0)));
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 13);
        let at = |le: f64| b.iter().find(|x| x.0 == le).unwrap().1;
        assert_eq!(at(2047.0), 10);
        assert_eq!(at(127.0), 2);
        assert_eq!(at(65535.0), 1);
    }

    #[test]
    fn exposition_has_the_families() {
        let mut totals = Totals::default();
        totals.rx.segment_len.buckets[bucket_index(1500)] = 5;
        totals.rx.segment_len.sum = 7500;
        totals.rx.segment_csum[0] = 5;
        let state = State {
            ifaces: BTreeMap::from([(
                "eth0".to_string(),
                IfaceState {
                    up: true,
                    totals,
                    fallbacks: BTreeMap::from([("rx_checksum", 5)]),
                    verdicts: verdict::judge(&Blocks::default(), &verdict::Device::default()),
                    device: Some(("virtio_net".into(), DeviceClass::Paravirtual)),
                },
            )]),
            kernel: "6.18".into(),
            sampler_alive: true,
            ..State::default()
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Metrics(Arc::new(Mutex::new(state)))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
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
}
