//! The measurement blocks as users see them: NDJSON records and the
//! terminal view are both rendered from these (docs/ndjson.md). Each probe
//! family makes its part of them (`probes/<family>/period.rs`) from its
//! maps; the registration (probes/registry.rs) says which block each part
//! goes in, and this module puts them together.
use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};
use serde_json::{Map, Value};

use crate::kernel::collect::Totals;

/// A block several families fill, as one JSON object: their parts' fields
/// together. A nested object two parts both have (`rx.non_tcp`) holds the
/// fields of both; a field two parts both write is a mistake, refused.
fn merge(into: &mut Map<String, Value>, part: Value) -> Result<(), String> {
    let Value::Object(fields) = part else {
        return Err(format!("a part of a block is not an object: {part}"));
    };
    for (key, value) in fields {
        match (into.get_mut(&key), value) {
            (None, value) => {
                into.insert(key, value);
            }
            (Some(Value::Object(inner)), value @ Value::Object(_)) => merge(inner, value)?,
            (Some(_), _) => return Err(format!("two families write `{key}`")),
        }
    }
    Ok(())
}

/// One block of a period from [`registered`](crate::probes::registry):
/// the family's part itself when one family fills it, else a struct with
/// a part per family, whose JSON object is the parts' fields together.
/// Either way, a function of the same name makes it from the totals.
macro_rules! block {
    ($section:ident: $block:ident {
        $family:ident: [$($field:ident: $kind:ident $t:ty = $map:literal),+ $(,)?] $(,)?
    }) => {
        pub(crate) type $block = crate::probes::$family::period::Part;

        fn $section(t: &Totals) -> $block {
            <$block>::of($(&t.$field),+)
        }
    };
    ($section:ident: $block:ident {
        $($family:ident: [$($field:ident: $kind:ident $t:ty = $map:literal),+ $(,)?]),+ $(,)?
    }) => {
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $block {
            $(pub $family: crate::probes::$family::period::Part,)+
        }

        fn $section(t: &Totals) -> $block {
            $block {
                $($family: crate::probes::$family::period::Part::of($(&t.$field),+),)+
            }
        }

        impl Serialize for $block {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut fields = Map::new();
                $(
                    let part = serde_json::to_value(&self.$family).map_err(ser::Error::custom)?;
                    merge(&mut fields, part).map_err(ser::Error::custom)?;
                )+
                fields.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $block {
            /// Each part takes its fields from the object and leaves the
            /// others' alone.
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let fields = Value::deserialize(d)?;
                Ok($block {
                    $($family: Deserialize::deserialize(&fields).map_err(de::Error::custom)?,)+
                })
            }
        }
    };
}

