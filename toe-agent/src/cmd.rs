//! One module per subcommand. Commands use the layers below them (kernel,
//! model, sinks, sys) and never each other.
pub(crate) mod audit;
pub(crate) mod bench;
pub(crate) mod lab;
pub(crate) mod report;
pub(crate) mod serve;
pub(crate) mod trace;
