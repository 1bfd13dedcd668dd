//! toe-agent: are a NIC's TCP offloads done in silicon, or on the CPU?
//!
//! Data flows one way: kernel hooks fill per-CPU maps (`toe-agent-ebpf`),
//! [`probes`] reads them, [`collect`] turns readings into interval deltas,
//! [`report`] into the blocks users see, and [`view`] / [`ndjson`] render them.
//!
//! Only what the binary (`main.rs`) and the fuzz target need is public: the
//! command line, each command's entry point and arguments, and the NDJSON
//! reader. Everything else is `pub(crate)`, so that the compiler reports
//! what nobody uses.
pub(crate) mod audit;
pub(crate) mod bench;
pub(crate) mod btf;
pub(crate) mod class;
pub(crate) mod classic;
pub(crate) mod cli;
pub(crate) mod collect;
pub(crate) mod ethtool;
pub(crate) mod host;
pub(crate) mod iface;
pub(crate) mod lab;
pub(crate) mod ndjson;
pub(crate) mod netns;
pub(crate) mod overhead;
pub(crate) mod plot;
pub(crate) mod probes;
pub(crate) mod qstats;
pub(crate) mod recording;
pub(crate) mod report;
pub(crate) mod report_cmd;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod trace;
pub(crate) mod units;
pub(crate) mod verdict;
pub(crate) mod view;

pub use audit::{AuditArgs, run as audit};
pub use bench::{BenchArgs, run as bench};
pub use cli::{Cli, Command};
pub use lab::{LabArgs, run as lab};
pub use recording::read_run;
pub use report_cmd::{ReportArgs, run as report};
pub use serve::{ServeArgs, run as serve};
pub use trace::{TraceArgs, run as trace};

/// How a command failed, which decides the exit status.
#[derive(Debug)]
pub enum Failure {
    /// The user asked for something that cannot be (exit status 2).
    BadInput(String),
    /// The run could not proceed or ended abnormally (exit status 1).
    Runtime(String),
}

impl Failure {
    /// A runtime failure, printed with every cause in its chain
    /// ("loading the eBPF object: ...: Operation not permitted").
    pub(crate) fn runtime(e: impl Into<anyhow::Error>) -> Failure {
        Failure::Runtime(format!("{:#}", e.into()))
    }

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
