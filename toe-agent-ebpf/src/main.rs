//! Kernel side of toe-agent: count and bucket, nothing else.
//!
//! Every program filters on the traced device first (index and network
//! namespace, see `skb.rs`), then does one per-CPU map lookup and a handful
//! of increments. Judgement lives in userspace.
#![no_std]
#![no_main]

mod baseline;
mod classic;
mod diag;
mod hist;
mod percpu;
mod skb;

// The programs live with their probe family, next to the userspace half
// that attaches them and the catalogue entries they feed
// (toe-agent/src/probes/<family>/kernel.rs), like the layouts they fill
// (compiled into toe-agent-common): build.rs lists the folders.
include!(concat!(env!("OUT_DIR"), "/families.rs"));

use toe_agent_common::Config;

/// Filled in by the loader (`EbpfLoader::set_global`) before load. It lives
/// in `.rodata`, which aya freezes, so the verifier knows every offset as a
/// constant when it checks a BTF pointer access.
#[unsafe(no_mangle)]
static CONFIG: Config = Config {
    ifindex: 0,
    netns_ino: 0,
    ifname: [0; 16],
    off: toe_agent_common::Offsets::ZERO,
};

/// One field of `CONFIG`. The volatile read stops LLVM from folding the
/// zero initialiser into the code: the loader changes it after compilation.
macro_rules! config {
    ($($field:tt)+) => {
        $crate::read_config(&$crate::CONFIG.$($field)+)
    };
}
pub(crate) use config;

#[inline(always)]
fn read_config<T: Copy>(field: &T) -> T {
    // SAFETY: `field` is a reference into a static, valid and aligned.
    unsafe { core::ptr::read_volatile(field) }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
