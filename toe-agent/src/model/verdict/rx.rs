//! Receive offloads, judged on the receiver: coalescing (LRO, hardware
//! and software GRO) and checksum offload, from the driver hand-off (what
//! the NIC handed up) and netif_receive_skb (after GRO).
use super::*;

/// When only some hand-off hooks are attached, the packets a driver hands
/// up through a missing one are never counted. The hand-off is judged only
/// if the hooks that are attached saw (nearly) every TCP segment the stack
/// received after GRO; the error is the evidence that says otherwise.
fn handoff_accounts(b: &Blocks, dev: &Device) -> Result<(), String> {
    let missing = dev.coverage.missing_handoffs();
    if missing.is_empty() {
        return Ok(());
    }
    let r = &b.rx;
    let after = if r.after_gro.segs_per_skb.count > 0 {
        r.after_gro
            .segs_per_skb
            .sum
            .saturating_sub(r.after_gro.non_tcp.skb_segments)
    } else {
        r.after_gro.skbs.saturating_sub(r.after_gro.non_tcp.skbs)
    };
    let seen = r
        .handoff
        .segments
        .saturating_sub(r.after_gro.non_tcp.skb_segments);
    if seen * 10 >= after * 9 {
        return Ok(());
    }
    Err(format!(
        "the attached hand-off hooks saw {} TCP packets, but {} segments reached the stack after GRO: the driver hands packets up through {}, not attached",
        group(seen),
        group(after),
        missing.join(", ")
    ))
}

