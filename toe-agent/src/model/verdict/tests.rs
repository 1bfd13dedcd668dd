//! The rules on recorded and synthetic totals: one test per case a real
//! device produced or a driver's source says it produces.
use super::*;
use crate::{
    kernel::collect::Totals,
    sys::ethtool::{Feature, Features},
};
use toe_agent_common::{GSO_OTHER, GSO_TCP4, Hist, hist::bucket_index};

fn add(h: &mut Hist, v: u64, n: u64) {
    h.buckets[bucket_index(v)] += n;
    h.sum += v * n;
}

fn features(on: &[&str], off: &[&str]) -> Features {
    let f = |name: &&str, active: bool| Feature {
        name: name.to_string(),
        available: true,
        requested: active,
        active,
        never_changed: false,
    };
    Features(
        on.iter()
            .map(|n| f(n, true))
            .chain(off.iter().map(|n| f(n, false)))
            .collect(),
    )
}

fn veth(on: &[&str], off: &[&str]) -> Device {
    Device {
        mtu: 1500,
        driver: "veth".into(),
        class: DeviceClass::Virtual,
        features: Some(features(on, off)),
        rx_queues: Some(1),
        rps: false,
        coverage: Coverage::default(),
    }
}

/// Sender with software GSO: 60K skbs of ~49 KB (34 segments) become
/// 2.05M MTU-sized ones at the driver, checksum left to the device.
fn software_gso() -> Totals {
    let mut t = Totals::default();
    add(&mut t.tx.queued_len, 49_000, 60_000);
    add(&mut t.tx.segs_per_queued, 34, 60_000);
    t.tx.queued_gso[GSO_TCP4] = 60_000;
    t.tx.queued_csum[3] = 60_000;
    add(&mut t.tx.xmit_len, 1514, 2_040_000);
    add(&mut t.tx.segs_per_xmit, 1, 2_040_000);
    t.tx.xmit_csum[3] = 2_040_000;
    t
}

/// Receiver on the NAPI path: MTU-sized hand-offs merged ~34 to 1.
fn software_gro(csum_state: usize) -> Totals {
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 1500, 2_040_000);
    t.handoff.segment_csum[csum_state] = 2_040_000;
    t.handoff.handoff_by_hook[0] = 2_040_000;
    t.handoff.queue[0] = 2_040_000;
    add(&mut t.skb.skb_len, 49_000, 60_000);
    add(&mut t.skb.segs_per_skb, 34, 60_000);
    t
}

/// What `--per-skb` leaves: the per-skb hooks' counts only.
fn per_skb_only(t: &Totals) -> Totals {
    let mut p = Totals::default();
    p.tx.queued_len = t.tx.queued_len;
    p.tx.segs_per_queued = t.tx.segs_per_queued;
    p.tx.queued_csum = t.tx.queued_csum;
    p.tx.queued_gso = t.tx.queued_gso;
    p.skb.skb_len = t.skb.skb_len;
    p.skb.segs_per_skb = t.skb.segs_per_skb;
    p.skb.skb_csum = t.skb.skb_csum;
    p
}

fn per_skb_veth(on: &[&str], off: &[&str]) -> Device {
    Device {
        coverage: Coverage {
            handoff: false,
            handoff_missing: 0,
            driver_xmit: false,
        },
        ..veth(on, off)
    }
}

#[test]
fn per_skb_probe_set_says_what_it_cannot_see() {
    let mut t = software_gso();
    t.add(&software_gro(0));
    // What GRO hands up is CHECKSUM_PARTIAL, whoever verified the segments.
    t.skb.skb_csum[3] = 60_000;
    let b = Blocks::from_totals(&per_skb_only(&t));
    let dev = per_skb_veth(&["tx-tcp-segmentation", "rx-gro", "rx-checksum"], &[]);
    let v = judge(&b, &dev);
    let got: Vec<(Mechanism, bool)> = v.iter().map(|v| (v.mechanism, v.mismatch)).collect();
    assert_eq!(got, [(Mechanism::NotMeasured, false); 5]);
    assert_eq!(
        v[0].evidence,
        "net_dev_queue saw 60,000 skbs averaging 47.9 KB, 60,000 TCP skbs with more than one segment; who segments them shows only at net_dev_start_xmit, not attached (--per-skb, or missing from this kernel)"
    );
    assert_eq!(
        v[2].evidence,
        "60,000 TCP skbs after GRO carried 34.0 segments each: packets were coalesced; whether by the NIC or the CPU shows only at the driver hand-off, not attached (--per-skb, or missing from this kernel)"
    );
    for i in [1, 3, 4] {
        assert!(v[i].evidence.ends_with(UNMEASURED), "{}", v[i].evidence);
    }
}

