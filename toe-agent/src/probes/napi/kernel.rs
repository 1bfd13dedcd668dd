//! Kernel side of the NAPI family (compiled into toe-agent-ebpf): polls of
//! the traced device.
use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, map, tracepoint},
    maps::{PerCpuArray, PerCpuHashMap},
    programs::{BtfTracePointContext, TracePointContext},
};
use toe_agent_common::{NapiIdStats, NapiStats};

use crate::{
    classic::{PASS, field, names_traced_dev},
    diag::{self, diag},
    hist,
    percpu::this_cpu,
    skb::Napi,
};

#[map]
static NAPI: PerCpuArray<NapiStats> = PerCpuArray::with_max_entries(1, 0);

/// Per NAPI instance; a device has one per queue (and veth one per rx queue).
#[map]
static NAPI_BY_ID: PerCpuHashMap<u32, NapiIdStats> = PerCpuHashMap::with_max_entries(256, 0);

/// `trace_napi_poll(n, work, weight)` in __napi_poll() (net/core/dev.c), with
/// `(struct napi_struct *napi, int work, int budget)`
/// (include/trace/events/napi.h).
#[btf_tracepoint(function = "napi_poll")]
pub fn napi_poll(ctx: BtfTracePointContext) -> i32 {
    let napi = Napi::new(ctx.arg(0));
    let took = poll_time();
    if !napi.dev().is_traced() {
        return 0;
    }
    record_duration(took);
    let work: u64 = ctx.arg(1);
    let budget: u64 = ctx.arg(2);
    record_poll(work as i32 as i64, budget as i32 as i64, Some(napi.id()));
    0
}

/// How long the poll that just ended took, if it ran in a NET_RX softirq:
/// net_rx_action() (net/core/dev.c) polls one NAPI instance after another,
/// so a poll began when the softirq did or when the previous poll on this
/// CPU ended. Every device's poll moves the mark, so this runs before the
/// device filter; busy polling and threaded NAPI run outside the softirq
/// and are not timed.
#[inline(always)]
fn poll_time() -> Option<u64> {
    let entered = crate::softirq::net_rx_entered();
    let s = this_cpu(&NAPI)?;
    if entered == 0 {
        s.last_poll_ts = 0;
        return None;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let began = if s.last_poll_ts > entered {
        s.last_poll_ts
    } else {
        entered
    };
    s.last_poll_ts = now;
    Some(now.wrapping_sub(began))
}

#[inline(always)]
fn record_duration(took: Option<u64>) {
    if let (Some(d), Some(s)) = (took, this_cpu(&NAPI)) {
        hist::add(&mut s.poll_ns, d);
    }
}

/// Count one poll; the classic fallback has no napi id.
#[inline(always)]
pub fn record_poll(work: i64, budget: i64, id: Option<u32>) {
    let exhausted = (work >= budget) as u64;
    if let Some(s) = this_cpu(&NAPI) {
        hist::add(&mut s.work, work.max(0) as u64);
        s.budget_exhausted += exhausted;
    }
    let Some(id) = id else { return };
    match NAPI_BY_ID.get_ptr_mut(&id) {
        // SAFETY: this CPU's value in a per-CPU hash, as in this_cpu().
        Some(e) => unsafe {
            (*e).polls += 1;
            (*e).work += work.max(0) as u64;
            (*e).budget_exhausted += exhausted;
            (*e).budget = budget as u64;
        },
        None => {
            let e = NapiIdStats {
                polls: 1,
                work: work.max(0) as u64,
                budget_exhausted: exhausted,
                budget: budget as u64,
            };
            if NAPI_BY_ID.insert(&id, &e, 0).is_err() {
                diag!(
                    Warn,
                    diag::NAPI_IDS_FULL,
                    "NAPI_BY_ID is full: the polls of napi_id {} count in the totals only",
                    id
                );
            }
        }
    }
}

/// napi_poll: napi@8 dev_name@16 work@20 budget@24. No napi id without BTF.
#[tracepoint]
pub fn napi_poll_tp(ctx: TracePointContext) -> u32 {
    let took = poll_time();
    if names_traced_dev(&ctx, 16) {
        record_duration(took);
        let work: i32 = field(&ctx, 20);
        let budget: i32 = field(&ctx, 24);
        record_poll(work as i64, budget as i64, None);
    }
    PASS
}
