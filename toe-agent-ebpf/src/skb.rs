//! Typed views of `struct sk_buff`, `struct net_device`, `struct napi_struct`,
//! `struct sock` and `struct skb_shared_info`, read through the BTF pointers tp_btf
//! programs receive, at offsets the loader resolved from the running
//! kernel's BTF (`CONFIG.off`).
//!
//! The accessors are safe to call: the verifier turns every load through a
//! BTF pointer into a PROBE_MEM load, which reads 0 instead of faulting
//! (kernel/bpf/verifier.c, BPF_PROBE_MEM), so a NULL `skb->dev` simply fails
//! the device filter. Loads are volatile so LLVM cannot merge neighbouring
//! narrow loads into a wide one the verifier rejects (docs/kernel-notes.md,
//! "BTF pointers: volatile field loads"). Fields behind `unsigned char *`
//! (`skb->head`, `skb->data`) are scalars to the verifier and are read
//! with the helper (docs/kernel-notes.md, "`unsigned char *` members are
//! scalars").
use aya_ebpf::helpers::bpf_probe_read_kernel;

use crate::config;

/// A field of the struct at `base`, `off` bytes in.
#[inline(always)]
fn load<T: Copy>(base: *const u8, off: u32) -> T {
    // SAFETY: `base` is a BTF pointer from a tracepoint argument (or a
    // pointer field read through one): the verifier guards the load.
    unsafe { core::ptr::read_volatile(base.wrapping_add(off as usize) as *const T) }
}

/// `struct sk_buff *`, a tracepoint argument.
#[derive(Clone, Copy)]
pub struct Skb(*const u8);

/// `struct net_device *`
#[derive(Clone, Copy)]
pub struct NetDev(*const u8);

/// `struct napi_struct *`, a tracepoint argument.
#[derive(Clone, Copy)]
pub struct Napi(*const u8);

/// `struct sock *`, a tracepoint argument.
#[derive(Clone, Copy)]
pub struct Sock(*const u8);

/// `(gso_size, gso_segs)` of `skb_shinfo(skb)`.
pub struct Gso {
    pub size: u64,
    pub segs: u64,
}

/// `ETH_P_IP` and `ETH_P_IPV6` (include/uapi/linux/if_ether.h) as
/// `skb->protocol` holds them: big-endian, so byte-swapped on this
/// little-endian target.
const ETH_P_IP_BE: u16 = 0x0800u16.to_be();
const ETH_P_IPV6_BE: u16 = 0x86ddu16.to_be();
/// `IPPROTO_TCP` (include/uapi/linux/in.h).
const IPPROTO_TCP: u8 = 6;
/// `NEXTHDR_FRAGMENT` (include/net/ipv6.h).
const IPV6_FRAGMENT: u8 = 44;

/// What the IP header says of a received packet.
pub struct IpInfo {
    /// The protocol is TCP.
    pub tcp: bool,
    /// An IP fragment (IPv4 MF or offset, or an IPv6 fragment header).
    pub fragment: bool,
}

impl Skb {
    pub fn new(ptr: *const u8) -> Skb {
        Skb(ptr)
    }

    /// The skb's address, to recognise it at a later hook.
    #[inline(always)]
    pub fn addr(self) -> u64 {
        self.0 as u64
    }

    /// `skb->dev`
    #[inline(always)]
    pub fn dev(self) -> NetDev {
        NetDev(load(self.0, config!(off.skb_dev)))
    }

    /// `skb->len`
    #[inline(always)]
    pub fn len(self) -> u32 {
        load(self.0, config!(off.skb_len))
    }

    /// `skb->ip_summed`, a 2-bit bitfield (include/linux/skbuff.h,
    /// `__u8 ip_summed:2`).
    #[inline(always)]
    pub fn ip_summed(self) -> usize {
        let byte: u8 = load(self.0, config!(off.skb_ip_summed_byte));
        ((byte >> config!(off.skb_ip_summed_shift)) & 3) as usize
    }

    /// `skb->queue_mapping`
    #[inline(always)]
    pub fn queue(self) -> usize {
        let q: u16 = load(self.0, config!(off.skb_queue_mapping));
        q as usize
    }

    /// `skb_shinfo(skb)`: `skb->head + skb->end` on 64-bit kernels
    /// (include/linux/skbuff.h, `skb_end_pointer` with
    /// NET_SKBUFF_DATA_USES_OFFSET).
    #[inline(always)]
    fn shinfo(self) -> u64 {
        let head: u64 = load(self.0, config!(off.skb_head));
        let end: u32 = load(self.0, config!(off.skb_end));
        head + end as u64
    }

    /// `gso_size` and `gso_segs`, which sit in the first 8 bytes of
    /// `struct skb_shared_info`: one helper call reads both.
    #[inline(always)]
    pub fn gso(self) -> Gso {
        // SAFETY: bpf_probe_read_kernel checks the address itself.
        let word = unsafe { bpf_probe_read_kernel(self.shinfo() as *const u64) }.unwrap_or(0);
        Gso {
            size: (word >> (config!(off.shinfo_gso_size) * 8)) & 0xffff,
            segs: (word >> (config!(off.shinfo_gso_segs) * 8)) & 0xffff,
        }
    }

