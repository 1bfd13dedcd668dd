//! Kernel structure offsets from the running kernel's BTF.
//!
//! Rust eBPF programs get no CO-RE relocations, so every field they read
//! through a BTF pointer is located here, at start-up, and handed to them in
//! `Config::off`.
use std::path::Path;

use btf_rs::{Btf, Type};
use toe_agent_common::Offsets;

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading kernel BTF from {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF: {0}")]
    Layout(String),
}

/// Where a member lies within its outermost struct.
#[derive(Debug, Clone, Copy)]
struct Loc {
    bit_offset: u32,
    bitfield_size: Option<u32>,
}

impl Loc {
    fn byte(self) -> u32 {
        self.bit_offset / 8
    }
}

pub struct KernelBtf {
    btf: Btf,
}

impl KernelBtf {
    pub fn open(path: &Path) -> Result<Self, BtfError> {
        Btf::from_file(path)
            .map(|btf| KernelBtf { btf })
            .map_err(|e| BtfError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    fn strukt(&self, name: &str) -> Result<btf_rs::Struct, BtfError> {
        let types = self
            .btf
            .resolve_types_by_name(name)
            .map_err(|_| BtfError::NoStruct(name.to_string()))?;
        types
            .into_iter()
            .find_map(|t| match t {
                // A forward declaration or an empty stub has no members.
                Type::Struct(s) if !s.members.is_empty() => Some(s),
                _ => None,
            })
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))
    }

    /// Follow typedefs and qualifiers down to a struct or union, if any.
    fn as_struct(&self, mut t: Type) -> Option<btf_rs::Struct> {
        for _ in 0..16 {
            t = match t {
                Type::Struct(s) | Type::Union(s) => return Some(s),
                Type::Typedef(ref x) => self.btf.resolve_chained_type(x).ok()?,
                Type::Const(ref x) | Type::Volatile(ref x) | Type::Restrict(ref x) => {
                    self.btf.resolve_chained_type(x).ok()?
                }
                Type::TypeTag(ref x) => self.btf.resolve_chained_type(x).ok()?,
                _ => return None,
            };
        }
        None
    }

    /// Find `name` among the members of `s`, descending into anonymous
    /// structs and unions (sk_buff is full of them).
    fn find_in(&self, s: &btf_rs::Struct, name: &str, base: u32) -> Option<(Loc, Type)> {
        for m in &s.members {
            let mname = self.btf.resolve_name(m).unwrap_or_default();
            let ty = self.btf.resolve_chained_type(m).ok();
            if mname == name {
                let loc = Loc {
                    bit_offset: base + m.bit_offset(),
                    bitfield_size: m.bitfield_size().filter(|&b| b != 0),
                };
                return ty.map(|t| (loc, t));
            }
            if mname.is_empty()
                && let Some(inner) = ty.and_then(|t| self.as_struct(t))
                && let Some(found) = self.find_in(&inner, name, base + m.bit_offset())
            {
                return Some(found);
            }
        }
        None
    }

    /// Offset of `strukt.a.b.c` (a path through nested struct members).
    fn member(&self, strukt: &str, path: &[&str]) -> Result<Loc, BtfError> {
        let mut s = self.strukt(strukt)?;
        let mut base = 0;
        let mut loc = None;
        for (i, name) in path.iter().enumerate() {
            let (l, ty) = self
                .find_in(&s, name, base)
                .ok_or_else(|| BtfError::NoMember {
                    strukt: strukt.to_string(),
                    member: path[..=i].join("."),
                })?;
            loc = Some(l);
            if i + 1 < path.len() {
                s = self.as_struct(ty).ok_or_else(|| {
                    BtfError::Layout(format!("{strukt}.{} is not a struct", path[..=i].join(".")))
                })?;
                base = l.bit_offset;
            }
        }
        loc.ok_or_else(|| BtfError::Layout("empty member path".into()))
    }

    fn byte_offset(&self, strukt: &str, path: &[&str]) -> Result<u32, BtfError> {
        let loc = self.member(strukt, path)?;
        if loc.bitfield_size.is_some() || loc.bit_offset % 8 != 0 {
            return Err(BtfError::Layout(format!(
                "{strukt}.{} is a bitfield",
                path.join(".")
            )));
        }
        Ok(loc.byte())
    }

    /// Every offset the programs need. Fails on the first one missing: the
    /// caller then falls back to classic tracepoints.
    pub fn offsets(&self) -> Result<Offsets, BtfError> {
        let ip_summed = self.member("sk_buff", &["ip_summed"])?;
        let shift = ip_summed.bit_offset % 8;
        if ip_summed.bitfield_size != Some(2) || shift > 6 {
            return Err(BtfError::Layout(format!(
                "sk_buff.ip_summed is not a 2-bit field within one byte (bit {}, size {:?})",
                ip_summed.bit_offset, ip_summed.bitfield_size
            )));
        }
        let off = Offsets {
            skb_len: self.byte_offset("sk_buff", &["len"])?,
            skb_dev: self.byte_offset("sk_buff", &["dev"])?,
            skb_head: self.byte_offset("sk_buff", &["head"])?,
            skb_end: self.byte_offset("sk_buff", &["end"])?,
            skb_ip_summed_byte: ip_summed.byte(),
            skb_ip_summed_shift: shift,
            skb_queue_mapping: self.byte_offset("sk_buff", &["queue_mapping"])?,
            shinfo_gso_size: self.byte_offset("skb_shared_info", &["gso_size"])?,
            shinfo_gso_segs: self.byte_offset("skb_shared_info", &["gso_segs"])?,
            dev_ifindex: self.byte_offset("net_device", &["ifindex"])?,
            dev_nd_net: self.byte_offset("net_device", &["nd_net", "net"])?,
            dev_mtu: self.byte_offset("net_device", &["mtu"])?,
            net_ns_inum: self.byte_offset("net", &["ns", "inum"])?,
            napi_dev: self.byte_offset("napi_struct", &["dev"])?,
            napi_id: self.byte_offset("napi_struct", &["napi_id"])?,
        };
        // The programs read gso_size and gso_segs (u16 each) out of the first
        // 8 bytes of skb_shared_info with a single helper call.
        if off.shinfo_gso_size > 6 || off.shinfo_gso_segs > 6 {
            return Err(BtfError::Layout(format!(
                "skb_shared_info.gso_size/gso_segs at {}/{}, beyond the first 8 bytes",
                off.shinfo_gso_size, off.shinfo_gso_segs
            )));
        }
        Ok(off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs wherever the kernel exposes BTF (every machine of this kind);
    /// checks the offsets against facts true of every 64-bit kernel.
    #[test]
    fn resolves_offsets_from_running_kernel() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            eprintln!("skipped: {VMLINUX_BTF} not present");
            return;
        }
        let off = KernelBtf::open(path).unwrap().offsets().unwrap();
        // sk_buff begins with next/prev (or rbnode) and sk/ip_defrag_offset: dev follows them.
        assert_eq!(off.skb_dev, 16);
        assert!(off.skb_len > off.skb_dev);
        assert!(off.skb_head > off.skb_len, "{off:?}");
        assert_eq!(off.shinfo_gso_segs, off.shinfo_gso_size + 2);
        assert_ne!(off.dev_ifindex, 0);
        assert_ne!(off.net_ns_inum, 0);
    }
}
