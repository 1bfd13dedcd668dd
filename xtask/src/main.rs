//! Build orchestration: `cargo xtask build | run | bench | soak | test | vm`.
//!
//! Each command first installs what is missing (the nightly `rust-src`
//! component; bpf-linker built against the nightly toolchain's own LLVM, into
//! `target/tools`; for tests, the Debian packages they use) and says in one
//! line what to do when it cannot.
use std::{
    env,
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

mod vm;

#[derive(Parser)]
#[command(name = "xtask", about = "Build, run and test toe-agent")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the release binary at target/release/toe-agent.
    Build,
    /// Build, then run the agent with the given arguments (e.g. `-- trace --iface eth0`).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Measure the agent's overhead on the lab veth pair (root); writes target/bench/overhead.json.
    Bench {
        /// Extra arguments for `toe-agent bench` (e.g. `--pairs 3`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// The soak (root): trace and serve for ten minutes under continuous
    /// veth traffic, an interface deleted and re-created again and again;
    /// writes target/soak/soak.json (docs/cli.md).
    Soak {
        /// How long, in minutes.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
    },
    /// Run every test: unit tests, then the privileged end-to-end tests.
    Test {
        /// Instead, run the VM matrix: the agent in QEMU guests against real
        /// NIC drivers and Debian kernels (docs/vm.md).
        #[arg(long)]
        vm: bool,
        #[command(flatten)]
        vm_opts: vm::VmOpts,
        /// Extra arguments for the test harness (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Run the agent in a QEMU guest with two NICs of a model joined by a hub,
    /// in namespaces toea (10.77.0.1, sender) and toeb (10.77.0.2, receiver),
    /// while iperf3 sends from toea to toeb until the agent exits:
    /// `cargo xtask vm --nic e1000e -- trace --iface toeb --duration 8`.
    /// The agent runs in toeb, or in toea when the first argument is `@toea`;
    /// without arguments, `trace --iface toeb --duration 20`. The first
    /// --kernel and --nic count; defaults 6.1 and e1000e (docs/vm.md).
    Vm {
        #[command(flatten)]
        opts: vm::VmOpts,
        /// Arguments for the agent.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// bpf-linker release known to work with these toolchains (docs/kernel-notes.md, "Toolchain").
const BPF_LINKER_VERSION: &str = "0.13.0";
/// Debian packages the end-to-end tests drive.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("iperf3", "iperf3"),
    ("ethtool", "ethtool"),
    ("bpftool", "bpftool"),
    ("perf", "linux-perf"),
    ("prometheus", "prometheus"),
    ("promtool", "prometheus"),
    ("curl", "curl"),
    ("nft", "nftables"),
    ("tmux", "tmux"),
];

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let root = workspace_root()?;
    let tools = root.join("target/tools");
    // The VM commands with a ready agent binary (--agent) build nothing.
    let builds = match &cli.cmd {
        Cmd::Vm { opts, .. }
        | Cmd::Test {
            vm: true,
            vm_opts: opts,
            ..
        } => opts.agent.is_none(),
        _ => true,
    };
    if builds {
        ensure_nightly_src()?;
        ensure_bpf_linker(&tools)?;
    }
    let path = path_with(&tools.join("bin"))?;
    match cli.cmd {
        Cmd::Build => {
            cargo(&root, &path, &["build", "--release", "-p", "toe-agent"])?;
            println!("built {}", root.join("target/release/toe-agent").display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { args } => {
            cargo(&root, &path, &["build", "--release", "-p", "toe-agent"])?;
            let status = Command::new(root.join("target/release/toe-agent"))
                .args(args)
                .status()
                .context("starting target/release/toe-agent")?;
            Ok(exit_code(status))
        }
        Cmd::Bench { args } => {
            cargo(&root, &path, &["build", "--release", "-p", "toe-agent"])?;
            let status = Command::new(root.join("target/release/toe-agent"))
                .current_dir(&root)
                .arg("bench")
                .arg("--out")
                .arg(root.join("target/bench/overhead.json"))
                .args(args)
                .status()
                .context("starting target/release/toe-agent bench")?;
            Ok(exit_code(status))
        }
        Cmd::Soak { minutes } => soak(&root, &path, minutes),
        Cmd::Vm { opts, args } => vm_run(&root, &path, &opts, &args),
        Cmd::Test {
            vm: true, vm_opts, ..
        } => vm_matrix(&root, &path, &vm_opts),
        Cmd::Test { args, .. } => test_all(&root, &path, &args),
    }
}

/// The README's test command: unit tests, the emulated NIC's privileged
/// tests, then the end-to-end tests.
fn test_all(root: &Path, path: &OsString, args: &[OsString]) -> anyhow::Result<ExitCode> {
    ensure_test_packages()?;
    cargo(root, path, &["build", "--release", "-p", "toe-agent"])?;
    // Unit tests of every crate but the end-to-end one.
    cargo(
        root,
        path,
        &[
            "test",
            "--release",
            "--workspace",
            "--exclude",
            "toe-agent-tests",
            "--exclude",
            "toe-agent-ebpf",
        ],
    )?;
    // The lab's emulated NIC against the real tun driver (root, its
    // own namespaces): kept `#[ignore]` so that a plain `cargo test`
    // stays unprivileged, run here one at a time.
    let status = Command::new("cargo")
        .current_dir(root)
        .env("PATH", path)
        .env("SILICON_SECS", "1")
        .args([
            "test",
            "--release",
            "-p",
            "toe-agent",
            "--lib",
            "silicon",
            "--",
        ])
        .args(["--ignored", "--test-threads=1"])
        .status()
        .context("running the emulated NIC's privileged tests")?;
    if !status.success() {
        bail!("the emulated NIC's privileged tests failed ({status})");
    }
    // End-to-end tests: one at a time, each owns namespaces and probes.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .env("PATH", path)
        .env("TOE_AGENT_BIN", root.join("target/release/toe-agent"))
        .args([
            "test",
            "--release",
            "-p",
            "toe-agent-tests",
            "--",
            "--test-threads=1",
        ])
        .args(args);
    let status = cmd.status().context("running cargo test")?;
    Ok(exit_code(status))
}

/// The soak test (`tests/tests/soak.rs`, ignored by `cargo xtask test`).
fn soak(root: &Path, path: &OsString, minutes: u64) -> anyhow::Result<ExitCode> {
    ensure_test_packages()?;
    cargo(root, path, &["build", "--release", "-p", "toe-agent"])?;
    let out = root.join("target/soak");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let status = Command::new("cargo")
        .current_dir(root)
        .env("PATH", path)
        .env("TOE_AGENT_BIN", root.join("target/release/toe-agent"))
        .env("TOE_SOAK_SECS", (minutes * 60).to_string())
        .env("TOE_SOAK_OUT", out.join("soak.json"))
        .args([
            "test",
            "--release",
            "-p",
            "toe-agent-tests",
            "--test",
            "soak",
        ])
        .args(["--", "--ignored", "--nocapture", "--test-threads=1"])
        .status()
        .context("running the soak")?;
    Ok(exit_code(status))
}

/// The agent binary the guests run: --agent, or a fresh release build.
fn vm_agent(root: &Path, path: &OsString, opts: &vm::VmOpts) -> anyhow::Result<PathBuf> {
    match &opts.agent {
        Some(a) => fs::canonicalize(a).with_context(|| format!("--agent {}", a.display())),
        None => {
            cargo(root, path, &["build", "--release", "-p", "toe-agent"])?;
            Ok(root.join("target/release/toe-agent"))
        }
    }
}

fn vm_run(
    root: &Path,
    path: &OsString,
    opts: &vm::VmOpts,
    args: &[OsString],
) -> anyhow::Result<ExitCode> {
    let host = vm::Host::prepare(root)?;
    let agent = vm_agent(root, path, opts)?;
    let kernel = host.kernel(opts.kernels.first().map_or("6.1", String::as_str))?;
    if let Some(why) = &kernel.unbootable {
        bail!("cannot boot {}: {why}", kernel.name);
    }
    let model = opts.nics.first().map_or("e1000e", String::as_str);
    let out = root.join("target/vm/out/run");
    let args = if args.is_empty() {
        ["trace", "--iface", "toeb", "--duration", "20"]
            .map(OsString::from)
            .to_vec()
    } else {
        args.to_vec()
    };
    let guest = vm::Guest {
        model,
        agent: &agent,
        secs: opts.secs,
        out: &out,
        setup: opts.setup.as_deref(),
        agent_args: &args,
    };
    let took = host.boot(&kernel, &guest)?;
    print!(
        "{}",
        fs::read_to_string(out.join("guest.log")).unwrap_or_default()
    );
    let rc = fs::read_to_string(out.join("rc")).unwrap_or_default();
    eprintln!(
        "xtask: {} with two {model} NICs, {:.0} s; files in {}",
        kernel.name,
        took.as_secs_f64(),
        out.display()
    );
    Ok(ExitCode::from(rc.trim().parse::<u8>().unwrap_or(1)))
}

/// One row: boot `kernel` with two `nic`s (and the variant's setup), read
/// what the agents and bpftrace wrote, and keep the row's line with its
/// files (`cat target/vm/out/*/*/row.md` puts several runs together).
fn vm_row(
    root: &Path,
    host: &vm::Host,
    kernel: &vm::Kernel,
    agent: &Path,
    opts: &vm::VmOpts,
    nic: &str,
    variant: Option<&(String, String)>,
) -> anyhow::Result<vm::Row> {
    let model = match variant {
        Some((v, _)) => format!("{nic}+{v}"),
        None => nic.to_string(),
    };
    let out = root.join("target/vm/out").join(&kernel.name).join(&model);
    eprintln!("xtask: {} × {model}", kernel.name);
    let guest = vm::Guest {
        model: nic,
        agent,
        secs: opts.secs,
        out: &out,
        setup: variant.map(|(_, s)| s.as_str()),
        agent_args: &[],
    };
    let boot = || match host.boot(kernel, &guest) {
        Ok(took) => vm::read_row(&kernel.name, &model, &out, took),
        Err(e) => vm::Row {
            kernel: kernel.name.clone(),
            model: model.clone(),
            booted: out.join("guest.log").exists(),
            stalled: e.downcast_ref::<vm::Stalled>().is_some(),
            note: format!("{e:#}"),
            ..vm::Row::default()
        },
    };
    let mut row = boot();
    if row.stalled {
        // The first boot's files stay beside the second's, for the record.
        let first = out.with_extension("first-boot");
        let _ = fs::remove_dir_all(&first);
        fs::rename(&out, &first)?;
        eprintln!(
            "xtask: {} × {model} stalled ({}); booting it once more, the first boot's files in {}",
            kernel.name,
            row.note,
            first.display()
        );
        let why = row.note;
        row = boot();
        row.first_boot = Some(why);
    }
    let line = vm::markdown(std::slice::from_ref(&row));
    let line = line.lines().last().unwrap_or("");
    eprintln!("{line}");
    if out.exists() {
        fs::write(out.join("row.md"), format!("{line}\n"))?;
    }
    Ok(row)
}

/// The kernels and models asked for, or all of them.
fn selection(opts: &vm::VmOpts) -> (Vec<String>, Vec<String>) {
    let kernels = if opts.kernels.is_empty() {
        vm::KERNELS
            .iter()
            .map(|k| k.to_string())
            .chain(["host".to_string()])
            .collect()
    } else {
        opts.kernels.clone()
    };
    let models = if opts.nics.is_empty() {
        vm::MODELS.iter().map(|(m, _)| m.to_string()).collect()
    } else {
        opts.nics.clone()
    };
    (kernels, models)
}

/// Every kernel × NIC model: boots, counts agree with bpftrace's, verdicts
/// are the expected ones (vm/expected.rs), and the table of what each
/// driver did (target/vm/matrix.md; the README's "tested on" table after
/// a full run).
fn vm_matrix(root: &Path, path: &OsString, opts: &vm::VmOpts) -> anyhow::Result<ExitCode> {
    let host = vm::Host::prepare(root)?;
    let agent = vm_agent(root, path, opts)?;
    let (kernels, models) = selection(opts);
    // The whole default matrix: it then writes the README's table.
    let default = opts.kernels.is_empty() && opts.nics.is_empty() && opts.variant.is_none();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    let started = std::time::Instant::now();
    for spec in &kernels {
        let kernel = host.kernel(spec)?;
        if let Some(why) = &kernel.unbootable {
            eprintln!("xtask: skipping {}: {why}", kernel.name);
            rows.push(vm::Row {
                kernel: kernel.name.clone(),
                model: "(all)".into(),
                note: format!("not bootable here: {why}"),
                ..vm::Row::default()
            });
            continue;
        }
        // The variant rows run on the first kernel of a default matrix.
        let mut runs: Vec<(String, Option<(String, String)>)> = models
            .iter()
            .map(|nic| {
                let variant = opts.variant.clone().zip(opts.setup.clone());
                (nic.clone(), variant)
            })
            .collect();
        if default && spec == &kernels[0] {
            runs.extend(
                vm::expected::VARIANTS
                    .iter()
                    .map(|(m, v, s)| (m.to_string(), Some((v.to_string(), s.to_string())))),
            );
        }
        for (nic, variant) in &runs {
            let row = vm_row(root, &host, &kernel, &agent, opts, nic, variant.as_ref())?;
            if let Some(why) = row.failure() {
                failed.push(format!("{} × {}: {why}", kernel.name, row.model));
            }
            rows.push(row);
        }
    }
    let table = vm::markdown(&rows);
    fs::write(root.join("target/vm/matrix.md"), &table)?;
    if default {
        vm::write_tested_on(&root.join("README.md"), &rows)?;
    }
    println!("{table}");
    println!(
        "VM matrix: {} rows in {:.0} s; table in target/vm/matrix.md, files in target/vm/out",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    for f in &failed {
        println!("FAILED: {f}");
    }
    let skipped = rows
        .iter()
        .filter(|r| r.note.starts_with("not bootable"))
        .count();
    println!(
        "{} passed, {} failed, {skipped} skipped",
        rows.len() - failed.len() - skipped,
        failed.len()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8)
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest = env::var_os("CARGO_MANIFEST_DIR").context("run this through `cargo xtask`")?;
    Ok(Path::new(&manifest)
        .parent()
        .context("xtask has no parent directory")?
        .to_path_buf())
}

fn path_with(dir: &Path) -> anyhow::Result<OsString> {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    Ok(env::join_paths(dirs)?)
}

fn cargo(root: &Path, path: &OsString, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("cargo")
        .current_dir(root)
        .env("PATH", path)
        .args(args)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The eBPF crate is built with nightly and `-Z build-std=core`.
fn ensure_nightly_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--toolchain", "nightly", "--installed"]))
        .context("the nightly toolchain is needed for the eBPF crate: run `rustup toolchain install nightly`")?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("xtask: installing the nightly rust-src component");
    output(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
        .context(
            "could not install rust-src: run `rustup component add rust-src --toolchain nightly`",
        )?;
    Ok(())
}

/// bpf-linker must link with the LLVM of the nightly that compiles the eBPF
/// crate. That LLVM ships inside the toolchain as a shared library, so a
/// directory with `lib/libLLVM.so` pointing at it serves as LLVM_PREFIX.
fn ensure_bpf_linker(tools: &Path) -> anyhow::Result<()> {
    let linker = tools.join("bin/bpf-linker");
    if linker.exists()
        && Command::new(&linker)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))?;
    let lib_dir = Path::new(sysroot.trim()).join("lib");
    let version = output(Command::new("rustc").args(["+nightly", "-vV"]))?;
    let major = version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .context("cannot tell the nightly toolchain's LLVM version")?
        .to_string();
    // The real library is libLLVM.so.<ver>-rust-...; libLLVM-<major>-*.so is a
    // linker script naming it relative to its own directory.
    let real = fs::read_dir(&lib_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .with_context(|| {
            format!(
                "no libLLVM.so.* in {}: is the nightly toolchain complete?",
                lib_dir.display()
            )
        })?;
    let prefix = tools.join("llvm");
    let prefix_lib = prefix.join("lib");
    fs::create_dir_all(&prefix_lib)?;
    for name in [
        OsString::from("libLLVM.so"),
        real.file_name().unwrap_or_default().to_os_string(),
    ] {
        let link = prefix_lib.join(name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!(
        "xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM {major} (about a minute)"
    );
    let status = Command::new("cargo")
        .args([
            "+nightly",
            "install",
            "bpf-linker",
            "--locked",
            "--version",
            BPF_LINKER_VERSION,
        ])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
        ])
        .arg("--root")
        .arg(tools)
        .env("LLVM_PREFIX", &prefix)
        .status()
        .context("running cargo install bpf-linker")?;
    if !status.success() {
        bail!(
            "building bpf-linker failed; see the output above (it needs network access to crates.io and gcc)"
        );
    }
    Ok(())
}

fn have(cmd: &str) -> bool {
    env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|d| d.join(cmd).is_file())
}

fn ensure_test_packages() -> anyhow::Result<()> {
    ensure_packages("the tests", TEST_PACKAGES)
}

/// Installs the Debian packages of `list` ((command, package) pairs) whose
/// command is missing.
fn ensure_packages(purpose: &str, list: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = list
        .iter()
        .filter(|(cmd, _)| !have(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask: installing Debian packages for {purpose}: {}",
        missing.join(" ")
    );
    let install = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let ok = install(
        &["install", "-y", "-q", "--no-install-recommends"]
            .iter()
            .copied()
            .chain(missing.iter().copied())
            .collect::<Vec<_>>(),
    ) || (install(&["update", "-q"])
        && install(
            &["install", "-y", "-q", "--no-install-recommends"]
                .iter()
                .copied()
                .chain(missing.iter().copied())
                .collect::<Vec<_>>(),
        ));
    if !ok {
        bail!(
            "could not install {}: install them with apt-get (as root) and retry",
            missing.join(" ")
        );
    }
    Ok(())
}
