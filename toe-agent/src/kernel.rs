//! The kernel side, seen from userspace: load the eBPF object, resolve
//! offsets from BTF, attach the probes (tp_btf or classic tracepoints),
//! read their maps into cumulative totals and interval deltas, and measure
//! what the programs cost.
pub(crate) mod attach;
pub(crate) mod btf;
pub(crate) mod classic;
pub(crate) mod collect;
pub(crate) mod overhead;
pub(crate) mod session;