/// The blocks, from [`registered`](crate::probes::registry).
macro_rules! blocks {
    ($($(#[$attr:meta])* $section:ident: $block:ident { $($families:tt)+ }),+ $(,)?) => {
        $(block!($section: $block { $($families)+ });)+

        /// Everything measured over one period (an interval or the whole
        /// run).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct Blocks {
            $($(#[$attr])* pub $section: $block,)+
            /// How much of the period the per-segment programs ran (absent
            /// from earlier files, which counted every packet).
            #[serde(default)]
            pub sample: Sampling,
        }

        impl Blocks {
            pub fn from_totals(t: &Totals) -> Self {
                Blocks {
                    $($section: $section(t),)+
                    sample: Sampling::default(),
                }
            }
        }
    };
}

crate::probes::registry::registered!(blocks);

impl Rx {
    /// Packets the driver handed up, from the skbs after GRO and the
    /// segments they carry (`gso_segs`): whole even when the hand-off is
    /// sampled. The hand-off count where it is larger (classic
    /// tracepoints have no gso_segs).
    pub(crate) fn whole_segments(&self) -> u64 {
        self.after_gro.segs_per_skb.sum.max(self.handoff.segments)
    }
}

/// How much of a period the per-segment programs ran (docs/sampling.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// The share of time asked for (`--sample`): 1 always, 0 never
    /// (`--per-skb`, or no per-segment probe attached).
    pub fraction: f64,
    /// Seconds the sampling windows were open in the period, and how many
    /// closed in it (a window open across a reading counts where it
    /// closes; with a fraction of 1 none ever does).
    pub secs: f64,
    pub windows: u32,
}

impl Default for Sampling {
    /// Files written before sampling existed counted every packet.
    fn default() -> Self {
        Sampling {
            fraction: 1.0,
            secs: 0.0,
            windows: 0,
        }
    }
}

impl Sampling {
    /// Does the period hold per-segment counts only from windows?
    pub(crate) fn partial(&self) -> bool {
        self.fraction < 1.0
    }
}

/// `n` events over `secs` seconds, per second (0 for an empty period).
pub(crate) fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// The rates a period's blocks give, derived here once for the view,
/// `report --compare` and the plots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    /// Bytes delivered after GRO, in Gbit/s.
    pub(crate) rx_gbps: f64,
    /// Bytes handed to the driver, in Gbit/s; queued bytes when the
    /// driver's hook is not attached.
    pub(crate) tx_gbps: f64,
    /// Mean segments per skb after GRO.
    pub(crate) segs_per_skb: f64,
    /// NET_RX softirq time, in % of one CPU, summed over CPUs and of the
    /// busiest CPU.
    pub(crate) net_rx_pct: f64,
    pub(crate) net_rx_busiest_pct: f64,
}

impl Rates {
    pub(crate) fn of(b: &Blocks, secs: f64, driver_xmit: bool) -> Rates {
        let gbps = |bytes: u64| per_second(bytes, secs) * 8e-9;
        let pct = |ns: u64| per_second(ns, secs) * 1e-7;
        let busiest = b.softirq.net_rx.per_cpu.iter().map(|c| c.time_ns).max();
        Rates {
            rx_gbps: gbps(b.rx.after_gro.bytes),
            // The driver's bytes only when every packet reached the
            // program that counts them.
            tx_gbps: gbps(if driver_xmit && !b.sample.partial() {
                b.tx.bytes
            } else {
                b.tx.queued_len.sum
            }),
            segs_per_skb: b.rx.after_gro.segs_per_skb.mean(),
            net_rx_pct: pct(b.softirq.net_rx.time_ns),
            net_rx_busiest_pct: pct(busiest.unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::summary::tests::hist;

    #[test]
    fn a_block_of_several_parts_is_one_object_of_their_fields() {
        use serde_json::json;
        let mut block = Map::new();
        merge(&mut block, json!({"a": 1, "non_tcp": {"x": 1}})).unwrap();
        merge(&mut block, json!({"b": 2, "non_tcp": {"y": 2}})).unwrap();
        assert_eq!(
            Value::Object(block.clone()),
            json!({"a": 1, "non_tcp": {"x": 1, "y": 2}, "b": 2})
        );
        // Two families writing one field is refused, nested or not.
        assert!(merge(&mut block, json!({"a": 3})).is_err());
        assert!(merge(&mut block, json!({"non_tcp": {"x": 3}})).is_err());
    }

    #[test]
    fn blocks_derive_counts_from_histograms() {
        let mut t = Totals::default();
        t.handoff.segment_len = hist(&[(1448, 340)]);
        t.skb.skb_len = hist(&[(49_232, 10)]);
        t.skb.segs_per_skb = hist(&[(34, 10)]);
        t.tx.xmit_len = hist(&[(1514, 30), (66_000, 2)]);
        t.tx.segs_per_xmit = hist(&[(1, 30), (45, 2)]);
        let b = Blocks::from_totals(&t);
        assert_eq!(b.rx.handoff.segments, 340);
        assert_eq!(b.rx.after_gro.skbs, 10);
        assert_eq!(b.rx.after_gro.bytes, 492_320);
        assert_eq!(b.tx.xmit_skbs, 32);
        assert_eq!(b.tx.wire_segments, 120);
        assert_eq!(b.tx.bytes, 1514 * 30 + 132_000);
    }
}