    /// `skb_shinfo(skb)->gso_type`, read only for multi-segment skbs: it
    /// lies beyond the first 8 bytes, so it costs a helper call of its own.
    #[inline(always)]
    pub fn gso_type(self) -> u32 {
        let at = self.shinfo() + config!(off.shinfo_gso_type) as u64;
        // SAFETY: bpf_probe_read_kernel checks the address itself.
        unsafe { bpf_probe_read_kernel(at as *const u32) }.unwrap_or(0)
    }

    /// The IP protocol and fragment state of a received packet. At the
    /// receive hooks `skb->data` points at the network header:
    /// eth_type_trans() (net/ethernet/eth.c) has pulled the MAC header
    /// before the driver hands the skb up, and GRO keeps it there. One
    /// helper call reads 8 bytes from offset 6: for IPv4 (include/uapi/
    /// linux/ip.h) `frag_off` (6-7, big-endian: MF is 0x2000, the offset
    /// the low 13 bits) and `protocol` (9); for IPv6 the fixed header's
    /// `nexthdr` (6), which is 44 for a fragment header. TCP behind IPv6
    /// extension headers, tunnels or a VLAN tag still in the packet counts
    /// as "not TCP".
    #[inline(always)]
    pub fn ip(self) -> IpInfo {
        let proto: u16 = load(self.0, config!(off.skb_protocol));
        let v4 = proto == ETH_P_IP_BE;
        if !v4 && proto != ETH_P_IPV6_BE {
            return IpInfo {
                tcp: false,
                fragment: false,
            };
        }
        let data: u64 = load(self.0, config!(off.skb_data));
        // SAFETY: bpf_probe_read_kernel checks the address itself.
        let word = unsafe { bpf_probe_read_kernel((data + 6) as *const u64) }.unwrap_or(0);
        if v4 {
            // Little-endian load: byte 6 is the low byte.
            let frag_off = u16::from_be((word & 0xffff) as u16);
            IpInfo {
                tcp: (word >> 24) as u8 == IPPROTO_TCP,
                fragment: frag_off & 0x3fff != 0,
            }
        } else {
            let next = word as u8;
            IpInfo {
                tcp: next == IPPROTO_TCP,
                fragment: next == IPV6_FRAGMENT,
            }
        }
    }

    /// Is this received packet TCP (see [`Skb::ip`])?
    #[inline(always)]
    pub fn is_tcp(self) -> bool {
        self.ip().tcp
    }
}

impl NetDev {
    /// Is this the traced device? `dev->ifindex` first (one load rejects
    /// almost every other device), then `dev_net(dev)->ns.inum`, because an
    /// index is only unique within a namespace (include/linux/netdevice.h:
    /// `possible_net_t nd_net`, whose only member is `struct net *net`).
    #[inline(always)]
    pub fn is_traced(self) -> bool {
        if load::<u32>(self.0, config!(off.dev_ifindex)) != config!(ifindex) {
            return false;
        }
        let net: *const u8 = load(self.0, config!(off.dev_nd_net));
        load::<u32>(net, config!(off.net_ns_inum)) == config!(netns_ino)
    }

    /// `dev->mtu`
    #[inline(always)]
    pub fn mtu(self) -> u32 {
        load(self.0, config!(off.dev_mtu))
    }
}

impl Sock {
    pub fn new(ptr: *const u8) -> Sock {
        Sock(ptr)
    }

    /// The device of the socket's cached route, `sk->sk_dst_cache->dev`
    /// (include/net/sock.h, include/net/dst.h): where its segments leave.
    /// A socket without a cached route gives a NULL device, which reads as
    /// no device at all.
    #[inline(always)]
    pub fn route_dev(self) -> NetDev {
        let dst: *const u8 = load(self.0, config!(off.sk_dst_cache));
        NetDev(load(dst, config!(off.dst_dev)))
    }
}

impl Sock {
    /// A `struct tcp_sock` field. The tracepoint types the socket as a
    /// `struct sock`, whose end the verifier will not let a load pass
    /// ("access beyond struct sock"): read it with the helper instead.
    #[inline(always)]
    fn tcp_field(self, off: u32) -> u32 {
        let at = self.0.wrapping_add(off as usize) as *const u32;
        // SAFETY: bpf_probe_read_kernel checks the address itself.
        unsafe { bpf_probe_read_kernel(at) }.unwrap_or(0)
    }

    /// `tcp_sk(sk)->srtt_us`: the smoothed RTT in µs, times 8
    /// (include/linux/tcp.h).
    #[inline(always)]
    pub fn srtt_us(self) -> u32 {
        self.tcp_field(config!(off.tcp_srtt_us))
    }

    /// `tcp_sk(sk)->snd_cwnd`, segments.
    #[inline(always)]
    pub fn cwnd(self) -> u32 {
        self.tcp_field(config!(off.tcp_snd_cwnd))
    }
}

impl Napi {
    pub fn new(ptr: *const u8) -> Napi {
        Napi(ptr)
    }

    /// `napi->dev`
    #[inline(always)]
    pub fn dev(self) -> NetDev {
        NetDev(load(self.0, config!(off.napi_dev)))
    }

    /// `napi->napi_id`
    #[inline(always)]
    pub fn id(self) -> u32 {
        load(self.0, config!(off.napi_id))
    }
}
