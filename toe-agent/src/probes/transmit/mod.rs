//! The transmit path: `net_dev_queue` at the top of __dev_queue_xmit()
//! (before validate_xmit_skb() may segment or checksum in software) and
//! `net_dev_start_xmit` in xmit_one(), once per skb the driver receives
//! (net/core/dev.c).
pub(crate) mod period;

use crate::{
    kernel::btf::OffsetGroup,
    model::catalogue::{Needs, Quantity, Unit, by_queue, by_state},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "transmit",
    programs: &[
        Spec::btf("net_dev_queue").or_classic("net", "net_dev_queue_tp"),
        Spec::btf("net_dev_start_xmit")
            .or_classic("net", "net_dev_start_xmit_tp")
            .per_segment(),
    ],
    reads: &[OffsetGroup::Skb, OffsetGroup::Dev],
    learn: None,
    quantities: &[
        Quantity::count(
            "tx.queued_skbs",
            "toe_tx_queued_skbs",
            "TX skbs queued",
            "skbs at net_dev_queue (before GSO).",
            Unit::Skbs,
            Needs::Always,
            |b| b.tx.queued_skbs,
        ),
        Quantity::split(
            "tx.queued_csum",
            "toe_tx_csum",
            "TX ip_summed at net_dev_queue",
            "Transmitted skbs by ip_summed state.",
            Unit::Skbs,
            Needs::Always,
            "state",
            |b| by_state(&b.tx.queued_csum),
        )
        .with(&[("stage", "queue")]),
        Quantity::split(
            "tx.gso_queued",
            "toe_tx_gso_skbs",
            "TX multi-segment skbs queued",
            "Multi-segment skbs by GSO class (tcp4, tcp6, other).",
            Unit::Skbs,
            Needs::Always,
            "class",
            |b| b.tx.gso_queued.by_class(),
        )
        .with(&[("stage", "queue")]),
        Quantity::hist(
            "tx.queued_len",
            "toe_tx_queued_bytes",
            "TX skb length before GSO (net_dev_queue)",
            "Length of skbs at net_dev_queue (before GSO).",
            Unit::Bytes,
            Needs::Always,
            |b| &b.tx.queued_len,
        ),
        Quantity::hist(
            "tx.segs_per_queued",
            "toe_tx_segments_per_queued",
            "TX segments per queued skb",
            "Segments the stack asked for per skb at net_dev_queue (gso_segs).",
            Unit::Segments,
            Needs::Always,
            |b| &b.tx.segs_per_queued,
        ),
        Quantity::count(
            "tx.xmit_skbs",
            "toe_tx_xmit_skbs",
            "TX skbs to the driver",
            "skbs handed to the driver (net_dev_start_xmit).",
            Unit::Skbs,
            Needs::DriverXmit,
            |b| b.tx.xmit_skbs,
        ),
        Quantity::count(
            "tx.wire_segments",
            "toe_tx_wire_segments",
            "TX wire segments",
            "Segments the device must put on the wire.",
            Unit::Segments,
            Needs::DriverXmit,
            |b| b.tx.wire_segments,
        ),
        Quantity::count(
            "tx.bytes",
            "toe_tx_bytes",
            "TX bytes to the driver",
            "Bytes handed to the driver.",
            Unit::Bytes,
            Needs::DriverXmit,
            |b| b.tx.bytes,
        ),
        Quantity::split(
            "tx.csum",
            "toe_tx_csum",
            "TX ip_summed at the driver",
            "Transmitted skbs by ip_summed state.",
            Unit::Skbs,
            Needs::DriverXmit,
            "state",
            |b| by_state(&b.tx.csum),
        )
        .with(&[("stage", "xmit")]),
        Quantity::split(
            "tx.gso_xmit",
            "toe_tx_gso_skbs",
            "TX multi-segment skbs to the driver",
            "Multi-segment skbs by GSO class (tcp4, tcp6, other).",
            Unit::Skbs,
            Needs::DriverXmit,
            "class",
            |b| b.tx.gso_xmit.by_class(),
        )
        .with(&[("stage", "xmit")]),
        Quantity::split(
            "tx.queues",
            "toe_tx_queue_skbs",
            "TX skbs per transmit queue",
            "skbs handed to the driver, by transmit queue.",
            Unit::Skbs,
            Needs::DriverXmit,
            "queue",
            |b| by_queue(&b.tx.queues),
        ),
        Quantity::hist(
            "tx.xmit_len",
            "toe_tx_xmit_bytes",
            "TX skb length at driver (net_dev_start_xmit)",
            "Length of skbs handed to the driver (after GSO).",
            Unit::Bytes,
            Needs::DriverXmit,
            |b| &b.tx.xmit_len,
        ),
        Quantity::hist(
            "tx.segs_per_xmit",
            "toe_tx_segments_per_xmit",
            "TX segments per driver skb",
            "Segments per skb handed to the driver.",
            Unit::Segments,
            Needs::DriverXmit,
            |b| &b.tx.segs_per_xmit,
        ),
        Quantity::hist(
            "tx.xmit_gso_size",
            "toe_tx_xmit_gso_size_bytes",
            "TX gso_size at the driver",
            "gso_size of the multi-segment skbs handed to the driver: the payload per segment the device is asked to cut them at (the MSS, for TSO).",
            Unit::Bytes,
            Needs::DriverXmit,
            |b| &b.tx.xmit_gso_size,
        ),
    ],
};

// How the family's map value sums over CPUs and differences over time.
crate::kernel::collect::counters!(toe_agent_common::TxStats {
    queued_len,
    queued_csum,
    segs_per_queued,
    xmit_len,
    xmit_csum,
    segs_per_xmit,
    queue,
    queued_gso,
    xmit_gso,
    xmit_gso_size,
});
