//! toe-agent: are a NIC's TCP offloads done in silicon, or on the CPU?
//!
//! Data flows one way: kernel hooks fill per-CPU maps (`toe-agent-ebpf`);
//! [`kernel`] attaches the probes and turns their maps into interval deltas;
//! [`model`] makes the period blocks and the verdicts; [`sinks`] render them
//! (terminal, NDJSON, Prometheus, plots). [`sys`] reads the host's
//! interfaces, and [`cmd`] holds one module per subcommand on top.
//!
//! Only what the binary (`main.rs`) and the fuzz targets need is public:
//! the command line, each command's entry point and arguments, the NDJSON
//! reader, and [`fuzz`], one function per parser of outside input.
//! Everything else is `pub(crate)`, so that the compiler reports what
//! nobody uses.
pub(crate) mod cli;
pub(crate) mod cmd;
pub(crate) mod kernel;
pub(crate) mod model;
pub(crate) mod probes;
pub(crate) mod sinks;
pub(crate) mod sys;

#[cfg(test)]
mod layering;

pub mod fuzz;

pub use cli::{Cli, Command};
pub use cmd::audit::{AuditArgs, run as audit};
pub use cmd::bench::{BenchArgs, run as bench};
pub use cmd::lab::{LabArgs, run as lab};
pub use cmd::report::{ReportArgs, run as report};
pub use cmd::serve::{ServeArgs, run as serve};
pub use cmd::trace::{TraceArgs, run as trace};
pub use sinks::recording::read_run;

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
