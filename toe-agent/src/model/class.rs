//! Device classes: who is behind a network device when it is asked to do
//! an offload. The driver name (`ETHTOOL_GDRVINFO`, what `ethtool -i`
//! prints) decides; the table and the sources behind each entry are in
//! docs/device-classes.md, and `--device-class` overrides it for drivers
//! the table does not know.
use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// Silicon this host owns: what the device does, the NIC does.
    Physical,
    /// A device whose "hardware" is a hypervisor or its host (virtio_net,
    /// vmxnet3, netvsc...): work handed to it leaves this OS, and whether
    /// the host then used silicon cannot be seen from the guest.
    Paravirtual,
    /// A software device that hands skbs on (veth, bridge, tunnels, VLANs,
    /// loopback): work handed to it is done by whatever comes next.
    Virtual,
}

/// Drivers of paravirtual devices, as their get_drvinfo names them
/// (docs/device-classes.md gives the source of each name).
const PARAVIRTUAL: &[&str] = &[
    "virtio_net",
    "vmxnet3",
    "hv_netvsc",
    "vif",
    "gve",
    "ena",
    "mana",
    "ibmveth",
];

/// Drivers of virtual and stacked devices. An empty name is a device that
/// answers no driver information at all (loopback). macvtap reports
/// "macvlan" and ipvtap "ipvlan".
const VIRTUAL: &[&str] = &[
    "",
    "veth",
    "bridge",
    "bonding",
    "team",
    "vxlan",
    "geneve",
    "tun",
    "macvlan",
    "ipvlan",
    "dummy",
    "openvswitch",
    "vrf",
    "nlmon",
    "wireguard",
    "802.1Q VLAN Support",
    "gre",
    "gretap",
    "erspan",
    "ip6gre",
    "ip6gretap",
    "ip6erspan",
    "ipip",
    "sit",
    "ip6tnl",
    "vti",
    "vti6",
    "xfrm",
    "macsec",
    "ifb",
    "netkit",
    "bareudp",
    "gtp",
    "amt",
    "hsr",
    "B.A.T.M.A.N. advanced",
    "net_failover",
    "dsa",
];

impl DeviceClass {
    pub const ALL: [DeviceClass; 3] = [
        DeviceClass::Physical,
        DeviceClass::Paravirtual,
        DeviceClass::Virtual,
    ];

    /// The class of a driver; a driver in neither list drives silicon.
    pub fn of_driver(driver: &str) -> DeviceClass {
        if PARAVIRTUAL.contains(&driver) {
            DeviceClass::Paravirtual
        } else if VIRTUAL.contains(&driver) {
            DeviceClass::Virtual
        } else {
            DeviceClass::Physical
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DeviceClass::Physical => "physical",
            DeviceClass::Paravirtual => "paravirtual",
            DeviceClass::Virtual => "virtual",
        }
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceClass {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        DeviceClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("'{s}' is not a device class: physical, paravirtual or virtual"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_fall_into_their_class() {
        assert_eq!(DeviceClass::of_driver("ice"), DeviceClass::Physical);
        assert_eq!(DeviceClass::of_driver("bnxt_en"), DeviceClass::Physical);
        assert_eq!(
            DeviceClass::of_driver("virtio_net"),
            DeviceClass::Paravirtual
        );
        assert_eq!(DeviceClass::of_driver("vmxnet3"), DeviceClass::Paravirtual);
        for v in ["veth", "", "tun", "802.1Q VLAN Support", "ifb", "netkit"] {
            assert_eq!(DeviceClass::of_driver(v), DeviceClass::Virtual, "{v}");
        }
    }

    #[test]
    fn parses_its_own_names_only() {
        for c in DeviceClass::ALL {
            assert_eq!(c.name().parse::<DeviceClass>(), Ok(c));
        }
        assert!("hardware".parse::<DeviceClass>().is_err());
    }
}