/// The checksum state the NIC reported, at the driver hand-off. As on
/// transmit, every protocol counts.
pub(crate) fn rx_checksum(b: &Blocks, dev: &Device) -> Verdict {
    let c = &b.rx.handoff.csum;
    let cfg = dev.configured(RX_CSUM);
    let on = cfg.as_ref().is_some_and(|c| c.active);
    let o = Offload::RxChecksum;
    if !dev.coverage.handoff {
        // After GRO the state says nothing of who verified: every merged
        // skb leaves as CHECKSUM_PARTIAL, ready to be segmented again
        // (net/ipv4/tcp_offload.c, tcp_gro_complete()).
        let e = format!(
            "the checksum state the NIC reports shows only at the driver hand-off, {UNMEASURED}"
        );
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if let Err(e) = handoff_accounts(b, dev) {
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if c.total() < MIN_PACKETS {
        let e = format!("only {} packets received", group(c.total()));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let (hw, none, partial) = csum_shares(c);
    let n = group(c.total());
    if partial >= 50.0 {
        return rx_checksum_partial(partial, &n, dev, cfg);
    }
    if hw >= 50.0 {
        let (mechanism, whom) = match dev.class {
            // Someone before the virtual device vouched for them: the NIC
            // or the stack the packets came from.
            DeviceClass::Virtual => (
                Mechanism::Deferred,
                "before they reached the virtual device (by the NIC or stack they came from)"
                    .to_string(),
            ),
            _ => {
                let (m, w) = dev.doer("the NIC");
                (m, format!("by {w}"))
            }
        };
        let e = format!(
            "{hw:.1}% of {n} received packets had ip_summed=UNNECESSARY or COMPLETE: checksums verified {whom}{}",
            if on { String::new() } else { although(&cfg) }
        );
        let mismatch = !on && dev.class == DeviceClass::Physical;
        return verdict(o, mechanism, cfg, mismatch, e);
    }
    if b.rx.after_gro.ip_fragments * 2 >= b.rx.after_gro.skbs {
        // A TCP checksum covers the whole datagram: no NIC can verify it
        // from one fragment (QEMU's net_rx_pkt_validate_l4_csum() refuses
        // fragments; so do real NICs). The CPU checks it after ip_defrag().
        let e = format!(
            "{none:.1}% of {n} received packets had ip_summed=NONE, and {} of {} were IP fragments, whose TCP checksum no NIC can verify: checked by the CPU after reassembly{}",
            group(b.rx.after_gro.ip_fragments),
            group(b.rx.after_gro.skbs),
            checksum_failures(b),
        );
        return verdict(o, Mechanism::Software, cfg, false, e);
    }
    let e = format!(
        "{none:.1}% of {n} received packets had ip_summed=NONE: checksums verified by the CPU{}{}",
        if on { although(&cfg) } else { String::new() },
        checksum_failures(b),
    );
    verdict(o, Mechanism::Software, cfg, on, e)
}

/// The checksums the CPU found bad, when it found any: TCP's own count
/// and the stack's checksum drop reasons (include/net/dropreason-core.h).
fn checksum_failures(b: &Blocks) -> String {
    let dropped: u64 = b
        .drops
        .by_reason
        .iter()
        .filter(|(r, _)| r.ends_with("_CSUM"))
        .map(|(_, n)| n)
        .sum();
    if dropped + b.rx.tcp.bad_csum == 0 {
        return String::new();
    }
    format!(
        "; the CPU found {} bad checksums (tcp_bad_csum {}, checksum drop reasons {})",
        group(dropped.max(b.rx.tcp.bad_csum)),
        group(b.rx.tcp.bad_csum),
        group(dropped)
    )
}

/// `CHECKSUM_PARTIAL` at the hand-off means different things by class. On
/// a virtual device the skb was built on this host and nobody ever
/// computes its checksum (the receiver trusts it, skb_csum_unnecessary()).
/// A physical NIC hands up PARTIAL only from hardware GRO, after verifying
/// every segment it merged: bnxt_gro_skb() → tcp_gro_complete()
/// (drivers/net/ethernet/broadcom/bnxt/bnxt.c), bnx2x_gro_csum(),
/// qede_gro_ip_csum(), mlx5e_shampo_update_hdr(). A paravirtual device's
/// host marks it so (VIRTIO_NET_HDR_F_NEEDS_CSUM, include/linux/virtio_net.h).
fn rx_checksum_partial(partial: f64, n: &str, dev: &Device, cfg: Option<Configured>) -> Verdict {
    let o = Offload::RxChecksum;
    let on = cfg.as_ref().is_some_and(|c| c.active);
    let (mechanism, e, mismatch) = match dev.class {
        DeviceClass::Virtual => (
            Mechanism::Deferred,
            format!(
                "{partial:.1}% of {n} received packets had ip_summed=PARTIAL: built on this host and never checksummed, verification skipped (virtual path)"
            ),
            false,
        ),
        DeviceClass::Physical => (
            Mechanism::Hardware,
            format!(
                "{partial:.1}% of {n} received packets had ip_summed=PARTIAL: from a physical NIC that is hardware GRO's mark, set after it verified each merged segment's checksum{}",
                if on { String::new() } else { although(&cfg) }
            ),
            !on,
        ),
        DeviceClass::Paravirtual => {
            let (m, whom) = dev.doer("");
            (
                m,
                format!(
                    "{partial:.1}% of {n} received packets had ip_summed=PARTIAL: vouched for by {whom}"
                ),
                false,
            )
        }
    };
    verdict(o, mechanism, cfg, mismatch, e)
}

/// TCP packets at the hand-off, and TCP skbs and their segments after GRO.
/// Classic tracepoints read neither the protocol nor gso_segs after GRO:
/// every packet counts as TCP, and segments per skb come from the ratio of
/// hand-offs to skbs.
struct TcpRx {
    segments: u64,
    skbs: u64,
    per_skb: Option<f64>,
}

fn tcp_rx(b: &Blocks) -> TcpRx {
    let r = &b.rx;
    let n = &r.after_gro.non_tcp;
    // Each packet handed up ends in one skb after GRO: the non-TCP segments
    // counted there are the non-TCP hand-offs.
    let segments = r.handoff.segments.saturating_sub(n.skb_segments);
    let skbs = r.after_gro.skbs.saturating_sub(n.skbs);
    let per_skb = if r.after_gro.segs_per_skb.count > 0 {
        let segs = r.after_gro.segs_per_skb.sum.saturating_sub(n.skb_segments);
        (skbs > 0).then(|| segs as f64 / skbs as f64)
    } else {
        None
    };
    TcpRx {
        segments,
        skbs,
        per_skb,
    }
}

pub(crate) fn rx_coalescing(b: &Blocks, dev: &Device) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let gro = dev.configured(GRO);
    let gro_on = gro.as_ref().is_some_and(|c| c.active);
    if !dev.coverage.handoff {
        return rx_coalescing_per_skb(b, dev, gro);
    }
    if let Err(e) = handoff_accounts(b, dev) {
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    }
    let tcp = tcp_rx(b);
    let others = others_note(r.after_gro.non_tcp.skb_segments, "packets");
    if tcp.segments < MIN_PACKETS {
        let e = format!("only {} TCP packets received{others}", group(tcp.segments));
        return verdict(o, Mechanism::NotExercised, gro, false, e);
    }
    // Longer than the MTU at the hand-off: coalesced before the stack saw
    // it, with a gso_size (LRO, HW-GRO, GSO skbs crossing a virtual device)
    // or without one (bnxt's TPA in LRO mode, bnxt_tpa_end()).
    let over_mtu = r.handoff.segment_len.count_above(dev.mtu as u64);
    let large = over_mtu
        .max(r.handoff.handoff_gso_size.count)
        .saturating_sub(r.handoff.non_tcp.handoff_large);
    if large * 2 >= tcp.segments {
        return rx_coalesced_before_stack(b, dev, large, tcp.segments, &others);
    }
    // Merged after the hand-off: segments per skb from gso_segs, or (classic
    // tracepoints) from the ratio of hand-offs to delivered skbs.
    let per_skb = tcp.per_skb.unwrap_or(if tcp.skbs > 0 {
        tcp.segments as f64 / tcp.skbs as f64
    } else {
        0.0
    });
    if per_skb >= 1.5 {
        let e = format!(
            "{} TCP packets of {} on average at the hand-off became {} skbs after GRO ({per_skb:.1} segments per skb): coalesced by the CPU (software GRO){}{others}",
            group(tcp.segments),
            kb(r.handoff.segment_len.mean()),
            group(tcp.skbs),
            if gro_on {
                String::new()
            } else {
                although(&gro)
            }
        );
        return verdict(o, Mechanism::Software, gro, !gro_on, e);
    }
    let bulk = match bulk_traffic(
        r.handoff.segments,
        "packets",
        &r.handoff.segment_len,
        dev,
        "nothing to coalesce",
    ) {
        Ok(bulk) => bulk,
        Err(e) => return verdict(o, Mechanism::NotExercised, gro, false, e),
    };
    let nothing = format!(
        "{} TCP packets at the hand-off ({} packets near MTU size), {} skbs after GRO: nothing coalesced",
        group(tcp.segments),
        group(bulk),
        group(tcp.skbs),
    );
    rx_not_coalesced(b, dev, nothing, &others)
}

/// Bulk packets reached the stack one by one. Why, in the order a reader
/// should look: they were IP fragments, which GRO never merges; they took
/// a path without GRO (the driver's LRO bypass, or the backlog); or GRO ran
/// and merged nothing.
fn rx_not_coalesced(b: &Blocks, dev: &Device, nothing: String, others: &str) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let gro = dev.configured(GRO);
    let gro_on = gro.as_ref().is_some_and(|c| c.active);
    let h = &r.handoff.by_hook;
    let results = gro_results(&r.gro.results);
    if r.after_gro.ip_fragments * 2 >= r.after_gro.skbs {
        // inet_gro_receive() (net/ipv4/af_inet.c) flushes at
        // ip_is_fragment(): GRO cannot merge what it cannot see whole.
        let e = format!(
            "{nothing}: {} of {} packets were IP fragments, which GRO never merges (inet_gro_receive() flushes at ip_is_fragment()); the sender's device fragmented its TSO frames instead of segmenting them (QEMU's net_tx_pkt_do_sw_fragmentation() up to 7.2 does){results}{others}",
            group(r.after_gro.ip_fragments),
            group(r.after_gro.skbs)
        );
        return verdict(o, Mechanism::Off, gro, false, e);
    }
    let direct = h.netif_receive_skb + h.netif_receive_skb_list;
    if direct * 2 >= r.handoff.segments {
        // A driver that calls netif_receive_skb() itself skips GRO. Drivers
        // do so when LRO is on and the device is to coalesce
        // (vmxnet3_rq_rx_complete() when NETIF_F_LRO is set): LRO on and
        // nothing coalesced is the device ignoring its feature.
        let lro = dev.configured(&["rx-lro"]);
        let lro_on = lro.as_ref().is_some_and(|c| c.active);
        let e = format!(
            "{nothing}; the driver handed the packets straight to the stack (netif_receive_skb), bypassing GRO, as drivers do when LRO is on and the device is to coalesce (vmxnet3_rq_rx_complete()){}{others}",
            if lro_on {
                ": LRO is on, and the device coalesced nothing"
            } else {
                ""
            }
        );
        let configured = if lro_on { lro } else { gro };
        return verdict(o, Mechanism::Off, configured, lro_on, e);
    }
    // GRO only runs on the NAPI path; on the backlog it cannot merge.
    if h.netif_rx * 2 >= r.handoff.segments {
        let e = format!(
            "{nothing}{}; packets took the backlog path (netif_rx), where GRO does not run{others}",
            although(&gro)
        );
        return verdict(o, Mechanism::Off, gro, false, e);
    }
    let e = format!("{nothing}{}{results}{others}", although(&gro));
    verdict(o, Mechanism::Off, gro, gro_on, e)
}

/// What GRO said it did with the packets, when the GRO probes saw them:
/// the first thing to look at when nothing merged.
fn gro_results(g: &GroResults) -> String {
    let total = g.total();
    if total == 0 {
        return String::new();
    }
    let share = |n: u64| 100.0 * n as f64 / total as f64;
    format!(
        "; GRO's results: {:.0}% passed up unmerged (GRO_NORMAL), {:.0}% held, {:.0}% merged",
        share(g.normal),
        share(g.held),
        share(g.merged)
    )
}

/// Most TCP packets were already larger than the MTU when the driver handed
/// them up: coalesced before the stack. Who did it depends on the class;
/// on a physical NIC the checksum state tells the style apart (LRO hands up
/// UNNECESSARY, hardware GRO PARTIAL).
fn rx_coalesced_before_stack(
    b: &Blocks,
    dev: &Device,
    large: u64,
    segments: u64,
    others: &str,
) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let (_, _, partial) = csum_shares(&r.handoff.csum);
    let with_gso = r
        .handoff
        .handoff_gso_size
        .count
        .saturating_sub(r.handoff.non_tcp.handoff_large);
    let gso_note = if with_gso * 2 >= large {
        format!(
            "with gso_size {}",
            group(r.handoff.handoff_gso_size.mean().round() as u64)
        )
    } else {
        "without a gso_size".to_string()
    };
    let arrived = format!(
        "{} of {} TCP packets arrived at the driver hand-off already {} on average, {gso_note}",
        group(large),
        group(segments),
        kb(r.handoff.segment_len.mean()),
    );
    match dev.class {
        DeviceClass::Virtual => {
            let e = if partial >= 50.0 {
                format!(
                    "{arrived}: GSO skbs crossed the virtual device intact, nothing to coalesce{others}"
                )
            } else {
                format!(
                    "{arrived}: coalesced before they reached the virtual device (by the NIC or stack they came from){others}"
                )
            };
            let gro = dev.configured(GRO);
            verdict(o, Mechanism::Deferred, gro, false, e)
        }
        DeviceClass::Paravirtual => {
            let (m, whom) = dev.doer("");
            let e = format!("{arrived}: coalesced by {whom}{others}");
            verdict(o, m, dev.configured(HW_GRO), false, e)
        }
        DeviceClass::Physical => {
            let hw = dev.configured(HW_GRO);
            let hw_on = hw.as_ref().is_some_and(|c| c.active);
            let style = if partial >= 50.0 {
                "hardware GRO: merged skbs marked CHECKSUM_PARTIAL"
            } else if with_gso * 2 >= large {
                "LRO"
            } else {
                "LRO that sets no gso_size"
            };
            let e = format!(
                "{arrived}: coalesced by the NIC ({style}){}{others}",
                if hw_on { String::new() } else { although(&hw) }
            );
            verdict(o, Mechanism::Hardware, hw, !hw_on, e)
        }
    }
}

