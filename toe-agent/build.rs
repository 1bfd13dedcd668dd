//! Builds the eBPF object with aya-build (nightly, `-Z build-std=core`,
//! bpfel-unknown-none, bpf-linker on PATH) and embeds it in the agent.
//!
//! With `AYA_BUILD_SKIP=1` (clippy, docs, machines without the eBPF
//! toolchain) an empty placeholder is written instead; the agent then refuses
//! to trace with a message saying how to build it properly.
use std::{env, fs, path::PathBuf};

fn main() -> anyhow::Result<()> {
    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow::anyhow!("OUT_DIR not set"))?);
    let object = out_dir.join("toe-agent");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        fs::write(&object, b"")?;
        return Ok(());
    }
    let manifest_dir = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR")
            .ok_or_else(|| anyhow::anyhow!("CARGO_MANIFEST_DIR not set"))?,
    );
    let ebpf_dir = manifest_dir.join("../toe-agent-ebpf");
    let ebpf_dir = ebpf_dir.to_string_lossy();
    println!("cargo:rerun-if-changed=../toe-agent-common/src");
    // Each probe family keeps its kernel programs in its own folder.
    println!("cargo:rerun-if-changed=src/probes");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "toe-agent-ebpf",
            root_dir: &ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
