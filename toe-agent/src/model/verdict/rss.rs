//! Receive-side scaling: how packets spread over the receive queues the
//! driver recorded.
use super::*;

/// A queue "takes part" with at least this share of the packets; the
/// verdict is spreading when the queues other than the busiest together
/// carry at least [`RSS_SPREAD_PCT`].
const RSS_QUEUE_PCT: f64 = 1.0;
const RSS_SPREAD_PCT: f64 = 5.0;

/// Packets spread over the queues in `used` (busiest first): who spread
/// them, and the evidence.
fn spread(
    used: &[(u32, u64)],
    total: u64,
    what: &str,
    queues: &str,
    dev: &Device,
) -> (Mechanism, String) {
    let shown: Vec<String> = used
        .iter()
        .take(4)
        .map(|(q, c)| format!("queue {q} {:.0}%", pct(*c, total)))
        .collect();
    let more = if used.len() > 4 {
        format!(", {} more", used.len() - 4)
    } else {
        String::new()
    };
    let (mechanism, whom) = match dev.class {
        DeviceClass::Virtual => (
            Mechanism::Deferred,
            "queues chosen before the virtual device (by its sender's transmit queue)".to_string(),
        ),
        _ => {
            let (m, w) = dev.doer("the NIC");
            (m, format!("{w} hashes flows to queues"))
        }
    };
    let e = format!(
        "{what} spread over {} receive queues{queues} ({}{more}): {whom}",
        used.len(),
        shown.join(", ")
    );
    (mechanism, e)
}

pub(crate) fn rss(b: &Blocks, dev: &Device) -> Verdict {
    let r = &b.rx;
    let o = Offload::Rss;
    let cfg = dev.configured(RXHASH);
    // Without the hand-off, the skbs after GRO carry the same queue.
    let (what, total, by_queue, unrecorded) = if dev.coverage.handoff {
        (
            "packets",
            r.handoff.segments,
            &r.handoff.queues,
            r.handoff.queue_unrecorded,
        )
    } else {
        (
            "skbs",
            r.after_gro.skbs,
            &r.after_gro.skb_queues,
            r.after_gro.skb_queue_unrecorded,
        )
    };
    if total < MIN_PACKETS {
        let e = format!("only {} {what} received", group(total));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    if by_queue.is_empty() && unrecorded > 0 {
        // veth and the backlog path: no driver queue to speak of.
        let e = format!(
            "the device recorded no receive queue for its {what} (queue_mapping 0: skb_record_rx_queue() was not called): one path, no spreading"
        );
        return verdict(o, Mechanism::Off, cfg, false, e);
    }
    if by_queue.is_empty() {
        // Classic tracepoints carry no queue.
        let e =
            format!("the receive queue of each skb is not read by this probe set, {UNMEASURED}");
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    let queues = dev
        .rx_queues
        .map(|q| format!(" of {q}"))
        .unwrap_or_default();
    let mut used: Vec<(u32, u64)> = by_queue
        .iter()
        .copied()
        .filter(|(_, c)| pct(*c, total) >= RSS_QUEUE_PCT)
        .collect();
    used.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (busiest, busiest_n) = used.first().copied().unwrap_or((0, total));
    // Many evenly loaded queues each hold a small share: judge the spread by
    // what the busiest queue did not get, not by a per-queue threshold.
    if used.len() >= 2 && pct(total - busiest_n, total) >= RSS_SPREAD_PCT {
        let (mechanism, e) = spread(&used, total, what, &queues, dev);
        return verdict(o, mechanism, cfg, false, e);
    }
    let share = if busiest_n == total {
        format!("all {what}")
    } else {
        format!("{:.1}% of {what}", pct(busiest_n, total))
    };
    if dev.rps {
        let e = format!(
            "{share} arrived on receive queue {busiest}{queues}; RPS (rps_cpus) spreads them over CPUs in software"
        );
        return verdict(o, Mechanism::Software, cfg, false, e);
    }
    let e = format!(
        "{share} arrived on receive queue {busiest}{queues}: no spreading (one flow always hashes to one queue; judge RSS with several flows)"
    );
    verdict(o, Mechanism::Off, cfg, false, e)
}
