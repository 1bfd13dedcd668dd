//! Reading `struct sk_buff`, `struct net_device` and `struct skb_shared_info`
//! through the BTF pointers tp_btf programs receive, at offsets the loader
//! resolved from the running kernel's BTF (`CONFIG.off`).
//!
//! Loads are volatile so LLVM cannot merge neighbouring narrow loads into a
//! wide one the verifier rejects (docs/kernel-notes.md, "Verifier traps"). A BTF pointer load that
//! faults reads 0 (the verifier turns it into a PROBE_MEM load), so a NULL
//! `skb->dev` simply fails the filter.
use aya_ebpf::helpers::bpf_probe_read_kernel;

use crate::config;

#[inline(always)]
pub unsafe fn load<T: Copy>(base: *const u8, off: u32) -> T {
    unsafe { core::ptr::read_volatile(base.add(off as usize) as *const T) }
}

/// `skb->dev`
#[inline(always)]
pub unsafe fn dev(skb: *const u8) -> *const u8 {
    unsafe { load(skb, config!(off.skb_dev)) }
}

/// Is `dev` the traced device? `dev->ifindex` first (one load rejects almost
/// every other device), then `dev_net(dev)->ns.inum`, because an index is
/// only unique within a namespace (include/linux/netdevice.h: `possible_net_t
/// nd_net`, whose only member is `struct net *net`).
#[inline(always)]
pub unsafe fn is_traced_dev(dev: *const u8) -> bool {
    unsafe {
        if load::<u32>(dev, config!(off.dev_ifindex)) != config!(ifindex) {
            return false;
        }
        let net: *const u8 = load(dev, config!(off.dev_nd_net));
        load::<u32>(net, config!(off.net_ns_inum)) == config!(netns_ino)
    }
}

/// `skb->len`
#[inline(always)]
pub unsafe fn len(skb: *const u8) -> u32 {
    unsafe { load(skb, config!(off.skb_len)) }
}

/// `skb->ip_summed`, a 2-bit bitfield (include/linux/skbuff.h, `__u8 ip_summed:2`).
#[inline(always)]
pub unsafe fn ip_summed(skb: *const u8) -> usize {
    let byte: u8 = unsafe { load(skb, config!(off.skb_ip_summed_byte)) };
    ((byte >> config!(off.skb_ip_summed_shift)) & 3) as usize
}

/// `skb->queue_mapping`
#[inline(always)]
pub unsafe fn queue(skb: *const u8) -> usize {
    let q: u16 = unsafe { load(skb, config!(off.skb_queue_mapping)) };
    q as usize
}

/// `dev->mtu`
#[inline(always)]
pub unsafe fn mtu(dev: *const u8) -> u32 {
    unsafe { load(dev, config!(off.dev_mtu)) }
}

/// `(gso_size, gso_segs)` from `skb_shinfo(skb)`, which is `skb->head +
/// skb->end` on 64-bit kernels (include/linux/skbuff.h, `skb_end_pointer`
/// with NET_SKBUFF_DATA_USES_OFFSET). `head` is an `unsigned char *`, which
/// the verifier treats as a scalar, so the read needs the helper; both fields
/// sit in the first 8 bytes of `struct skb_shared_info`, read in one call.
#[inline(always)]
pub unsafe fn gso(skb: *const u8) -> (u64, u64) {
    let head: u64 = unsafe { load(skb, config!(off.skb_head)) };
    let end: u32 = unsafe { load(skb, config!(off.skb_end)) };
    let shinfo = (head + end as u64) as *const u64;
    let word = unsafe { bpf_probe_read_kernel(shinfo) }.unwrap_or(0);
    let size = (word >> (config!(off.shinfo_gso_size) * 8)) & 0xffff;
    let segs = (word >> (config!(off.shinfo_gso_segs) * 8)) & 0xffff;
    (size, segs)
}

/// `skb_shinfo(skb)->gso_type`, read only for multi-segment skbs: it lies
/// beyond the first 8 bytes of `struct skb_shared_info`, so it costs a
/// helper call of its own.
#[inline(always)]
pub unsafe fn gso_type(skb: *const u8) -> u32 {
    let head: u64 = unsafe { load(skb, config!(off.skb_head)) };
    let end: u32 = unsafe { load(skb, config!(off.skb_end)) };
    let at = (head + end as u64 + config!(off.shinfo_gso_type) as u64) as *const u32;
    unsafe { bpf_probe_read_kernel(at) }.unwrap_or(0)
}

/// `ETH_P_IP` and `ETH_P_IPV6` (include/uapi/linux/if_ether.h) as
/// `skb->protocol` holds them: big-endian, so byte-swapped on this
/// little-endian target.
const ETH_P_IP_BE: u16 = 0x0800u16.to_be();
const ETH_P_IPV6_BE: u16 = 0x86ddu16.to_be();
/// `IPPROTO_TCP` (include/uapi/linux/in.h).
const IPPROTO_TCP: u8 = 6;

/// Is this received packet TCP? At the receive hooks `skb->data` points at
/// the network header: eth_type_trans() (net/ethernet/eth.c) has pulled the
/// MAC header before the driver hands the skb up, and GRO keeps it there.
/// The protocol byte is read from the IPv4 header (offset 9) or the IPv6
/// fixed header's next-header field (offset 6); TCP behind IPv6 extension
/// headers, tunnels or a VLAN tag still in the packet counts as "not TCP".
#[inline(always)]
pub unsafe fn is_tcp(skb: *const u8) -> bool {
    let proto: u16 = unsafe { load(skb, config!(off.skb_protocol)) };
    let at = if proto == ETH_P_IP_BE {
        9
    } else if proto == ETH_P_IPV6_BE {
        6
    } else {
        return false;
    };
    let data: u64 = unsafe { load(skb, config!(off.skb_data)) };
    let byte = unsafe { bpf_probe_read_kernel((data + at) as *const u8) }.unwrap_or(0);
    byte == IPPROTO_TCP
}
