//! The one registration of the probe families: each family's folder, the
//! maps its kernel programs fill, and the block of a period its part goes
//! in. Everything that lists the families is generated from here:
//! `probes.rs` declares their modules and `FAMILIES`, kernel/collect.rs
//! the totals read from their maps, model/period.rs the period's blocks.
//! This module names no other (a leaf), so that all three may use it.

/// The registration, handed to `$then!`: the period's blocks in their
/// NDJSON order, as `block: Type { family: [maps], ... }`, and in each the
/// families whose parts it holds (`probes/<family>/period.rs`, `Part`).
/// A family's maps are `field: kind Value = "MAP"`: `field` is its place
/// in `Totals`, `Value` its map value (`probes/<family>/layout.rs`), and
/// `kind` how the map is kept (kernel/collect.rs, `part!`): `summed` over
/// CPUs, `per_cpu`, or `by_id`. A block of one family is that family's
/// part; a block of several holds one part per family, and its NDJSON
/// object is their fields together. The order is the sinks' order; the
/// attributes are the block's in `Blocks` (a block absent from earlier
/// files reads as empty).
macro_rules! registered {
    ($then:ident) => {
        $then! {
            rx: Rx {
                handoff: [handoff: summed toe_agent_common::HandoffStats = "HANDOFF"],
                gro: [gro: summed toe_agent_common::GroStats = "GRO"],
                after_gro: [skb: summed toe_agent_common::SkbStats = "SKB"],
                tcp: [tcp: summed toe_agent_common::TcpStats = "TCP"],
            },
            tx: Tx {
                transmit: [tx: summed toe_agent_common::TxStats = "TX"],
            },
            softirq: Softirq {
                softirq: [softirq: per_cpu toe_agent_common::SoftirqStats = "SOFTIRQ"],
            },
            napi: Napi {
                napi: [
                    napi: summed toe_agent_common::NapiStats = "NAPI",
                    napi_by_id: by_id toe_agent_common::NapiIdStats = "NAPI_BY_ID",
                ],
            },
            /// Absent from earlier files, as are the blocks below.
            #[serde(default)]
            drops: Drops {
                drops: [drops: summed toe_agent_common::DropStats = "DROPS"],
            },
            #[serde(default)]
            tcp: Tcp {
                retransmit: [retransmit: summed toe_agent_common::RetransmitStats = "RETRANSMIT"],
                tcp_probe: [tcp_probe: summed toe_agent_common::TcpProbeStats = "TCP_PROBE"],
            },
        }
    };
}
pub(crate) use registered;
