//! Transmit offloads, judged on the sender: segmentation (TSO/GSO) and
//! checksum offload, from net_dev_queue (what the stack built) and
//! net_dev_start_xmit (what the driver was given).
use super::*;

/// TCP skbs of more than one segment built by the stack (net_dev_queue) and
/// still whole at the driver (net_dev_start_xmit), and whether IPv6 is the
/// larger share. Classic tracepoints have no gso_segs at net_dev_queue:
/// there a queued skb longer than the MTU counts as multi-segment.
struct TcpGso {
    built: u64,
    intact: u64,
    v6: bool,
    other: u64,
}

fn tcp_gso(b: &Blocks, dev: &Device) -> TcpGso {
    let t = &b.tx;
    let classic = t.segs_per_queued.count == 0;
    let built = if classic {
        t.queued_len.count_above(dev.mtu as u64 + 64)
    } else {
        t.gso_queued.tcp()
    };
    TcpGso {
        built,
        intact: t.gso_xmit.tcp(),
        v6: t.gso_queued.tcp6 + t.gso_xmit.tcp6 > t.gso_queued.tcp4 + t.gso_xmit.tcp4,
        other: t.gso_queued.other.max(t.gso_xmit.other),
    }
}

pub(crate) fn tx_segmentation(b: &Blocks, dev: &Device) -> Verdict {
    let t = &b.tx;
    let o = Offload::TxSegmentation;
    let g = tcp_gso(b, dev);
    // The feature of the address family that carries most of the traffic:
    // tx-tcp6-segmentation governs IPv6 (net/core/dev.c, gso_features_check
    // and NETIF_F_TSO6 in netif_skb_features()).
    let (family, other) = if g.v6 { (TSO6, TSO4) } else { (TSO4, TSO6) };
    let cfg = dev.configured(family).or_else(|| dev.configured(other));
    let tso_on = cfg.as_ref().is_some_and(|c| c.active);
    if t.queued_skbs < MIN_PACKETS && t.xmit_skbs < MIN_PACKETS {
        let e = format!("only {} skbs queued for transmission", group(t.queued_skbs));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let others = others_note(g.other, "multi-segment skbs");
    if !dev.coverage.driver_xmit {
        let e = format!(
            "net_dev_queue saw {} skbs averaging {}, {} TCP skbs with more than one segment; who segments them shows only at net_dev_start_xmit, {UNMEASURED}{others}",
            group(t.queued_skbs),
            kb(t.queued_len.mean()),
            group(g.built)
        );
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if g.built == 0 && g.intact == 0 {
        return tx_single_segments(b, dev, cfg, &others);
    }
    if g.intact * 2 >= g.built.max(1) {
        let (mechanism, whom) = dev.doer("the NIC (TSO)");
        let e = format!(
            "{} multi-segment TCP skbs reached the driver intact ({:.1} segments and {} each on average): segmentation done by {whom}{}{others}",
            group(g.intact),
            t.segs_per_xmit.mean(),
            kb(t.xmit_len.mean()),
            if tso_on {
                String::new()
            } else {
                although(&cfg)
            }
        );
        return verdict(o, mechanism, cfg, !tso_on, e);
    }
    if dev.mtu as u64 * 2 > GSO_MAX_SIZE {
        return tx_split_over_gso_limit(b, dev, &g, cfg, &others);
    }
    // TCP sockets always get NETIF_F_GSO (net/core/sock.c, sk_setup_caps()),
    // so with tx-generic-segmentation off the kernel still segments: that
    // flag is then the one that disagrees with the observation.
    let gso = dev.configured(GSO);
    let gso_off = gso.as_ref().is_some_and(|c| !c.active);
    let (cfg, mismatch, why) = if tso_on {
        let why = although(&cfg);
        (cfg, true, why)
    } else if gso_off {
        let why = format!("{} (TCP always uses GSO)", although(&gso));
        (gso, true, why)
    } else {
        let note = not_active_note(&cfg);
        (cfg, false, note)
    };
    let e = format!(
        "net_dev_queue saw {} TCP skbs of more than one segment ({} skbs averaging {}); the driver received {} skbs averaging {}, {} of them still multi-segment: segmentation done in software (GSO){why}{others}",
        group(g.built),
        group(t.queued_skbs),
        kb(t.queued_len.mean()),
        group(t.xmit_skbs),
        kb(t.xmit_len.mean()),
        group(g.intact),
    );
    verdict(o, Mechanism::Software, cfg, mismatch, e)
}

/// With an MTU over 32 KB (loopback's 64 KB) an skb of two segments is
/// already longer than the 64 KB GSO limit, and gso_features_check()
/// (net/core/dev.c) clears the device's GSO features for an skb that long:
/// the kernel splits it in software whatever TSO says. No mismatch; and
/// when such skbs are a small part of the traffic, nothing else needed
/// segmenting.
fn tx_split_over_gso_limit(
    b: &Blocks,
    dev: &Device,
    g: &TcpGso,
    cfg: Option<Configured>,
    others: &str,
) -> Verdict {
    let t = &b.tx;
    let o = Offload::TxSegmentation;
    let e = format!(
        "{} of {} skbs at net_dev_queue had more than one segment, and the driver received {} still multi-segment: with an MTU of {} such skbs exceed the 64 KB GSO limit and the kernel splits them whatever TSO says (gso_features_check()){}{others}",
        group(g.built),
        group(t.queued_skbs),
        group(g.intact),
        group(dev.mtu as u64),
        if g.built * 10 < t.queued_skbs {
            "; the other skbs were one segment each: nothing needed segmenting"
        } else {
            ""
        }
    );
    let mechanism = if g.built * 10 < t.queued_skbs {
        Mechanism::NotExercised
    } else {
        Mechanism::Software
    };
    verdict(o, mechanism, cfg, false, e)
}

/// No skb needed segmenting. Either TCP built MTU-sized skbs itself
/// (segmentation `off`, a mismatch when TSO is on), or the MTU is so large
/// that one segment per skb is all GSO could build (loopback's 64 KB):
/// nothing to judge.
fn tx_single_segments(b: &Blocks, dev: &Device, cfg: Option<Configured>, others: &str) -> Verdict {
    let t = &b.tx;
    let o = Offload::TxSegmentation;
    let small = bulk_traffic(
        t.xmit_skbs,
        "skbs",
        &t.xmit_len,
        dev,
        "no bulk transfer to judge on",
    );
    if let Err(e) = small {
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    if dev.mtu as u64 * 2 > GSO_MAX_SIZE {
        let e = format!(
            "net_dev_queue saw {} skbs of up to {} B, each one segment: with an MTU of {} a GSO skb (at most 64 KB) holds only one, so nothing needed segmenting{others}",
            group(t.queued_skbs),
            group(t.queued_len.max),
            group(dev.mtu as u64)
        );
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let tso_on = cfg.as_ref().is_some_and(|c| c.active);
    let e = format!(
        "net_dev_queue saw {} skbs, none with more than one segment (largest {} B): the stack built MTU-sized packets, nobody segments{}{}{others}",
        group(t.queued_skbs),
        group(t.queued_len.max),
        although(&cfg),
        not_active_note(&cfg)
    );
    verdict(o, Mechanism::Off, cfg, tso_on, e)
}

/// Checksum offload is judged on packets of every protocol: the same
/// features govern TCP's and UDP's checksums (NETIF_F_HW_CSUM / IP_CSUM /
/// IPV6_CSUM, include/linux/netdev_features.h).
pub(crate) fn tx_checksum(b: &Blocks, dev: &Device) -> Verdict {
    let c = &b.tx.csum;
    let cfg = dev.configured(TX_CSUM);
    let on = cfg.as_ref().is_some_and(|c| c.active);
    let o = Offload::TxChecksum;
    if !dev.coverage.driver_xmit {
        let e = format!(
            "the checksum state the driver receives shows only at net_dev_start_xmit, {UNMEASURED}"
        );
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if c.total() < MIN_PACKETS {
        let e = format!("only {} skbs reached the driver", group(c.total()));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let (_, none, partial) = csum_shares(c);
    if partial >= 50.0 {
        let (mechanism, whom) = dev.doer("the NIC");
        let e = format!(
            "{partial:.1}% of {} skbs reached the driver with ip_summed=PARTIAL: checksums computed by {whom}{}",
            group(c.total()),
            if on { String::new() } else { although(&cfg) }
        );
        return verdict(o, mechanism, cfg, !on, e);
    }
    let e = format!(
        "{none:.1}% of {} skbs reached the driver with ip_summed=NONE: checksums computed by the CPU{}",
        group(c.total()),
        if on { although(&cfg) } else { String::new() }
    );
    verdict(o, Mechanism::Software, cfg, on, e)
}