#[test]
fn per_skb_probe_set_still_sees_that_nothing_coalesced() {
    let mut t = Totals::default();
    add(&mut t.skb.skb_len, 1500, 50_000);
    add(&mut t.skb.segs_per_skb, 1, 50_000);
    let b = Blocks::from_totals(&t);
    let v = rx_coalescing(&b, &per_skb_veth(&["rx-gro"], &[]));
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, true));
    assert_eq!(
        v.evidence,
        "50,000 TCP skbs after GRO (50,000 skbs near MTU size), one segment each: nothing coalesced although rx-gro is on"
    );
    // Too little traffic is still not_exercised, not not_measured.
    let quiet = rx_coalescing(&Blocks::default(), &per_skb_veth(&["rx-gro"], &[]));
    assert_eq!(quiet.mechanism, Mechanism::NotExercised);
}

#[test]
fn per_skb_probe_set_judges_rss_from_the_skbs_queues() {
    let mut t = Totals::default();
    add(&mut t.skb.skb_len, 49_000, 30_000);
    add(&mut t.skb.segs_per_skb, 34, 30_000);
    t.skb.skb_queue[2] = 14_000;
    t.skb.skb_queue[5] = 16_000;
    let b = Blocks::from_totals(&t);
    let nic = Device {
        rx_queues: Some(8),
        driver: "ice".into(),
        class: DeviceClass::Physical,
        ..per_skb_veth(&["rx-hashing"], &[])
    };
    let v = rss(&b, &nic);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
    assert_eq!(
        v.evidence,
        "skbs spread over 2 receive queues of 8 (queue 4 53%, queue 1 47%): the NIC hashes flows to queues"
    );
    // Classic tracepoints count skbs but read no queue.
    t.skb.skb_queue = [0; toe_agent_common::MAX_QUEUES];
    let v = rss(&Blocks::from_totals(&t), &nic);
    assert_eq!(v.mechanism, Mechanism::NotMeasured);
}

#[test]
fn no_traffic_is_not_exercised() {
    let v = judge(&Blocks::from_totals(&Totals::default()), &veth(&[], &[]));
    assert_eq!(v.len(), 5);
    assert!(
        v.iter()
            .all(|x| x.mechanism == Mechanism::NotExercised && !x.mismatch),
        "{v:?}"
    );
    assert!(checks(&Blocks::default(), 1.0).is_empty());
}

#[test]
fn software_gso_with_tso_off_is_expected() {
    let b = Blocks::from_totals(&software_gso());
    let dev = veth(
        &["tx-generic-segmentation", "tx-checksum-ip-generic"],
        &["tx-tcp-segmentation"],
    );
    let v = tx_segmentation(&b, &dev);
    assert_eq!(v.mechanism, Mechanism::Software);
    assert!(!v.mismatch);
    assert_eq!(
        v.evidence,
        "net_dev_queue saw 60,000 TCP skbs of more than one segment (60,000 skbs averaging 47.9 KB); the driver received 2,040,000 skbs averaging 1.5 KB, 0 of them still multi-segment: segmentation done in software (GSO)"
    );
    assert_eq!(
        v.configured.as_ref().unwrap().feature,
        "tx-tcp-segmentation"
    );
    let c = tx_checksum(&b, &dev);
    assert_eq!(c.mechanism, Mechanism::Deferred);
    assert!(!c.mismatch);
}

#[test]
fn tso_on_but_segmented_in_software_is_the_headline_mismatch() {
    let b = Blocks::from_totals(&software_gso());
    let nic = Device {
        driver: "ice".into(),
        class: DeviceClass::Physical,
        ..veth(&["tx-tcp-segmentation", "tx-checksum-ip-generic"], &[])
    };
    let v = tx_segmentation(&b, &nic);
    assert_eq!(v.mechanism, Mechanism::Software);
    assert!(v.mismatch);
    assert!(
        v.evidence
            .ends_with("segmentation done in software (GSO) although tx-tcp-segmentation is on"),
        "{}",
        v.evidence
    );
    // The same device doing TSO: intact multi-segment skbs at the driver.
    let mut t = Totals::default();
    add(&mut t.tx.queued_len, 64_000, 1000);
    add(&mut t.tx.segs_per_queued, 44, 1000);
    t.tx.queued_gso[GSO_TCP4] = 1000;
    add(&mut t.tx.xmit_len, 64_000, 1000);
    add(&mut t.tx.segs_per_xmit, 44, 1000);
    t.tx.xmit_gso[GSO_TCP4] = 1000;
    t.tx.xmit_csum[3] = 1000;
    let b = Blocks::from_totals(&t);
    let v = tx_segmentation(&b, &nic);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
    assert!(
        v.evidence.contains("segmentation done by the NIC (TSO)"),
        "{}",
        v.evidence
    );
    assert_eq!(tx_checksum(&b, &nic).mechanism, Mechanism::Hardware);
    // On veth the same skbs are deferred, not done.
    assert_eq!(
        tx_segmentation(&b, &veth(&["tx-tcp-segmentation"], &[])).mechanism,
        Mechanism::Deferred
    );
}

