//! Rare diagnostics, through aya-log: a condition the programs do not
//! expect, or (at debug level) the shape of the first packet a hook sees.
//! The agent shows them at the user's `--log-level`, which the loader
//! writes into aya-log's `AYA_LOG_LEVEL` in `.rodata` before load, so the
//! verifier removes a site whose level is off and it costs nothing. A site
//! that is on logs once per CPU per load: a condition that holds for every
//! packet must not fill the ring buffer.
use aya_ebpf::{macros::map, maps::PerCpuArray};

use crate::percpu::this_cpu;

/// NAPI_BY_ID has no room for another NAPI instance.
pub const NAPI_IDS_FULL: usize = 0;
/// A drop reason beyond the agent's table.
pub const DROP_REASON_RANGE: usize = 1;
/// The first packet at a hand-off hook: `FIRST_HANDOFF + HOOK_*`.
pub const FIRST_HANDOFF: usize = 2;
const SITES: usize = 8;

#[map]
static DIAG_SEEN: PerCpuArray<[u8; SITES]> = PerCpuArray::with_max_entries(1, 0);

/// True the first time `site` asks on this CPU.
#[inline(always)]
pub fn first(site: usize) -> bool {
    let Some(seen) = this_cpu(&DIAG_SEEN) else {
        return false;
    };
    let s = &mut seen[site & (SITES - 1)];
    let first = *s == 0;
    *s = 1;
    first
}

/// `diag!(Warn, SITE, "format", args...)`: log once per CPU at `level`
/// when that level is on.
macro_rules! diag {
    ($level:ident, $site:expr, $($fmt:tt)+) => {
        if aya_log_ebpf::macro_support::level_enabled(aya_log_ebpf::macro_support::Level::$level)
            && $crate::diag::first($site)
        {
            // aya-log's macros take a context and do not use it (its
            // record goes to the AYA_LOGS ring buffer).
            aya_log_ebpf::log!((), aya_log_ebpf::macro_support::Level::$level, $($fmt)+);
        }
    };
}
pub(crate) use diag;
