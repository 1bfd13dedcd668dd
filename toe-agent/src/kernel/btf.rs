//! Kernel structure offsets from the running kernel's BTF.
//!
//! Rust eBPF programs get no CO-RE relocations, so every field they read
//! through a BTF pointer is located here, at start-up, and handed to them in
//! `Config::off`.
//!
//! A small reader over the raw BTF bytes (include/uapi/linux/btf.h) rather
//! than a general BTF library: it needs a handful of struct members, and a
//! full parse of vmlinux BTF into owned types doubled the agent's peak
//! memory (42 MiB against the 32 MiB budget). This one keeps the file and an
//! offset per type id.
use std::path::Path;

use toe_agent_common::Offsets;

pub(crate) const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub(crate) enum BtfError {
    #[error("reading kernel BTF from {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("kernel BTF is malformed: {0}")]
    Malformed(String),
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF: {0}")]
    Layout(String),
}

// BTF kinds (include/uapi/linux/btf.h).
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Where a member lies within its outermost struct.
#[derive(Debug, Clone, Copy)]
struct Loc {
    bit_offset: u32,
    bitfield_size: Option<u32>,
    type_id: u32,
}

impl Loc {
    fn byte(self) -> u32 {
        self.bit_offset / 8
    }
}

/// A `struct btf_type` header.
#[derive(Debug, Clone, Copy)]
struct TypeHdr {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kind_flag: bool,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    /// Byte offset of what follows the header (members, ...).
    body: usize,
}

pub(crate) struct KernelBtf {
    data: Vec<u8>,
    types_start: usize,
    strs_start: usize,
    strs_len: usize,
    /// Byte offset of each type's header, by type id (id 0 is void).
    offsets: Vec<usize>,
}

/// How deep anonymous structs and unions nest, at most, in what the probes
/// read (the kernel's deepest, in sk_buff, are three).
const NESTING: u32 = 16;

impl KernelBtf {
    pub(crate) fn open(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|e| BtfError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(data)
    }