#[test]
fn software_gro_and_cpu_checksums_on_receive() {
    let b = Blocks::from_totals(&software_gro(0));
    let dev = veth(&["rx-gro", "rx-checksum"], &[]);
    let v = rx_coalescing(&b, &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, false));
    assert_eq!(
        v.evidence,
        "2,040,000 TCP packets of 1.5 KB on average at the hand-off became 60,000 skbs after GRO (34.0 segments per skb): coalesced by the CPU (software GRO)"
    );
    let c = rx_checksum(&b, &dev);
    assert_eq!((c.mechanism, c.mismatch), (Mechanism::Software, true));
    assert_eq!(
        c.evidence,
        "100.0% of 2,040,000 received packets had ip_summed=NONE: checksums verified by the CPU although rx-checksum is on"
    );
    let r = rss(&b, &dev);
    assert_eq!(r.mechanism, Mechanism::Off);
    assert_eq!(
        r.evidence,
        "the device recorded no receive queue for its packets (queue_mapping 0: skb_record_rx_queue() was not called): one path, no spreading"
    );
}

#[test]
fn nic_checksums_and_lro() {
    let mut t = software_gro(1);
    let nic = Device {
        driver: "mlx5_core".into(),
        class: DeviceClass::Physical,
        ..veth(&["rx-checksum", "rx-lro"], &["rx-gro-hw"])
    };
    assert_eq!(
        rx_checksum(&Blocks::from_totals(&t), &nic).mechanism,
        Mechanism::Hardware
    );
    // LRO: hand-offs already 60 KB with gso_size set, checksum UNNECESSARY.
    let fresh = Totals::default();
    (t.handoff, t.skb, t.tcp) = (fresh.handoff, fresh.skb, fresh.tcp);
    add(&mut t.handoff.segment_len, 60_000, 5000);
    add(&mut t.handoff.handoff_gso_size, 1448, 5000);
    t.handoff.segment_csum[1] = 5000;
    let v = rx_coalescing(&Blocks::from_totals(&t), &nic);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
    assert_eq!(v.configured.unwrap().feature, "rx-lro");
    // Same hand-offs with PARTIAL: a GSO skb that crossed veth.
    t.handoff.segment_csum = [0, 0, 0, 5000];
    let v = rx_coalescing(&Blocks::from_totals(&t), &veth(&["rx-gro"], &[]));
    assert_eq!(v.mechanism, Mechanism::Deferred);
    assert!(
        v.evidence.contains("crossed the virtual device intact"),
        "{}",
        v.evidence
    );
}

#[test]
fn only_small_packets_are_not_enough() {
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 52, 5000);
    t.handoff.segment_csum[3] = 5000;
    add(&mut t.skb.skb_len, 52, 5000);
    add(&mut t.skb.segs_per_skb, 1, 5000);
    add(&mut t.tx.queued_len, 66, 5000);
    add(&mut t.tx.segs_per_queued, 1, 5000);
    add(&mut t.tx.xmit_len, 66, 5000);
    add(&mut t.tx.segs_per_xmit, 1, 5000);
    let b = Blocks::from_totals(&t);
    let dev = veth(&["rx-gro"], &[]);
    let v = rx_coalescing(&b, &dev);
    assert_eq!(v.mechanism, Mechanism::NotExercised);
    assert!(
        v.evidence.contains("only small ones (p99 55 B)"),
        "{}",
        v.evidence
    );
    assert_eq!(tx_segmentation(&b, &dev).mechanism, Mechanism::NotExercised);
}

#[test]
fn mixed_traffic_goes_by_the_majority_and_gro_off_path_is_named() {
    // MTU-sized packets through the backlog with GRO on: nothing merged,
    // but GRO never had the chance, so no mismatch.
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 1500, 9000);
    add(&mut t.handoff.segment_len, 52, 1000);
    t.handoff.handoff_by_hook[4] = 10_000;
    add(&mut t.skb.skb_len, 1500, 9000);
    add(&mut t.skb.skb_len, 52, 1000);
    add(&mut t.skb.segs_per_skb, 1, 10_000);
    let dev = veth(&["rx-gro"], &[]);
    let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, false));
    assert!(v.evidence.contains("backlog path"), "{}", v.evidence);
    // The same on the NAPI path: GRO is on and merged nothing.
    t.handoff.handoff_by_hook = [10_000, 0, 0, 0, 0];
    let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, true));
}

