//! What the agent should say about each QEMU NIC model, and why: every row
//! cites the guest driver's function and QEMU's device-model function that
//! make it so (QEMU 7.2, Debian bookworm's; docs/vm.md has the evidence).
//! The same on Debian 6.1 and 6.12: the drivers' paths did not change.

/// `(mechanism, mismatch)` for tx_segmentation, tx_checksum, rx_coalescing,
/// rx_checksum and rss, in that order.
type Verdicts = [(&'static str, bool); 5];

pub(crate) struct Expected {
    /// The QEMU model, with `+variant` for a variant row.
    pub(crate) model: &'static str,
    pub(crate) verdicts: Verdicts,
    pub(crate) because: &'static str,
}

/// Variant rows the default matrix runs on its first kernel: `(model,
/// variant, shell command run in the guest before tracing)`.
pub(crate) const VARIANTS: &[(&str, &str, &str)] = &[
    (
        "e1000e",
        "tso-off",
        "ip netns exec toea ethtool -K toea tso off",
    ),
    (
        "vmxnet3",
        "tso-off",
        "ip netns exec toea ethtool -K toea tso off",
    ),
];

pub(crate) const EXPECTED: &[Expected] = &[
    Expected {
        model: "e1000e",
        verdicts: [
            ("hardware", false),
            ("hardware", false),
            ("off", false),
            ("software", false),
            ("off", false),
        ],
        because: "the driver gets whole TSO skbs (e1000_tso()), but QEMU's model IP-fragments them (hw/net/net_tx_pkt.c, net_tx_pkt_do_sw_fragmentation()); GRO never merges fragments (inet_gro_receive() flushes at ip_is_fragment()) and e1000_rx_checksum() gets no TCPCS for them (e1000e_verify_csum_in_sw() → net_rx_pkt_validate_l4_csum() refuses fragments)",
    },
    Expected {
        model: "vmxnet3",
        verdicts: [
            ("host", false),
            ("host", false),
            ("off", false),
            ("software", false),
            ("off", false),
        ],
        because: "paravirtual; with LRO on vmxnet3_rq_rx_complete() calls netif_receive_skb() and skips GRO, but the packets are IP fragments (QEMU's vmxnet3 model transmits through net_tx_pkt_send() as well), which no device or GRO merges; vmxnet3_rx_update_descr() marks them checksum-not-calculated",
    },
    Expected {
        model: "virtio-net-pci",
        verdicts: [
            ("software", true),
            ("software", false),
            ("software", false),
            ("software", true),
            ("off", false),
        ],
        because: "behind a hub QEMU offers no CSUM/GSO features (hw/net/virtio-net.c, virtio_net_get_features() without a vnet-header peer): the guest segments and checksums in software with GSO off [requested on], MTU-sized CHECKSUM_NONE packets merged by GRO, while rx-checksum reads on [fixed] (virtnet_probe())",
    },
    Expected {
        model: "e1000",
        verdicts: [
            ("hardware", false),
            ("hardware", false),
            ("software", false),
            ("software", false),
            ("off", false),
        ],
        because: "e1000_tso() hands TSO to the model, which segments for real (hw/net/e1000.c, process_tx_desc() per-segment headers); GRO merges; the driver leaves rx-checksum off by default (in hw_features, not features), so CHECKSUM_NONE is as configured",
    },
    Expected {
        model: "rtl8139",
        verdicts: [
            ("hardware", false),
            ("hardware", false),
            ("software", false),
            ("software", true),
            ("off", false),
        ],
        because: "8139cp's large send is segmented for real by the model (rtl8139_cplus_transmit_one()); its receive checksum is a stub (rtl8139_do_receive(): CPlusRxChkSum only has a comment), so cp_rx_csum_ok() never passes a packet although rx-checksum is on",
    },
    Expected {
        model: "veth",
        verdicts: [
            ("deferred", false),
            ("deferred", false),
            ("deferred", false),
            ("deferred", false),
            ("off", false),
        ],
        because: "a veth pair in the guest: GSO skbs cross it intact through netif_rx (veth_xmit() → __netif_rx() without NAPI), CHECKSUM_PARTIAL, no receive queue recorded",
    },
    Expected {
        model: "e1000e+tso-off",
        verdicts: [
            ("software", false),
            ("hardware", false),
            ("software", false),
            ("hardware", false),
            ("off", false),
        ],
        because: "with TSO off the sender's kernel segments (skb_gso_segment()), real TCP segments cross the hub, the model verifies their checksums (e1000e_verify_csum_in_sw()) and e1000_rx_checksum() marks them UNNECESSARY; GRO merges",
    },
    Expected {
        model: "vmxnet3+tso-off",
        verdicts: [
            ("software", false),
            ("host", false),
            ("off", true),
            ("software", true),
            ("off", false),
        ],
        because: "real TCP segments now, but with LRO on vmxnet3_rq_rx_complete() hands them to netif_receive_skb() past GRO and QEMU's model never sends a VMXNET3_CDTYPE_RXCOMP_LRO completion: LRO on, nothing coalesced; every packet checksum-not-calculated (vmxnet3_rx_update_descr()) although rx-checksum is on",
    },
];

/// The expectation for `model`, if the matrix has one.
pub(crate) fn expected(model: &str) -> Option<&'static Expected> {
    EXPECTED.iter().find(|e| e.model == model)
}

/// Where the row's verdicts differ from the expectation, as one line; None
/// when they agree.
pub(crate) fn differences(model: &str, got: &[(String, String, bool)]) -> Option<String> {
    let want = expected(model)?;
    let diffs: Vec<String> = want
        .verdicts
        .iter()
        .zip(got)
        .filter(|((m, mm), (_, gm, gmm))| m != gm || mm != gmm)
        .map(|((m, mm), (o, gm, gmm))| {
            let show = |m: &str, mm: bool| format!("{m}{}", if mm { " MISMATCH" } else { "" });
            format!("{o}: {} expected, {} given", show(m, *mm), show(gm, *gmm))
        })
        .collect();
    if got.len() != want.verdicts.len() {
        return Some(format!("{} verdicts instead of 5", got.len()));
    }
    (!diffs.is_empty()).then(|| format!("{} (expected because {})", diffs.join("; "), want.because))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_offload() {
        let got: Vec<(String, String, bool)> = [
            ("tx_segmentation", "hardware", false),
            ("tx_checksum", "hardware", false),
            ("rx_coalescing", "off", true),
            ("rx_checksum", "software", false),
            ("rss", "off", false),
        ]
        .iter()
        .map(|(o, m, mm)| (o.to_string(), m.to_string(), *mm))
        .collect();
        let d = differences("e1000e", &got).unwrap();
        assert!(
            d.starts_with("rx_coalescing: off expected, off MISMATCH given (expected because "),
            "{d}"
        );
        assert!(differences("nosuch", &got).is_none());
        let mut fixed = got.clone();
        fixed[2].2 = false;
        assert!(differences("e1000e", &fixed).is_none());
    }

    /// Each expectation cites the driver and device-model code behind it.
    #[test]
    fn every_expectation_cites_its_source() {
        for e in EXPECTED {
            assert!(e.because.matches("()").count() >= 2, "{}", e.model);
        }
    }

    #[test]
    fn every_model_and_variant_has_an_expectation() {
        for (m, _) in super::super::MODELS {
            assert!(expected(m).is_some(), "{m}");
        }
        for (m, v, _) in VARIANTS {
            assert!(expected(&format!("{m}+{v}")).is_some(), "{m}+{v}");
        }
    }
}
