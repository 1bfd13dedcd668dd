//! What the measurements mean, with no I/O: the period model (the blocks
//! every sink renders), the catalogue of quantities, device classes and
//! the verdicts.
pub(crate) mod catalogue;
pub(crate) mod class;
pub(crate) mod drops;
pub(crate) mod nic;
pub(crate) mod period;
pub(crate) mod summary;
pub(crate) mod units;
pub(crate) mod verdict;