/// Coalescing judged from the skbs after GRO alone: whether packets were
/// merged shows in `gso_segs`, but not whether the NIC or the CPU merged
/// them (an LRO skb and a GRO skb look alike by then).
fn rx_coalescing_per_skb(b: &Blocks, dev: &Device, gro: Option<Configured>) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let tcp = tcp_rx(b);
    if tcp.skbs < MIN_PACKETS {
        let e = format!(
            "only {} TCP skbs received{}",
            group(tcp.skbs),
            others_note(r.after_gro.non_tcp.skbs, "skbs")
        );
        return verdict(o, Mechanism::NotExercised, gro, false, e);
    }
    // Classic tracepoints read no gso_segs after GRO: an empty histogram is
    // not "one segment each".
    let Some(per_skb) = tcp.per_skb else {
        let e = format!(
            "{} skbs after GRO, but this probe set reads no segments per skb there (classic tracepoints), and the driver hand-off is {UNMEASURED}",
            group(r.after_gro.skbs)
        );
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    };
    // A GSO skb that crossed a virtual device whole and a GRO skb look alike
    // here: both multi-segment and CHECKSUM_PARTIAL (tcp_gro_complete()).
    if per_skb >= 1.5 {
        let e = format!(
            "{} TCP skbs after GRO carried {per_skb:.1} segments each: packets were coalesced; whether by the NIC or the CPU shows only at the driver hand-off, {UNMEASURED}",
            group(tcp.skbs)
        );
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    }
    // Coalesced skbs without a gso_segs (LRO that sets no gso_size) are
    // longer than the MTU: not "one segment each".
    if r.after_gro.skb_len.count_above(dev.mtu as u64) * 2 >= tcp.skbs {
        let e = format!(
            "{} TCP skbs after GRO, most longer than the MTU but counted as one segment: coalesced by someone who set no gso_size; whether the NIC shows only at the driver hand-off, {UNMEASURED}",
            group(tcp.skbs)
        );
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    }
    let bulk = match bulk_traffic(
        r.after_gro.skbs,
        "skbs",
        &r.after_gro.skb_len,
        dev,
        "nothing to coalesce",
    ) {
        Ok(bulk) => bulk,
        Err(e) => return verdict(o, Mechanism::NotExercised, gro, false, e),
    };
    let gro_on = gro.as_ref().is_some_and(|c| c.active);
    let e = format!(
        "{} TCP skbs after GRO ({} skbs near MTU size), one segment each: nothing coalesced{}{}",
        group(tcp.skbs),
        group(bulk),
        although(&gro),
        others_note(r.after_gro.non_tcp.skbs, "skbs")
    );
    verdict(o, Mechanism::Off, gro, gro_on, e)
}