#[test]
fn gso_off_yet_segmented_in_software_is_a_mismatch() {
    let b = Blocks::from_totals(&software_gso());
    let dev = veth(&[], &["tx-tcp-segmentation", "tx-generic-segmentation"]);
    let v = tx_segmentation(&b, &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, true));
    assert_eq!(v.configured.unwrap().feature, "tx-generic-segmentation");
    assert!(
        v.evidence
            .ends_with("although tx-generic-segmentation is off (TCP always uses GSO)"),
        "{}",
        v.evidence
    );
}

#[test]
fn requested_but_inactive_features_are_named() {
    let b = Blocks::from_totals(&software_gso());
    let mut f = features(&[], &["tx-tcp-segmentation"]);
    f.0[0].requested = true;
    let dev = Device {
        features: Some(f),
        ..veth(&[], &[])
    };
    let v = tx_segmentation(&b, &dev);
    assert!(!v.mismatch);
    assert!(
        v.evidence.ends_with(
            "tx-tcp-segmentation is requested but not active (it depends on another feature)"
        ),
        "{}",
        v.evidence
    );
}

#[test]
fn seed_thresholds() {
    let mut b = Blocks::from_totals(&software_gro(3));
    b.softirq.net_rx.per_cpu = vec![crate::probes::softirq::period::CpuTime {
        cpu: 1,
        time_ns: 120_000_000,
        count: 10,
        ..Default::default()
    }];
    b.napi.budget_exhausted = 7;
    b.napi.polls = 100;
    let c = checks(&b, 1.0);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].check, "net_rx_softirq_share");
    assert!((c[0].value - 12.0).abs() < 1e-9);
    assert!(c[0].message.contains("cpu1"));
    assert_eq!(
        c[1].message,
        "7 of 100 NAPI polls used their whole budget: the device had more packets than a poll takes (net.core.netdev_budget, more queues)"
    );
}

fn nic(driver: &str, class: DeviceClass, on: &[&str], off: &[&str]) -> Device {
    Device {
        driver: driver.into(),
        class,
        ..veth(on, off)
    }
}

/// What a hardware-GRO NIC hands up: 5,000 skbs of ~43 KB, gso_size
/// 1448, CHECKSUM_PARTIAL (bnxt_gro_skb() → tcp_gro_complete()).
fn hw_gro_handoffs(csum_state: usize) -> Totals {
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 43_440, 5000);
    add(&mut t.handoff.handoff_gso_size, 1448, 5000);
    t.handoff.segment_csum[csum_state] = 5000;
    t.handoff.handoff_by_hook[0] = 5000;
    t.handoff.queue[0] = 5000;
    add(&mut t.skb.skb_len, 43_440, 5000);
    add(&mut t.skb.segs_per_skb, 30, 5000);
    t
}

#[test]
fn hardware_gro_on_a_physical_nic_is_hardware_not_a_virtual_path() {
    let b = Blocks::from_totals(&hw_gro_handoffs(3));
    let bnxt = nic(
        "bnxt_en",
        DeviceClass::Physical,
        &["rx-gro", "rx-gro-hw", "rx-checksum"],
        &["rx-lro"],
    );
    let v = rx_coalescing(&b, &bnxt);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
    assert_eq!(v.configured.as_ref().unwrap().feature, "rx-gro-hw");
    assert_eq!(
        v.evidence,
        "5,000 of 5,000 TCP packets arrived at the driver hand-off already 42.4 KB on average, with gso_size 1,448: coalesced by the NIC (hardware GRO: merged skbs marked CHECKSUM_PARTIAL)"
    );
    let c = rx_checksum(&b, &bnxt);
    assert_eq!((c.mechanism, c.mismatch), (Mechanism::Hardware, false));
    assert!(c.evidence.contains("hardware GRO"), "{}", c.evidence);
    for v in judge(&b, &bnxt) {
        assert!(!v.evidence.contains("virtual"), "{}", v.evidence);
        assert!(!v.evidence.contains("never checksummed"), "{}", v.evidence);
    }
    // Hardware GRO turned off, yet the NIC coalesced: a mismatch.
    let off = nic(
        "bnxt_en",
        DeviceClass::Physical,
        &["rx-gro"],
        &["rx-gro-hw", "rx-lro"],
    );
    let v = rx_coalescing(&b, &off);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, true));
}

