//! The host's own interfaces, read-only: interfaces and their namespaces,
//! ethtool, netdev generic netlink (qstats), kernel facts.
pub(crate) mod ethtool;
pub(crate) mod host;
pub(crate) mod iface;
pub(crate) mod netlink;
pub(crate) mod netns;
pub(crate) mod nic;
pub(crate) mod qstats;
pub(crate) mod xfrm;
