//! Probe families, one folder each: `probes/<family>/kernel.rs` holds the
//! kernel programs (compiled into toe-agent-ebpf through a `#[path]`
//! module), `probes/<family>/layout.rs` the map value they fill (compiled
//! into toe-agent-common), `probes/<family>/period.rs` the family's part of
//! a period's blocks (NDJSON), and `probes/<family>/mod.rs` what else
//! userspace needs to know about them: the programs to attach and their
//! classic fallbacks, the kernel structures their BTF programs read, and
//! the catalogue entries they feed. [`registry`] registers the families;
//! from it comes [`FAMILIES`]: the loader attaches every program listed
//! there, the catalogue iterates their quantities, and a test checks that
//! the programs compiled into the object are exactly these.
use crate::{
    kernel::btf::{KernelBtf, OffsetGroup},
    model::catalogue::Quantity,
};

/// One program: a BTF tracepoint, and the classic tracepoint to fall back on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Program name in the object, and the tp_btf tracepoint it attaches to.
    pub(crate) name: &'static str,
    /// `(group, event, program)` of the classic tracepoint fallback.
    pub(crate) classic: Option<(&'static str, &'static str, &'static str)>,
    /// Fires once per wire segment rather than once per skb: left out by
    /// `--per-skb`, and run in sampling windows.
    pub(crate) per_segment: bool,
    /// Run in sampling windows (docs/sampling.md): the per-segment
    /// programs, and those whose only figure is a distribution, which the
    /// windows sample as well as the whole time.
    pub(crate) windowed: bool,
}

impl Spec {
    pub(crate) const fn btf(name: &'static str) -> Spec {
        Spec {
            name,
            classic: None,
            per_segment: false,
            windowed: false,
        }
    }

    /// With its classic tracepoint `group/name`, whose program is `<name>_tp`.
    pub(crate) const fn or_classic(mut self, group: &'static str, prog: &'static str) -> Spec {
        self.classic = Some((group, self.name, prog));
        self
    }

    pub(crate) const fn per_segment(mut self) -> Spec {
        self.per_segment = true;
        self.windowed = true;
        self
    }

    /// Run in the sampling windows only: a program whose only figure is a
    /// distribution.
    pub(crate) const fn windowed(mut self) -> Spec {
        self.windowed = true;
        self
    }
}

pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) programs: &'static [Spec],
    /// The kernel structures its BTF programs read: when the running
    /// kernel's BTF lacks one, this family (and only this one) falls back
    /// to its classic tracepoints.
    pub(crate) reads: &'static [OffsetGroup],
    /// What else the family reads from the kernel's BTF when it is there
    /// (the names of an enum, say).
    pub(crate) learn: Option<fn(&KernelBtf)>,
    pub(crate) quantities: &'static [Quantity],
}

/// The families' modules and [`FAMILIES`], from
/// [`registry::registered`](registry).
macro_rules! families {
    ($($(#[$attr:meta])* $section:ident: $block:ident {
        $($family:ident: [$($maps:tt)*]),+ $(,)?
    }),+ $(,)?) => {
        $($(pub(crate) mod $family;)+)+

        pub(crate) const FAMILIES: &[Family] = &[$($($family::FAMILY),+),+];
    };
}

pub(crate) mod registry;
registry::registered!(families);

/// Every quantity of the catalogue, family by family: the order the sinks
/// show them in.
pub(crate) fn quantities() -> impl Iterator<Item = &'static Quantity> {
    FAMILIES.iter().flat_map(|f| f.quantities.iter())
}

/// Every program spec, family by family.
pub(crate) fn specs() -> impl Iterator<Item = (&'static Family, &'static Spec)> {
    FAMILIES
        .iter()
        .flat_map(|f| f.programs.iter().map(move |s| (f, s)))
}

/// Is `hook` a per-segment hook ([`Spec::per_segment`])?
pub(crate) fn is_per_segment(hook: &str) -> bool {
    specs().any(|(_, s)| s.name == hook && s.per_segment)
}

/// The BTF tracepoints, by hook name.
pub(crate) fn btf_hooks() -> Vec<&'static str> {
    specs().map(|(_, s)| s.name).collect()
}