#[test]
fn lro_without_gso_size_is_coalescing_not_mtu_sized_traffic() {
    // bnxt TPA in LRO mode: 64 KB hand-offs, no gso_size, UNNECESSARY.
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 64_000, 3000);
    t.handoff.segment_csum[1] = 3000;
    t.handoff.handoff_by_hook[0] = 3000;
    add(&mut t.skb.skb_len, 64_000, 3000);
    add(&mut t.skb.segs_per_skb, 1, 3000);
    let b = Blocks::from_totals(&t);
    let dev = nic(
        "bnxt_en",
        DeviceClass::Physical,
        &["rx-gro", "rx-lro"],
        &["rx-gro-hw"],
    );
    let v = rx_coalescing(&b, &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
    assert_eq!(v.configured.as_ref().unwrap().feature, "rx-lro");
    assert!(
        v.evidence
            .ends_with("without a gso_size: coalesced by the NIC (LRO that sets no gso_size)"),
        "{}",
        v.evidence
    );
    assert!(!v.evidence.contains("near MTU"), "{}", v.evidence);
    // The same skbs seen only after GRO: coalesced by someone, not "off".
    let mut p = Totals::default();
    p.skb.skb_len = t.skb.skb_len;
    p.skb.segs_per_skb = t.skb.segs_per_skb;
    let dev = Device {
        coverage: Coverage {
            handoff: false,
            handoff_missing: 0,
            driver_xmit: false,
        },
        ..dev
    };
    let v = rx_coalescing(&Blocks::from_totals(&p), &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotMeasured, false));
}

#[test]
fn paravirtual_devices_name_the_host_not_the_nic() {
    // virtio_net during a download: ~53 KB GSO packets with gso_size
    // 1348 and PARTIAL at the hand-off; the guest's own transmissions
    // leave as PARTIAL, TSO skbs intact.
    let mut t = hw_gro_handoffs(3);
    t.handoff.segment_len = Hist::ZERO;
    add(&mut t.handoff.segment_len, 53_000, 4000);
    t.handoff.handoff_gso_size = Hist::ZERO;
    add(&mut t.handoff.handoff_gso_size, 1348, 4000);
    t.handoff.segment_csum = [0, 0, 0, 4000];
    t.handoff.handoff_by_hook = [4000, 0, 0, 0, 0];
    t.handoff.queue = [0; toe_agent_common::MAX_QUEUES];
    t.handoff.queue[0] = 4000;
    add(&mut t.tx.queued_len, 30_000, 500);
    add(&mut t.tx.segs_per_queued, 22, 500);
    t.tx.queued_gso[GSO_TCP4] = 500;
    add(&mut t.tx.xmit_len, 30_000, 500);
    add(&mut t.tx.segs_per_xmit, 22, 500);
    t.tx.xmit_gso[GSO_TCP4] = 500;
    t.tx.xmit_csum[3] = 500;
    let b = Blocks::from_totals(&t);
    let virtio = nic(
        "virtio_net",
        DeviceClass::Paravirtual,
        &["tx-tcp-segmentation", "tx-checksum-ip-generic", "rx-gro"],
        &["rx-lro", "rx-gro-hw"],
    );
    let v = judge(&b, &virtio);
    let got: Vec<Mechanism> = v.iter().map(|v| v.mechanism).collect();
    assert_eq!(
        got,
        [
            Mechanism::Host,
            Mechanism::Host,
            Mechanism::Host,
            Mechanism::Host,
            Mechanism::Off
        ]
    );
    for v in &v[..4] {
        assert!(!v.mismatch, "{v:?}");
        assert!(
            v.evidence
                .contains("the host behind the paravirtual virtio_net device"),
            "{}",
            v.evidence
        );
        assert!(!v.evidence.contains("the NIC"), "{}", v.evidence);
        assert!(!v.evidence.contains("built on this host"), "{}", v.evidence);
    }
}

