//! toe-agent: are a NIC's TCP offloads done in silicon, or on the CPU?
//!
//! Data flows one way: kernel hooks fill per-CPU maps (`toe-agent-ebpf`),
//! [`probes`] reads them, [`collect`] turns readings into interval deltas,
//! [`report`] into the blocks users see, and [`view`] / [`ndjson`] render them.
pub mod audit;
pub mod bench;
pub mod btf;
pub mod class;
pub mod classic;
pub mod cli;
pub mod collect;
pub mod ethtool;
pub mod host;
pub mod iface;
pub mod lab;
pub mod ndjson;
pub mod netns;
pub mod overhead;
pub mod plot;
pub mod probes;
pub mod qstats;
pub mod recording;
pub mod report;
pub mod report_cmd;
pub mod serve;
pub mod trace;
pub mod units;
pub mod verdict;
pub mod view;

/// How a command failed, which decides the exit status.
#[derive(Debug)]
pub enum Failure {
    /// The user asked for something that cannot be (exit status 2).
    BadInput(String),
    /// The run could not proceed or ended abnormally (exit status 1).
    Runtime(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::BadInput(m) | Failure::Runtime(m) => m,
        }
    }
}
