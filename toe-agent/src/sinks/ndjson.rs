//! NDJSON output: one record per line, schema in docs/ndjson.md.
use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::model::nic::Nic;
use crate::{
    kernel::attach::ProbeStatus,
    kernel::overhead::Overhead,
    model::period::Blocks,
    model::verdict::{Check, Verdict},
};

pub(crate) const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub schema_version: u32,
    pub agent_version: String,
    pub kernel: String,
    pub iface: String,
    pub ifindex: u32,
    pub netns_ino: u32,
    pub driver: String,
    /// physical, paravirtual or virtual (docs/device-classes.md); absent
    /// from files written before device classes existed.
    #[serde(default)]
    pub device_class: Option<crate::model::class::DeviceClass>,
    pub mtu: u32,
    pub interval_ms: u64,
    pub probes: Vec<ProbeStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Interval {
    pub seq: u64,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    #[serde(flatten)]
    pub blocks: Blocks,
    /// Absent in files written before verdicts existed: read as empty.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub overhead: Overhead,
    /// The driver's own counters over the same time, and how they compare
    /// (absent from files written before they were read).
    #[serde(default)]
    pub nic: Nic,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Duration,
    Signal,
    /// The user quit the live view (q, Esc or Ctrl-C).
    Quit,
    IfaceGone,
    OutputClosed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    pub intervals: u64,
    pub end_reason: EndReason,
    #[serde(flatten)]
    pub blocks: Blocks,
    /// Absent in files written before verdicts existed: read as empty.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub overhead: Overhead,
    /// The driver's own counters over the same time, and how they compare
    /// (absent from files written before they were read).
    #[serde(default)]
    pub nic: Nic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Record {
    Header(Header),
    Interval(Interval),
    Summary(Summary),
}

pub(crate) struct NdjsonWriter {
    out: BufWriter<Box<dyn Write>>,
}

impl NdjsonWriter {
    /// `-` is stdout. The file is created (truncated) here, so an unwritable
    /// path fails before anything is attached.
    /// Fail now if `path` cannot be written, without touching what it
    /// holds: the file is truncated only by [`NdjsonWriter::create`], once
    /// the run has started, so a start that fails (privileges, a probe
    /// that does not load) leaves an earlier recording as it was. A file
    /// made only for the check is removed again.
    pub(crate) fn check(path: &Path) -> io::Result<()> {
        if path == Path::new("-") {
            return Ok(());
        }
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        if !existed {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }

    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let out: Box<dyn Write> = if path == Path::new("-") {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(path)?)
        };
        Ok(NdjsonWriter {
            out: BufWriter::new(out),
        })
    }

    #[cfg(test)]
    pub(crate) fn from_writer(w: Box<dyn Write>) -> Self {
        NdjsonWriter {
            out: BufWriter::new(w),
        }
    }

    /// Write one record and flush it: a reader tailing the file sees whole
    /// lines only, one interval at a time.
    pub(crate) fn write(&mut self, record: &Record) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::attach::ProbeState;
    use std::{cell::RefCell, rc::Rc};

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn records_are_tagged_lines_that_round_trip() {
        let buf = Shared::default();
        let mut w = NdjsonWriter::from_writer(Box::new(buf.clone()));
        let header = Record::Header(Header {
            schema_version: SCHEMA_VERSION,
            agent_version: "0.1.0".into(),
            kernel: "6.18".into(),
            iface: "veth0".into(),
            ifindex: 7,
            netns_ino: 4026531840,
            driver: "veth".into(),
            device_class: Some(crate::model::class::DeviceClass::Virtual),
            mtu: 1500,
            interval_ms: 1000,
            probes: vec![ProbeStatus {
                name: "netif_receive_skb".into(),
                hook: "tp_btf/netif_receive_skb".into(),
                status: ProbeState::Attached,
                reason: None,
            }],
        });
        let mut blocks = Blocks::default();
        blocks.rx.handoff.segments = 42;
        let interval = Record::Interval(Interval {
            seq: 1,
            start_unix_ns: 1,
            end_unix_ns: 2,
            blocks: blocks.clone(),
            verdicts: crate::model::verdict::judge(
                &blocks,
                &crate::model::verdict::Device::default(),
            ),
            checks: vec![],
            overhead: Overhead::default(),
            nic: Nic::of(
                [("rx-packets".to_string(), 42)].into(),
                None,
                Default::default(),
                &blocks,
            ),
        });
        let summary = Record::Summary(Summary {
            start_unix_ns: 1,
            end_unix_ns: 2,
            intervals: 1,
            end_reason: EndReason::Signal,
            blocks,
            verdicts: vec![],
            checks: vec![],
            overhead: Overhead::default(),
            nic: Nic::default(),
        });
        for r in [&header, &interval, &summary] {
            w.write(r).unwrap();
        }
        let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["type"], "header");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["probes"][0]["status"], "attached");
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["type"], "interval");
        assert_eq!(v["rx"]["segments"], 42);
        assert_eq!(v["nic"]["qstats"]["rx-packets"], 42);
        assert_eq!(v["nic"]["reconcile"][0]["source"], "qstats rx-packets");
        assert_eq!(v["nic"]["reconcile"][0]["agree"], true);
        assert_eq!(v["verdicts"][0]["offload"], "tx_segmentation");
        assert_eq!(v["verdicts"][0]["mechanism"], "not_exercised");
        assert!(v["overhead"]["bpf_ns_per_event"].is_null());
        assert_eq!(v["overhead"]["events"], 0);
        assert!(v["rx"]["segment_len"]["buckets"].is_array());
        assert!(v["softirq"]["net_rx"]["per_cpu"].is_array());
        assert!(v["napi"]["budget_exhausted"].is_u64());
        let v: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(v["end_reason"], "signal");
        let back: Vec<Record> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, vec![header, interval, summary]);
    }
}