#[test]
fn rss_over_many_evenly_loaded_queues_is_spreading() {
    let mut t = software_gro(1);
    t.handoff.queue = [0; toe_agent_common::MAX_QUEUES];
    // skb_record_rx_queue() stores queue n as n + 1.
    for q in 0..32 {
        t.handoff.queue[q + 1] = 2_040_000 / 32;
    }
    let b = Blocks::from_totals(&t);
    let dev = Device {
        rx_queues: Some(32),
        ..nic("ice", DeviceClass::Physical, &["rx-hashing"], &[])
    };
    let v = rss(&b, &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
    assert!(
        v.evidence.starts_with("packets spread over 32 receive queues of 32 (queue 0 3%, queue 1 3%, queue 2 3%, queue 3 3%, 28 more)"),
        "{}",
        v.evidence
    );
    // One bulk flow and a trickle elsewhere is not spreading.
    t.handoff.queue = [0; toe_agent_common::MAX_QUEUES];
    t.handoff.queue[4] = 2_000_000;
    t.handoff.queue[1] = 40_000;
    let v = rss(&Blocks::from_totals(&t), &dev);
    assert_eq!(v.mechanism, Mechanism::Off);
    assert!(
        v.evidence
            .starts_with("98.0% of packets arrived on receive queue 3 of 32"),
        "{}",
        v.evidence
    );
}

#[test]
fn udp_bulk_does_not_pass_for_a_tcp_offload_fault() {
    // Receive: TCP merged 34 to 1 by GRO, beside 3M UDP datagrams GRO
    // leaves alone. Judged on all packets that is 1.04 per skb: "off".
    let mut t = software_gro(0);
    add(&mut t.handoff.segment_len, 1200, 3_000_000);
    t.handoff.segment_csum[0] += 3_000_000;
    t.handoff.handoff_by_hook[0] += 3_000_000;
    add(&mut t.skb.skb_len, 1200, 3_000_000);
    add(&mut t.skb.segs_per_skb, 1, 3_000_000);
    t.skb.nontcp_skbs = 3_000_000;
    t.skb.nontcp_skb_segs = 3_000_000;
    let dev = veth(&["rx-gro"], &[]);
    let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, false));
    assert!(
        v.evidence
            .ends_with("; 3,000,000 packets of other protocols not judged"),
        "{}",
        v.evidence
    );
    // Transmit: the NIC does TSO for TCP, while UDP GSO skbs (no
    // tx-udp-segmentation) are split in software. Not a TSO mismatch.
    let mut t = Totals::default();
    add(&mut t.tx.queued_len, 64_000, 1000);
    add(&mut t.tx.segs_per_queued, 44, 1000);
    t.tx.queued_gso[GSO_TCP4] = 1000;
    add(&mut t.tx.queued_len, 60_000, 5000);
    add(&mut t.tx.segs_per_queued, 50, 5000);
    t.tx.queued_gso[GSO_OTHER] = 5000;
    add(&mut t.tx.xmit_len, 64_000, 1000);
    add(&mut t.tx.segs_per_xmit, 44, 1000);
    t.tx.xmit_gso[GSO_TCP4] = 1000;
    add(&mut t.tx.xmit_len, 1200, 250_000);
    add(&mut t.tx.segs_per_xmit, 1, 250_000);
    t.tx.xmit_csum[3] = 251_000;
    let dev = nic("ice", DeviceClass::Physical, &["tx-tcp-segmentation"], &[]);
    let v = tx_segmentation(&Blocks::from_totals(&t), &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
    assert!(
        v.evidence
            .ends_with("; 5,000 multi-segment skbs of other protocols not judged"),
        "{}",
        v.evidence
    );
}

#[test]
fn classic_per_skb_reads_no_segments_per_skb_and_says_so() {
    // --classic --per-skb: skb lengths only, no gso_segs after GRO.
    let mut t = Totals::default();
    add(&mut t.skb.skb_len, 49_000, 60_000);
    let v = rx_coalescing(&Blocks::from_totals(&t), &per_skb_veth(&["rx-gro"], &[]));
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotMeasured, false));
    assert!(v.evidence.contains("classic tracepoints"), "{}", v.evidence);
}

#[test]
fn ipv6_is_judged_against_the_ipv6_tso_flag() {
    let mut t = software_gso();
    t.tx.queued_gso = [0, 60_000, 0];
    let b = Blocks::from_totals(&t);
    // TSO for IPv4 on, for IPv6 off: software GSO is what was asked.
    let dev = nic(
        "ice",
        DeviceClass::Physical,
        &["tx-tcp-segmentation", "tx-checksum-ip-generic"],
        &["tx-tcp6-segmentation"],
    );
    let v = tx_segmentation(&b, &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, false));
    assert_eq!(v.configured.unwrap().feature, "tx-tcp6-segmentation");
    // IPv6 TSO on, yet segmented in software: the mismatch names it.
    let dev = nic(
        "ice",
        DeviceClass::Physical,
        &["tx-tcp6-segmentation", "tx-tcp-segmentation"],
        &[],
    );
    let v = tx_segmentation(&b, &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, true));
    assert!(
        v.evidence.ends_with("although tx-tcp6-segmentation is on"),
        "{}",
        v.evidence
    );
    // IPv4 traffic on the same device goes by the IPv4 flag.
    t.tx.queued_gso = [60_000, 0, 0];
    let v = tx_segmentation(&Blocks::from_totals(&t), &dev);
    assert_eq!(v.configured.unwrap().feature, "tx-tcp-segmentation");
}