    pub(crate) fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        let u32_at = |o: usize| -> Result<u32, BtfError> {
            data.get(o..o + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| BtfError::Malformed(format!("truncated at byte {o}")))
        };
        // struct btf_header: magic u16, version u8, flags u8, hdr_len,
        // type_off, type_len, str_off, str_len (little endian on x86).
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != 0xeb9f {
            return Err(BtfError::Malformed(
                "bad magic (not little-endian BTF)".into(),
            ));
        }
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let types_start = hdr_len + type_off;
        let strs_start = hdr_len + str_off;
        if types_start + type_len > data.len() || strs_start + str_len > data.len() {
            return Err(BtfError::Malformed(
                "sections beyond the end of the file".into(),
            ));
        }
        let mut offsets = vec![0usize]; // id 0: void
        let mut o = types_start;
        while o < types_start + type_len {
            offsets.push(o);
            let info = u32_at(o + 4)?;
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                0..=19 => 0,
                k => return Err(BtfError::Malformed(format!("unknown kind {k} at byte {o}"))),
            };
            o += 12 + extra;
        }
        Ok(KernelBtf {
            data,
            types_start,
            strs_start,
            strs_len: str_len,
            offsets,
        })
    }

    fn u32_at(&self, o: usize) -> u32 {
        self.data
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    }

    fn name(&self, off: u32) -> &str {
        let off = off as usize;
        if off >= self.strs_len {
            return "";
        }
        let s = &self.data[self.strs_start + off..self.strs_start + self.strs_len];
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    fn hdr(&self, id: u32) -> Option<TypeHdr> {
        let o = *self.offsets.get(id as usize)?;
        if id == 0 || o < self.types_start {
            return None;
        }
        let info = self.u32_at(o + 4);
        Some(TypeHdr {
            name_off: self.u32_at(o),
            kind: (info >> 24) & 0x1f,
            vlen: info & 0xffff,
            kind_flag: info >> 31 == 1,
            size_or_type: self.u32_at(o + 8),
            body: o + 12,
        })
    }

    /// Follow typedefs and qualifiers down to a struct or union.
    fn as_struct(&self, mut id: u32) -> Option<TypeHdr> {
        for _ in 0..16 {
            let t = self.hdr(id)?;
            match t.kind {
                KIND_STRUCT | KIND_UNION => return Some(t),
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return None,
            }
        }
        None
    }

    fn strukt(&self, name: &str) -> Result<TypeHdr, BtfError> {
        (1..self.offsets.len() as u32)
            .filter_map(|id| self.hdr(id))
            // A forward declaration or an empty stub has no members.
            .find(|t| t.kind == KIND_STRUCT && t.vlen > 0 && self.name(t.name_off) == name)
            .ok_or_else(|| BtfError::NoStruct(name.to_string()))
    }

    /// Find `name` among the members of `s`, descending into anonymous
    /// structs and unions (sk_buff is full of them), at most [`NESTING`]
    /// deep: a malformed blob can make an anonymous member its own type.
    fn find_in(&self, s: TypeHdr, name: &str, base: u32) -> Option<Loc> {
        self.find_nested(s, name, base, NESTING)
    }

    fn find_nested(&self, s: TypeHdr, name: &str, base: u32, depth: u32) -> Option<Loc> {
        for i in 0..s.vlen as usize {
            // struct btf_member { name_off; type; offset; }
            let m = s.body + 12 * i;
            let (mname, mtype, moff) = (self.u32_at(m), self.u32_at(m + 4), self.u32_at(m + 8));
            let (bit_offset, bitfield_size) = if s.kind_flag {
                (moff & 0x00ff_ffff, Some(moff >> 24).filter(|&b| b != 0))
            } else {
                (moff, None)
            };
            let mname = self.name(mname);
            let bit_offset = base.checked_add(bit_offset)?;
            if mname == name {
                return Some(Loc {
                    bit_offset,
                    bitfield_size,
                    type_id: mtype,
                });
            }
            if mname.is_empty()
                && depth > 0
                && let Some(inner) = self.as_struct(mtype)
                && let Some(found) = self.find_nested(inner, name, bit_offset, depth - 1)
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
            let l = self
                .find_in(s, name, base)
                .ok_or_else(|| BtfError::NoMember {
                    strukt: strukt.to_string(),
                    member: path[..=i].join("."),
                })?;
            loc = Some(l);
            if i + 1 < path.len() {
                s = self.as_struct(l.type_id).ok_or_else(|| {
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

    /// The values of `enum name` (KIND_ENUM or KIND_ENUM64) by name, for
    /// enums whose values the kernel changes between versions (drop
    /// reasons). Values above `u32::MAX` are left out.
    pub(crate) fn enum_values(&self, name: &str) -> Result<Vec<(u32, String)>, BtfError> {
        let e = (1..self.offsets.len() as u32)
            .filter_map(|id| self.hdr(id))
            .find(|t| {
                (t.kind == KIND_ENUM || t.kind == KIND_ENUM64)
                    && t.vlen > 0
                    && self.name(t.name_off) == name
            })
            .ok_or_else(|| BtfError::NoStruct(format!("enum {name}")))?;
        // struct btf_enum { name_off; val } and btf_enum64 { name_off;
        // val_lo32; val_hi32 } (include/uapi/linux/btf.h).
        let step = if e.kind == KIND_ENUM64 { 12 } else { 8 };
        Ok((0..e.vlen as usize)
            .filter_map(|i| {
                let o = e.body + i * step;
                let high = if step == 12 { self.u32_at(o + 8) } else { 0 };
                (high == 0).then(|| (self.u32_at(o + 4), self.name(self.u32_at(o)).to_string()))
            })
            .collect())
    }

    /// The `sk_buff` and `skb_shared_info` fields.
    fn skb_offsets(&self, off: &mut Offsets) -> Result<(), BtfError> {
        let ip_summed = self.member("sk_buff", &["ip_summed"])?;
        let shift = ip_summed.bit_offset % 8;
        if ip_summed.bitfield_size != Some(2) || shift > 6 {
            return Err(BtfError::Layout(format!(
                "sk_buff.ip_summed is not a 2-bit field within one byte (bit {}, size {:?})",
                ip_summed.bit_offset, ip_summed.bitfield_size
            )));
        }
        off.skb_len = self.byte_offset("sk_buff", &["len"])?;
        off.skb_dev = self.byte_offset("sk_buff", &["dev"])?;
        off.skb_head = self.byte_offset("sk_buff", &["head"])?;
        off.skb_end = self.byte_offset("sk_buff", &["end"])?;
        off.skb_ip_summed_byte = ip_summed.byte();
        off.skb_ip_summed_shift = shift;
        off.skb_queue_mapping = self.byte_offset("sk_buff", &["queue_mapping"])?;
        off.skb_protocol = self.byte_offset("sk_buff", &["protocol"])?;
        off.skb_data = self.byte_offset("sk_buff", &["data"])?;
        off.shinfo_gso_size = self.byte_offset("skb_shared_info", &["gso_size"])?;
        off.shinfo_gso_segs = self.byte_offset("skb_shared_info", &["gso_segs"])?;
        off.shinfo_gso_type = self.byte_offset("skb_shared_info", &["gso_type"])?;
        // The programs read gso_size and gso_segs (u16 each) out of the first
        // 8 bytes of skb_shared_info with a single helper call.
        if off.shinfo_gso_size > 6 || off.shinfo_gso_segs > 6 {
            return Err(BtfError::Layout(format!(
                "skb_shared_info.gso_size/gso_segs at {}/{}, beyond the first 8 bytes",
                off.shinfo_gso_size, off.shinfo_gso_segs
            )));
        }
        Ok(())
    }

    /// The `net_device` fields and its namespace's inode number.
    fn dev_offsets(&self, off: &mut Offsets) -> Result<(), BtfError> {
        off.dev_ifindex = self.byte_offset("net_device", &["ifindex"])?;
        off.dev_nd_net = self.byte_offset("net_device", &["nd_net", "net"])?;
        off.dev_mtu = self.byte_offset("net_device", &["mtu"])?;
        off.net_ns_inum = self.byte_offset("net", &["ns", "inum"])?;
        Ok(())
    }

    /// The `sock` and `dst_entry` fields: a socket's route and its device.
    fn sock_offsets(&self, off: &mut Offsets) -> Result<(), BtfError> {
        off.sk_dst_cache = self.byte_offset("sock", &["sk_dst_cache"])?;
        off.dst_dev = self.byte_offset("dst_entry", &["dev"])?;
        Ok(())
    }

    /// The `tcp_sock` fields (a TCP socket's `struct sock` is the start of
    /// its `struct tcp_sock`).
    fn tcp_sock_offsets(&self, off: &mut Offsets) -> Result<(), BtfError> {
        off.tcp_srtt_us = self.byte_offset("tcp_sock", &["srtt_us"])?;
        off.tcp_snd_cwnd = self.byte_offset("tcp_sock", &["snd_cwnd"])?;
        Ok(())
    }

    /// The `napi_struct` fields.
    fn napi_offsets(&self, off: &mut Offsets) -> Result<(), BtfError> {
        off.napi_dev = self.byte_offset("napi_struct", &["dev"])?;
        off.napi_id = self.byte_offset("napi_struct", &["napi_id"])?;
        Ok(())
    }

    /// Every offset the programs need, group by group: a group the kernel
    /// lacks is reported in [`Resolved::missing`] and left zero, and only
    /// the probe families that read it fall back to classic tracepoints.
    pub(crate) fn offsets(&self) -> Resolved {
        let mut off = Offsets::default();
        let mut missing = Vec::new();
        for group in OffsetGroup::ALL {
            let mut attempt = off;
            let result = match group {
                OffsetGroup::Skb => self.skb_offsets(&mut attempt),
                OffsetGroup::Dev => self.dev_offsets(&mut attempt),
                OffsetGroup::Napi => self.napi_offsets(&mut attempt),
                OffsetGroup::Sock => self.sock_offsets(&mut attempt),
                OffsetGroup::TcpSock => self.tcp_sock_offsets(&mut attempt),
            };
            match result {
                Ok(()) => off = attempt,
                Err(e) => missing.push((group, e)),
            }
        }
        Resolved { off, missing }
    }
}

/// Groups of offsets, one per kernel structure family a probe family reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetGroup {
    /// `struct sk_buff` and `struct skb_shared_info`.
    Skb,
    /// `struct net_device` and `struct net`.
    Dev,
    /// `struct napi_struct`.
    Napi,
    /// `struct sock` and `struct dst_entry`.
    Sock,
    /// `struct tcp_sock`.
    TcpSock,
}

impl OffsetGroup {
    pub(crate) const ALL: [OffsetGroup; 5] = [
        OffsetGroup::Skb,
        OffsetGroup::Dev,
        OffsetGroup::Napi,
        OffsetGroup::Sock,
        OffsetGroup::TcpSock,
    ];
}

/// The offsets a kernel's BTF gave, and the groups it could not.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) off: Offsets,
    pub(crate) missing: Vec<(OffsetGroup, BtfError)>,
}

impl Resolved {
    /// Why a family reading `groups` cannot use its BTF programs, if it cannot.
    pub(crate) fn refusal(&self, groups: &[OffsetGroup]) -> Option<String> {
        self.missing
            .iter()
            .find(|(g, _)| groups.contains(g))
            .map(|(_, e)| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob built by hand: `int`, and
    /// `struct s { int a; union { int b; struct { int c:3; int d:2; }; }; struct t inner; }`
    /// with `struct t { int x; int y; }`.
    fn blob() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0b\0c\0d\0t\0x\0y\0inner\0";
        let name = |s: &str| {
            let pat = format!("\0{s}\0");
            strings
                .windows(pat.len())
                .position(|w| w == pat.as_bytes())
                .unwrap() as u32
                + 1
        };
        let mut types: Vec<u32> = Vec::new();
        let info = |kind: u32, vlen: u32, kflag: bool| (kind << 24) | vlen | ((kflag as u32) << 31);
        // 1: int (size 4, 32 bits)
        types.extend([name("int"), info(KIND_INT, 0, false), 4, 32]);
        // 2: struct t { int x @0; int y @32; }
        types.extend([name("t"), info(KIND_STRUCT, 2, false), 8]);
        types.extend([name("x"), 1, 0, name("y"), 1, 32]);
        // 3: anonymous struct { int c:3 @0; int d:2 @3; } (kind_flag: bitfields)
        types.extend([0, info(KIND_STRUCT, 2, true), 4]);
        types.extend([name("c"), 1, 3 << 24, name("d"), 1, (2 << 24) | 3]);
        // 4: anonymous union { int b; struct 3; }
        types.extend([0, info(KIND_UNION, 2, false), 4]);
        types.extend([name("b"), 1, 0, 0, 3, 0]);
        // 5: typedef t_t = struct t
        types.extend([name("t"), info(KIND_TYPEDEF, 0, false), 2]);
        // 6: struct s { int a @0; union 4 @32; t_t inner @64; }
        types.extend([name("s"), info(KIND_STRUCT, 3, false), 16]);
        types.extend([name("a"), 1, 0, 0, 4, 32, name("inner"), 5, 64]);
        with_header(&types, strings)
    }

    #[test]
    fn finds_members_through_anonymous_unions_bitfields_and_typedefs() {
        let btf = KernelBtf::parse(blob()).unwrap();
        assert_eq!(btf.byte_offset("s", &["a"]).unwrap(), 0);
        assert_eq!(btf.byte_offset("s", &["b"]).unwrap(), 4);
        let d = btf.member("s", &["d"]).unwrap();
        assert_eq!((d.bit_offset, d.bitfield_size), (35, Some(2)));
        assert!(
            btf.byte_offset("s", &["d"])
                .unwrap_err()
                .to_string()
                .contains("bitfield")
        );
        assert_eq!(btf.byte_offset("s", &["inner", "y"]).unwrap(), 12);
        let err = btf
            .byte_offset("s", &["inner", "z"])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "kernel BTF: struct s has no member inner.z");
        assert!(matches!(btf.strukt("nope"), Err(BtfError::NoStruct(_))));
    }

    #[test]
    fn rejects_garbage() {
        assert!(KernelBtf::parse(b"not btf at all, clearly".to_vec()).is_err());
        let mut b = blob();
        b.truncate(40);
        assert!(KernelBtf::parse(b).is_err());
    }

    /// A struct whose anonymous member is the struct itself (the fuzzer's
    /// find: it recursed until the stack overflowed) is a missing member.
    #[test]
    fn a_struct_that_contains_itself_is_refused() {
        // `int` (type 1); type 2: `struct sk_buff { struct sk_buff; }`.
        let strings = b"\0int\0sk_buff\0";
        let types = [
            1,
            KIND_INT << 24,
            4,
            32,
            5,
            (KIND_STRUCT << 24) | 1,
            8,
            0,
            2,
            0,
        ];
        let btf = KernelBtf::parse(with_header(&types, strings)).unwrap();
        assert!(matches!(
            btf.member("sk_buff", &["len"]),
            Err(BtfError::NoMember { .. })
        ));
    }

    /// A BTF blob: the header (include/uapi/linux/btf.h, `struct btf_header`,
    /// 24 bytes), the type section and the string section.
    fn with_header(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend(0xeb9fu16.to_le_bytes());
        out.extend([1u8, 0]);
        let lens = [
            24u32,
            0,
            type_bytes.len() as u32,
            type_bytes.len() as u32,
            strings.len() as u32,
        ];
        for w in lens {
            out.extend(w.to_le_bytes());
        }
        out.extend(type_bytes);
        out.extend(strings);
        out
    }

    /// BTF with `int` and the given structs of `int` members at byte offsets.
    fn structs_blob(structs: &[(&str, &[(&str, u32)])]) -> Vec<u8> {
        let mut strings = b"\0int\0".to_vec();
        let mut name = |s: &str| {
            let at = strings.len() as u32;
            strings.extend(s.as_bytes());
            strings.push(0);
            at
        };
        let mut types: Vec<u32> = vec![1, KIND_INT << 24, 4, 32];
        for (s, members) in structs {
            types.extend([name(s), (KIND_STRUCT << 24) | members.len() as u32, 64]);
            for (m, byte) in *members {
                types.extend([name(m), 1, byte * 8]);
            }
        }
        with_header(&types, &strings)
    }

    /// An enum's values by name, from BTF_KIND_ENUM's `btf_enum` entries.
    #[test]
    fn reads_an_enum() {
        // `int` (type 1) and `enum e { A = 0, B = 12 }` (type 2).
        let strings = b"\0int\0e\0A\0B\0";
        let (e, a, b) = (5u32, 7u32, 9u32);
        let mut types: Vec<u32> = vec![1, KIND_INT << 24, 4, 32];
        types.extend([e, (KIND_ENUM << 24) | 2, 4, a, 0, b, 12]);
        let blob = with_header(&types, strings);
        let btf = KernelBtf::parse(blob).unwrap();
        assert_eq!(
            btf.enum_values("e").unwrap(),
            [(0, "A".to_string()), (12, "B".to_string())]
        );
        assert!(btf.enum_values("nope").is_err());
    }

    /// A kernel whose BTF has `napi_struct` and `net_device`/`net` but no
    /// `sk_buff`: the NAPI family keeps its BTF programs, the skb families
    /// are refused with the reason, and a family reading nothing is never
    /// refused.
    #[test]
    fn offsets_resolve_group_by_group() {
        let btf = KernelBtf::parse(structs_blob(&[
            ("napi_struct", &[("dev", 8), ("napi_id", 16)]),
            ("net_device", &[("ifindex", 4), ("nd_net", 12), ("mtu", 20)]),
            ("possible_net_t", &[("net", 0)]),
            ("net", &[("ns", 0)]),
        ]))
        .unwrap();
        let r = btf.offsets();
        assert_eq!((r.off.napi_dev, r.off.napi_id), (8, 16));
        assert_eq!(
            r.off.dev_ifindex, 0,
            "nd_net is no struct here: the group fails whole"
        );
        let missing: Vec<OffsetGroup> = r.missing.iter().map(|(g, _)| *g).collect();
        assert_eq!(
            missing,
            [
                OffsetGroup::Skb,
                OffsetGroup::Dev,
                OffsetGroup::Sock,
                OffsetGroup::TcpSock
            ]
        );
        assert!(r.refusal(&[]).is_none());
        assert!(r.refusal(&[OffsetGroup::Napi]).is_none());
        let why = r.refusal(&[OffsetGroup::Skb, OffsetGroup::Dev]).unwrap();
        assert!(why.contains("sk_buff"), "{why}");
    }

    /// Runs wherever the kernel exposes BTF (every machine of this kind);
    /// checks the offsets against facts true of every 64-bit kernel.
    #[test]
    fn resolves_offsets_from_running_kernel() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            eprintln!("skipped: {VMLINUX_BTF} not present");
            return;
        }
        let resolved = KernelBtf::open(path).unwrap().offsets();
        assert!(resolved.missing.is_empty(), "{:?}", resolved.missing);
        let off = resolved.off;
        // sk_buff begins with next/prev (or rbnode) and sk/ip_defrag_offset: dev follows them.
        assert_eq!(off.skb_dev, 16);
        assert!(off.skb_len > off.skb_dev);
        assert!(off.skb_head > off.skb_len, "{off:?}");
        assert_eq!(off.shinfo_gso_segs, off.shinfo_gso_size + 2);
        assert!(off.shinfo_gso_type > off.shinfo_gso_segs, "{off:?}");
        assert!(off.skb_data > off.skb_head, "{off:?}");
        assert_ne!(off.dev_ifindex, 0);
        assert_ne!(off.net_ns_inum, 0);
        // Drop reasons by name; NOT_SPECIFIED has been 2 since reasons exist.
        let reasons = KernelBtf::open(path)
            .unwrap()
            .enum_values("skb_drop_reason")
            .unwrap();
        assert!(
            reasons.contains(&(2, "SKB_DROP_REASON_NOT_SPECIFIED".to_string())),
            "{reasons:?}"
        );
    }
}