#[test]
fn loopback_single_segment_skbs_needed_no_segmenting() {
    // lo: MTU 65536, TCP's 64 KB skbs are one segment each.
    let mut t = Totals::default();
    add(&mut t.tx.queued_len, 65_483, 20_000);
    add(&mut t.tx.segs_per_queued, 1, 20_000);
    add(&mut t.tx.xmit_len, 65_483, 20_000);
    add(&mut t.tx.segs_per_xmit, 1, 20_000);
    t.tx.xmit_csum[3] = 20_000;
    let lo = Device {
        mtu: 65_536,
        driver: String::new(),
        ..veth(&["tx-tcp-segmentation", "tx-checksum-ip-generic"], &[])
    };
    let v = tx_segmentation(&Blocks::from_totals(&t), &lo);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotExercised, false));
    assert!(
        v.evidence.contains("nothing needed segmenting"),
        "{}",
        v.evidence
    );
    // A few two-segment skbs over the 64 KB GSO limit, split in software
    // whatever TSO says (what lo shows under iperf3): no mismatch.
    t.tx.queued_gso[GSO_TCP4] = 1128;
    add(&mut t.tx.segs_per_queued, 2, 1128);
    add(&mut t.tx.queued_len, 65_600, 1128);
    let v = tx_segmentation(&Blocks::from_totals(&t), &lo);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotExercised, false));
    assert!(
        v.evidence.contains("gso_features_check()"),
        "{}",
        v.evidence
    );
    t.tx.queued_gso[GSO_TCP4] = 0;
    // With a 1500-byte MTU the same single-segment skbs would be "off".
    let v = tx_segmentation(&Blocks::from_totals(&t), &Device { mtu: 1500, ..lo });
    assert_eq!(v.mechanism, Mechanism::Off);
}

#[test]
fn a_missing_handoff_hook_is_not_claimed_as_seen() {
    // The driver hands packets to netif_receive_skb(), whose hook did
    // not attach; napi_gro_receive's did and saw nothing.
    let mut t = Totals::default();
    add(&mut t.skb.skb_len, 1500, 50_000);
    add(&mut t.skb.segs_per_skb, 1, 50_000);
    let dev = Device {
        coverage: Coverage {
            handoff: true,
            handoff_missing: 1 << 2,
            driver_xmit: true,
        },
        ..veth(&["rx-gro", "rx-checksum"], &[])
    };
    let b = Blocks::from_totals(&t);
    for v in [rx_coalescing(&b, &dev), rx_checksum(&b, &dev)] {
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotMeasured, false));
        assert_eq!(
            v.evidence,
            "the attached hand-off hooks saw 0 TCP packets, but 50,000 segments reached the stack after GRO: the driver hands packets up through netif_receive_skb_entry, not attached"
        );
    }
    // When the attached hooks saw the traffic, they are judged as usual.
    let mut t = software_gro(0);
    t.add(&Totals::default());
    let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
    assert_eq!(v.mechanism, Mechanism::Software);
}

/// e1000e under QEMU (Debian 6.1): packets reach napi_gro_receive() one
/// MTU-sized segment each and leave unmerged. What GRO returned for them
/// (net/core/gro.c, napi_gro_receive() → `trace_napi_gro_receive_exit`)
/// is the evidence: here every packet came back GRO_NORMAL.
#[test]
fn nothing_merged_says_what_gro_returned() {
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 1500, 100_000);
    t.handoff.segment_csum[0] = 100_000;
    t.handoff.handoff_by_hook[0] = 100_000;
    add(&mut t.skb.skb_len, 1500, 100_000);
    add(&mut t.skb.segs_per_skb, 1, 100_000);
    t.gro.result[toe_agent_common::GRO_NORMAL] = 99_000;
    t.gro.result[toe_agent_common::GRO_HELD] = 1_000;
    let mut nic = veth(&["rx-gro"], &[]);
    nic.class = DeviceClass::Physical;
    nic.driver = "e1000e".into();
    let v = rx_coalescing(&Blocks::from_totals(&t), &nic);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, true), "{v:?}");
    assert!(
        v.evidence
            .ends_with("GRO's results: 99% passed up unmerged (GRO_NORMAL), 1% held, 0% merged"),
        "{}",
        v.evidence
    );
}

/// CPU-verified checksums, some of them bad: the evidence counts what TCP
/// reported (tcp_bad_csum) and what the stack dropped for a checksum.
#[test]
fn software_checksums_name_the_bad_ones() {
    let mut t = software_gro(toe_agent_common::CSUM_NONE);
    t.tcp.bad_csum = 7;
    let mut b = Blocks::from_totals(&t);
    b.drops.by_reason.insert("TCP_CSUM".into(), 7);
    b.drops.by_reason.insert("NETFILTER_DROP".into(), 100);
    let v = rx_checksum(&b, &veth(&[], &["rx-checksum"]));
    assert_eq!(v.mechanism, Mechanism::Software);
    assert!(
        v.evidence
            .ends_with("the CPU found 7 bad checksums (tcp_bad_csum 7, checksum drop reasons 7)"),
        "{}",
        v.evidence
    );
}

/// e1000e and vmxnet3 under QEMU 7.2: the sender's TSO frames reach the
/// receiver as IPv4 fragments (hw/net/net_tx_pkt.c,
/// net_tx_pkt_do_sw_fragmentation()). GRO cannot merge fragments
/// (inet_gro_receive() flushes at ip_is_fragment()) and no NIC can verify
/// a fragment's TCP checksum: neither is the receiver's configuration
/// failing, so neither is a mismatch. Counts of the Debian 6.1 e1000e row.
#[test]
fn ip_fragments_are_neither_unmerged_tcp_nor_failed_checksums() {
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 1500, 48_643);
    t.handoff.segment_csum[0] = 48_600;
    t.handoff.segment_csum[1] = 43;
    t.handoff.handoff_by_hook[0] = 48_643;
    add(&mut t.skb.skb_len, 1500, 48_643);
    add(&mut t.skb.segs_per_skb, 1, 48_643);
    t.skb.skb_csum[0] = 48_600;
    t.skb.ip_fragments = 48_576;
    t.gro.result[toe_agent_common::GRO_NORMAL] = 48_600;
    let mut nic = veth(&["rx-gro", "rx-checksum"], &["rx-lro"]);
    nic.class = DeviceClass::Physical;
    nic.driver = "e1000e".into();
    let b = Blocks::from_totals(&t);
    let v = rx_coalescing(&b, &nic);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, false), "{v:?}");
    assert!(
        v.evidence
            .contains("48,576 of 48,643 packets were IP fragments"),
        "{}",
        v.evidence
    );
    let c = rx_checksum(&b, &nic);
    assert_eq!(
        (c.mechanism, c.mismatch),
        (Mechanism::Software, false),
        "{c:?}"
    );
    assert!(
        c.evidence.contains("whose TCP checksum no NIC can verify"),
        "{}",
        c.evidence
    );
}

/// vmxnet3 with LRO on: vmxnet3_rq_rx_complete() hands packets to
/// netif_receive_skb() itself, skipping GRO, and QEMU's model coalesces
/// nothing: LRO is on while the device ignores it, a mismatch, and the
/// evidence names the path the packets really took (it used to say
/// "backlog"). Counts of the Debian 6.1 vmxnet3 row, without fragments.
#[test]
fn lro_bypass_that_coalesces_nothing_is_a_mismatch() {
    let mut t = Totals::default();
    add(&mut t.handoff.segment_len, 1500, 57_696);
    t.handoff.segment_csum[0] = 57_696;
    t.handoff.handoff_by_hook[toe_agent_common::HOOK_NETIF_RECEIVE_SKB] = 57_696;
    add(&mut t.skb.skb_len, 1500, 57_696);
    add(&mut t.skb.segs_per_skb, 1, 57_696);
    let mut dev = veth(&["rx-gro", "rx-lro"], &[]);
    dev.class = DeviceClass::Paravirtual;
    dev.driver = "vmxnet3".into();
    let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
    assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, true), "{v:?}");
    assert_eq!(v.configured.unwrap().feature, "rx-lro");
    assert!(
        v.evidence
            .contains("straight to the stack (netif_receive_skb), bypassing GRO"),
        "{}",
        v.evidence
    );
    assert!(!v.evidence.contains("backlog"), "{}", v.evidence);
}

/// Sampled windows that caught the traffic judge it as every packet would;
/// a period no window fell in has nothing to judge on, and says so rather
/// than "no traffic".
#[test]
fn a_period_without_a_sampling_window_is_not_measured() {
    use crate::model::period::Sampling;
    let dev = veth(&["tx-tcp-segmentation"], &["tx-generic-segmentation"]);
    let mut b = Blocks::from_totals(&software_gso());
    let whole = tx_segmentation(&b, &dev);
    b.sample = Sampling {
        fraction: 0.1,
        secs: 0.1,
        windows: 1,
    };
    let sampled = judge(&b, &dev);
    assert_eq!(sampled[0], whole);
    b = Blocks::default();
    b.sample = Sampling {
        fraction: 0.1,
        secs: 0.0,
        windows: 0,
    };
    for v in judge(&b, &dev) {
        assert_eq!(v.mechanism, Mechanism::NotMeasured, "{v:?}");
        assert!(!v.mismatch);
        assert!(
            v.evidence
                .starts_with("no sampling window fell in this period"),
            "{}",
            v.evidence
        );
    }
    // Every moment sampled (--sample 1), or none by request (--per-skb):
    // an empty period is simply quiet.
    for fraction in [1.0, 0.0] {
        b.sample.fraction = fraction;
        assert_ne!(judge(&b, &dev)[0].mechanism, Mechanism::NotMeasured);
    }
}
