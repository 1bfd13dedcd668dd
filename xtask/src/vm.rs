//! `cargo xtask vm` and `cargo xtask test --vm`: the agent inside QEMU
//! guests, against real NIC drivers and other kernels (docs/vm.md).
//!
//! virtme-ng boots a Debian kernel package with this machine's root file
//! system shared read-only over 9p, under TCG (nested KVM hangs at boot on
//! these machines). Two NICs of one QEMU model are joined by a QEMU hub; the
//! guest script (xtask/vm/guest.sh) loads their driver, puts one in each of
//! two namespaces and runs iperf3 between them while the agent traces both
//! ends and bpftrace counts the same tracepoints independently. All traffic
//! stays inside the guest.
use std::{
    collections::BTreeMap,
    env, fs,
    io::Read as _,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::Value;

pub(crate) mod expected;

/// QEMU NIC models of the matrix: (QEMU device, guest driver, what it is).
pub(crate) const MODELS: &[(&str, &str)] = &[
    ("e1000e", "e1000e: Intel 82574L, TSO and checksum offload"),
    ("vmxnet3", "vmxnet3: VMware paravirtual NIC with LRO"),
    ("virtio-net-pci", "virtio_net: paravirtual"),
    ("e1000", "e1000: Intel 82540EM, TSO and checksum offload"),
    ("rtl8139", "8139cp/8139too: Realtek RTL8139C+"),
    ("veth", "a veth pair instead of NICs, as in the host tests"),
];
/// Kernel series the matrix boots, newest Debian package of each.
pub(crate) const KERNELS: &[&str] = &["6.1", "6.12"];
/// Debian packages the host side needs.
const VM_PACKAGES: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("depmod", "kmod"),
    ("busybox", "busybox-static"),
    ("iperf3", "iperf3"),
    ("ethtool", "ethtool"),
    ("bpftrace", "bpftrace"),
    ("nstat", "iproute2"),
    ("file", "file"),
];
/// Wait for the guest; stop it (vng, virtme-run and qemu share the
/// process group given to vng) past [`VM_TIMEOUT`], or as soon as its
/// kernel reports a lockup on the console ([`lockup`]), and say why.
fn wait_or_stop(
    child: &mut std::process::Child,
    start: Instant,
    console: &Path,
) -> anyhow::Result<Result<std::process::ExitStatus, String>> {
    let mut read = 0;
    let mut checked = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ok(status));
        }
        let mut why = None;
        if start.elapsed() > VM_TIMEOUT {
            why = Some(format!("the guest did not finish within {VM_TIMEOUT:?}"));
        } else if checked.elapsed() > Duration::from_secs(2) {
            checked = Instant::now();
            why = lockup(console, &mut read).map(|l| format!("the guest's kernel locked up ({l})"));
        }
        if let Some(why) = why {
            let _ = Command::new("kill")
                .arg("--")
                .arg(format!("-{}", child.id()))
                .status();
            let _ = child.wait();
            return Ok(Err(why));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// A soft lockup of a minute or more in the console's lines after byte
/// `from` (moved on to the last whole line read). The kernel's watchdog
/// reports a CPU that has not scheduled for 20 s, again every ~30 s while
/// it lasts (kernel/watchdog.c); under TCG a CPU can be starved for some
/// seconds, not for a minute, so a minute means the guest will not come
/// back, and waiting out [`VM_TIMEOUT`] only loses time.
fn lockup(console: &Path, from: &mut u64) -> Option<String> {
    use std::io::{Seek as _, SeekFrom};
    let mut f = fs::File::open(console).ok()?;
    f.seek(SeekFrom::Start(*from)).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    let whole = text.rfind('\n').map_or(0, |i| i + 1);
    *from += whole as u64;
    text[..whole].lines().find_map(|line| {
        let (_, rest) = line.split_once("soft lockup - CPU#")?;
        let secs: u64 = rest
            .split_once("stuck for ")?
            .1
            .split_once('s')?
            .0
            .parse()
            .ok()?;
        (secs >= 60).then(|| line.trim().to_string())
    })
}

/// virtme-ng release known to work here (PyPI).
const VIRTME_NG_VERSION: &str = "1.42";
/// A guest that has not finished by then is stopped.
const VM_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// TCG with one host thread for all guest CPUs, not one per CPU (QEMU's
/// default for x86 guests on x86 hosts). With a thread per CPU, a Debian
/// 6.1 guest of a CI run here locked up for good while an agent detached:
/// both guest CPUs looped on an int3 at the `softirq_exit` tracepoint's
/// static branch in `handle_softirqs()`, left there by the kernel's code
/// patching (`text_poke_bp()`), while the memory there held the plain NOP
/// again: a CPU kept running a translation of code that another had
/// rewritten. One thread takes the CPUs in turn, so no CPU runs while
/// another rewrites code (docs/vm.md, "Stalls").
const TCG_THREADS: &str = "tcg,thread=single";

#[derive(Args, Clone, Debug)]
pub(crate) struct VmOpts {
    /// Kernel: a Debian series ("6.1", "6.12": the newest package of it), an
    /// exact package name (linux-image-6.1.0-56-amd64), or "host". Repeat
    /// for several; the matrix defaults to 6.1, 6.12 and host.
    #[arg(long = "kernel")]
    pub(crate) kernels: Vec<String>,
    /// QEMU NIC model (e1000e, vmxnet3, virtio-net-pci, e1000, rtl8139, or
    /// any other `-device` name), or veth for a veth pair; repeat for
    /// several.
    #[arg(long = "nic")]
    pub(crate) nics: Vec<String>,
    /// Use this agent binary instead of building target/release/toe-agent.
    #[arg(long)]
    pub(crate) agent: Option<PathBuf>,
    /// Seconds of iperf3 traffic per run.
    #[arg(long, default_value_t = 3)]
    pub(crate) secs: u32,
    /// Shell command run in the guest once both NICs are up, before any
    /// tracing (e.g. `ip netns exec toea ethtool -K toea tso off`); the
    /// matrix then writes its rows under `<model>+<variant>`.
    #[arg(long, requires = "variant")]
    pub(crate) setup: Option<String>,
    /// Name of the --setup variant, for the output directories and the table.
    #[arg(long, requires = "setup")]
    pub(crate) variant: Option<String>,
}

/// Everything the guests need on the host, found or installed.
pub(crate) struct Host {
    root: PathBuf,
    cache: PathBuf,
    vng_bin: PathBuf,
}

impl Host {
    pub(crate) fn prepare(root: &Path) -> anyhow::Result<Self> {
        crate::ensure_packages("the VM tests", VM_PACKAGES)?;
        let cache = root.join("target/vm");
        fs::create_dir_all(&cache)?;
        let vng_bin = ensure_vng(&cache)?;
        Ok(Self {
            root: root.to_path_buf(),
            cache,
            vng_bin,
        })
    }

    /// The kernel image to boot for `spec`, downloading and unpacking its
    /// Debian package into target/vm/kernels the first time.
    pub(crate) fn kernel(&self, spec: &str) -> anyhow::Result<Kernel> {
        if spec == "host" {
            return host_kernel();
        }
        let package = if spec.starts_with("linux-image-") {
            spec.to_string()
        } else {
            newest_package(spec)?
        };
        let release = package.trim_start_matches("linux-image-").to_string();
        let dir = self.cache.join("kernels").join(&release);
        let image = dir.join(format!("boot/vmlinuz-{release}"));
        let stamp = dir.join(".unpacked");
        if !stamp.exists() {
            let debs = self.cache.join("debs");
            fs::create_dir_all(&debs)?;
            eprintln!("xtask: downloading {package}");
            let status = Command::new("apt-get")
                .current_dir(&debs)
                .args(["download", "-q", &package])
                .status()
                .context("running apt-get download")?;
            if !status.success() {
                bail!("apt-get download {package} failed: run `apt-get update` and retry");
            }
            let deb = newest_file(&debs, &format!("{package}_"))?;
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir)?;
            let status = Command::new("dpkg")
                .arg("-x")
                .arg(&deb)
                .arg(&dir)
                .status()
                .context("running dpkg -x")?;
            if !status.success() || !image.exists() {
                bail!("unpacking {} gave no {}", deb.display(), image.display());
            }
            // virtme-ng runs depmod itself when modules.dep is missing; do it
            // here so that a failure shows.
            let status = Command::new("depmod")
                .arg("-a")
                .arg("-b")
                .arg(&dir)
                .arg(&release)
                .status()
                .context("running depmod")?;
            if !status.success() {
                bail!("depmod for {release} failed");
            }
            fs::write(&stamp, &package)?;
            let _ = fs::remove_file(&deb);
        }
        Ok(Kernel {
            name: release,
            image: Some(image),
            unbootable: None,
        })
    }

    /// Boots `kernel` with two `model` NICs on a hub and runs the guest
    /// script; its files land in `out`. Returns the wall time.
    /// The command the guest runs: the guest script with its output
    /// directory, the agent and the seconds of traffic.
    fn guest_command(&self, g: &Guest<'_>) -> String {
        let script = self.root.join("xtask/vm/guest.sh");
        let mut exec = format!(
            "bash {} {} {} {}",
            shell_quote(&script.to_string_lossy()),
            shell_quote(&g.out.to_string_lossy()),
            shell_quote(&g.agent.to_string_lossy()),
            g.secs
        );
        for a in g.agent_args {
            exec.push(' ');
            exec.push_str(&shell_quote(&a.to_string_lossy()));
        }
        exec
    }

    pub(crate) fn boot(&self, kernel: &Kernel, g: &Guest<'_>) -> anyhow::Result<Duration> {
        let Guest {
            model, out, setup, ..
        } = *g;
        let image = kernel
            .image
            .as_ref()
            .context("this kernel cannot be booted")?;
        let _ = fs::remove_dir_all(out);
        fs::create_dir_all(out)?;
        if model == "veth" {
            fs::write(out.join("veth"), "")?;
        }
        if let Some(setup) = setup {
            fs::write(out.join("setup.sh"), format!("{setup}\n"))?;
        }
        let exec = self.guest_command(g);
        // One host thread runs both guest CPUs in turn (TCG_THREADS).
        // "veth": no NICs; the guest script makes a veth pair instead.
        let nics = match model {
            "veth" => String::new(),
            _ => format!(
                " -netdev hubport,id=h1,hubid=0 -device {model},netdev=h1 \
                 -netdev hubport,id=h2,hubid=0 -device {model},netdev=h2"
            ),
        };
        let qemu_opts = format!("--qemu-opts=-accel {TCG_THREADS}{nics}");
        let console = fs::File::create(out.join("console.log"))?;
        let venv_bin = self.vng_bin.parent().unwrap_or(Path::new("/"));
        let start = Instant::now();
        let mut child = Command::new("nice")
            .args(["-n", "19"])
            .arg(&self.vng_bin)
            .args([
                "--verbose",
                "--disable-kvm",
                "--force-9p",
                "--disable-microvm",
                "--memory",
                "2G",
                "--cpus",
                "2",
            ])
            .arg(format!("--rwdir={}", out.display()))
            .arg(qemu_opts)
            .arg("--run")
            .arg(image)
            .arg("--exec")
            .arg(&exec)
            .env("PATH", crate::path_with(venv_bin)?)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .process_group(0)
            .spawn()
            .context("starting vng")?;
        let status = wait_or_stop(&mut child, start, &out.join("console.log"))?;
        let took = start.elapsed();
        match status {
            Err(why) => Err(Stalled(format!(
                "{why} ({}); see {}/console.log",
                last_step(out),
                out.display()
            ))
            .into()),
            Ok(_) if !out.join("rc").exists() => bail!(
                "the guest script did not finish; see {}/console.log and guest.log",
                out.display()
            ),
            Ok(_) => Ok(took),
        }
    }
}

/// A guest that stopped moving: its kernel or its emulated network, not
/// the agent (whose hangs the guest script reports as "hung"). Under TCG
/// a guest now and then stops for good for reasons of the emulation
/// (docs/vm.md, "Stalls"), so the matrix boots such a row once more.
#[derive(Debug)]
pub(crate) struct Stalled(pub(crate) String);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stalled {}

/// Where a guest that did not finish stopped: the guest script's last
/// step, or the console's last line when the script never started.
fn last_step(out: &Path) -> String {
    let last = |file: &str, pick: &dyn Fn(&str) -> bool| {
        fs::read_to_string(out.join(file))
            .ok()
            .and_then(|t| t.lines().rev().find(|l| pick(l)).map(str::to_string))
    };
    if let Some(step) = last("guest.log", &|l| l.starts_with("== ")) {
        return format!("its last step: {}", step.trim_start_matches("== "));
    }
    match last("console.log", &|l| !l.trim().is_empty()) {
        Some(line) => format!("the guest script never started; the console's last line: {line}"),
        None => "the guest script never started; the console is empty".into(),
    }
}

/// What one guest runs.
pub(crate) struct Guest<'a> {
    /// QEMU `-device` name of both NICs.
    pub(crate) model: &'a str,
    pub(crate) agent: &'a Path,
    /// Seconds of iperf3 traffic.
    pub(crate) secs: u32,
    /// The directory shared with the guest, emptied first.
    pub(crate) out: &'a Path,
    /// --setup.
    pub(crate) setup: Option<&'a str>,
    /// An agent command to run instead of the matrix row.
    pub(crate) agent_args: &'a [std::ffi::OsString],
}

/// A kernel to boot, or why this one cannot be.
pub(crate) struct Kernel {
    pub(crate) name: String,
    pub(crate) image: Option<PathBuf>,
    pub(crate) unbootable: Option<String>,
}

/// The running kernel can only be booted if its image and modules are on
/// disk, and it only helps if it has the drivers and 9p for the root.
fn host_kernel() -> anyhow::Result<Kernel> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease")?
        .trim()
        .to_string();
    let image = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    let mut why = Vec::new();
    if !image.exists() {
        why.push(format!("no {} on disk", image.display()));
    }
    if let Ok(config) = read_gz_config() {
        for (opt, what) in [
            ("CONFIG_MODULES", "no loadable modules"),
            ("CONFIG_NET_9P", "no 9p for the guest's root"),
            ("CONFIG_E1000E", "no e1000e"),
            ("CONFIG_VMXNET3", "no vmxnet3"),
            ("CONFIG_E1000", "no e1000"),
        ] {
            if !config.lines().any(|l| l.starts_with(&format!("{opt}="))) {
                why.push(what.to_string());
            }
        }
    }
    Ok(Kernel {
        name: format!("host-{release}"),
        unbootable: (!why.is_empty()).then(|| why.join(", ")),
        image: image.exists().then_some(image),
    })
}

fn read_gz_config() -> anyhow::Result<String> {
    let out = Command::new("zcat").arg("/proc/config.gz").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The newest `linux-image-<series>.*-amd64` the package registry serves
/// (not -cloud, -rt, -dbg or -unsigned).
fn newest_package(series: &str) -> anyhow::Result<String> {
    let pattern = format!("^linux-image-{}[.-].*-amd64$", series.replace('.', "\\."));
    let search =
        || crate::output(Command::new("apt-cache").args(["search", "--names-only", &pattern]));
    let mut list = search()?;
    if list.trim().is_empty() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        list = search()?;
    }
    let mut names: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| !n.contains("-cloud-") && !n.contains("-rt-"))
        .map(str::to_string)
        .collect();
    names.sort_by_key(|n| version_key(n));
    names
        .pop()
        .with_context(|| format!("the package registry serves no {pattern}"))
}

/// Numbers in a package name, for ordering 6.1.0-9 before 6.1.0-56.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn newest_file(dir: &Path, prefix: &str) -> anyhow::Result<PathBuf> {
    fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".deb"))
        })
        .max()
        .with_context(|| {
            format!(
                "apt-get download left no {prefix}*.deb in {}",
                dir.display()
            )
        })
}

/// `vng` from PATH, or virtme-ng installed from PyPI into a venv under
/// target/vm.
fn ensure_vng(cache: &Path) -> anyhow::Result<PathBuf> {
    let venv = cache.join("venv");
    let vng = venv.join("bin/vng");
    if vng.exists() {
        return Ok(vng);
    }
    if let Some(found) = env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("vng"))
        .find(|p| p.is_file())
    {
        return Ok(found);
    }
    eprintln!(
        "xtask: installing virtme-ng {VIRTME_NG_VERSION} into {}",
        venv.display()
    );
    let python = ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import venv"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("no python3 with the venv module: apt-get install python3-venv")?;
    let status = Command::new(python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()?;
    if !status.success() {
        bail!(
            "python3 -m venv {} failed (apt-get install python3-venv)",
            venv.display()
        );
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", &format!("virtme-ng=={VIRTME_NG_VERSION}")])
        .status()?;
    if !status.success() || !vng.exists() {
        bail!("pip install virtme-ng failed; see the output above");
    }
    Ok(vng)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// One row of the matrix, read back from the files the guest wrote.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub(crate) kernel: String,
    pub(crate) model: String,
    pub(crate) booted: bool,
    pub(crate) note: String,
    /// Set when the guest stalled ([`Stalled`]): the row may be booted
    /// once more.
    pub(crate) stalled: bool,
    /// Why the first boot of a row booted twice stalled.
    pub(crate) first_boot: Option<String>,
    pub(crate) wall_s: f64,
    pub(crate) driver: String,
    pub(crate) handoff: String,
    pub(crate) rx_csum: String,
    pub(crate) skb_csum: String,
    pub(crate) segs_per_skb: String,
    pub(crate) tx: String,
    pub(crate) mbit: String,
    pub(crate) verdicts: Vec<(String, String, bool)>,
    /// The same verdicts from the agents that sample the per-segment
    /// probes (the default), when they ran to the end.
    pub(crate) sampled: Option<Vec<(String, String, bool)>>,
    /// (what, agent, independent count)
    pub(crate) counts: Vec<(String, u64, u64)>,
    pub(crate) fragments: String,
    pub(crate) gro_result: String,
    pub(crate) features: String,
}

impl Row {
    pub(crate) fn counts_agree(&self) -> bool {
        self.counts.iter().all(|(_, a, b)| a == b)
    }

    /// Why the row fails, if it does: it did not run to the end, a count
    /// differs from bpftrace's, or a verdict from the expected one.
    pub(crate) fn failure(&self) -> Option<String> {
        if self.note.starts_with("not bootable") {
            return None;
        }
        if !self.booted || self.counts.is_empty() {
            return Some(if self.note.is_empty() {
                "no counts".into()
            } else {
                self.note.clone()
            });
        }
        if !self.counts_agree() {
            return Some("counts differ from bpftrace's".into());
        }
        match &self.sampled {
            None => return Some("no verdicts from the sampling agents".into()),
            Some(s) if *s != self.verdicts => {
                return Some(format!(
                    "sampled verdicts differ from every packet's: {s:?}"
                ));
            }
            Some(_) => {}
        }
        expected::differences(&self.model, &self.verdicts)
    }
}

/// The README's "tested on" table, between its markers, from a full run.
pub(crate) fn write_tested_on(readme: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let (begin, end) = ("<!-- tested-on:begin -->\n", "<!-- tested-on:end -->");
    let text = fs::read_to_string(readme)?;
    let (Some(i), Some(j)) = (text.find(begin), text.find(end)) else {
        bail!("{} has no tested-on markers", readme.display());
    };
    let mut table = String::from(
        "| kernel | NIC | driver (class) | verdicts (tx_seg, tx_csum, rx_coal, rx_csum, rss) | as expected | agent = bpftrace | wall s |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let verdicts = r
            .verdicts
            .iter()
            .map(|(_, m, mm)| format!("{m}{}", if *mm { " MISMATCH" } else { "" }))
            .collect::<Vec<_>>()
            .join(", ");
        let result = match r.failure() {
            None if r.note.starts_with("not bootable") => "skipped".to_string(),
            None => "yes".to_string(),
            Some(why) => format!("no: {why}"),
        };
        let counts = if r.counts_agree() && !r.counts.is_empty() {
            "yes"
        } else {
            "-"
        };
        let driver = if r.driver.is_empty() {
            &r.note
        } else {
            &r.driver
        };
        table += &format!(
            "| {} | {} | {driver} | {verdicts} | {result} | {counts} | {:.0} |\n",
            r.kernel, r.model, r.wall_s
        );
    }
    let updated = format!("{}{begin}{table}{}", &text[..i], &text[j..]);
    fs::write(readme, updated)?;
    Ok(())
}

fn last_summary(path: &Path) -> anyhow::Result<(Value, Value)> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Value = serde_json::from_str(lines.next().context("empty NDJSON")?)?;
    let summary: Value = serde_json::from_str(
        text.lines()
            .rev()
            .find(|l| l.contains("\"type\":\"summary\""))
            .context("no summary line")?,
    )?;
    Ok((header, summary))
}

/// bpftrace `-f json` output: map name → key → value (hists as total count).
fn bpftrace_maps(path: &Path) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u64>>> {
    let mut maps = BTreeMap::new();
    let mut text = String::new();
    fs::File::open(path)?.read_to_string(&mut text)?;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(data) = v.get("data").and_then(Value::as_object) else {
            continue;
        };
        for (name, val) in data {
            let entry: &mut BTreeMap<String, u64> = maps.entry(name.clone()).or_default();
            match val {
                Value::Number(n) => {
                    entry.insert(String::new(), n.as_u64().unwrap_or(0));
                }
                Value::Object(o) => {
                    for (k, n) in o {
                        entry.insert(k.clone(), n.as_u64().unwrap_or(0));
                    }
                }
                Value::Array(buckets) => {
                    let total = buckets
                        .iter()
                        .filter_map(|b| b.get("count").and_then(Value::as_u64))
                        .sum();
                    entry.insert(String::new(), total);
                }
                _ => {}
            }
        }
    }
    Ok(maps)
}

/// Polls minus those of the agent's work histogram bucket 0.
fn busy_polls(napi: &Value) -> u64 {
    let idle = napi["work"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b[0].as_u64() == Some(0))
        .and_then(|b| b[1].as_u64())
        .unwrap_or(0);
    u(napi, &["polls"]).saturating_sub(idle)
}

fn u(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn shares(obj: Option<&Value>) -> String {
    let Some(o) = obj.and_then(Value::as_object) else {
        return "-".into();
    };
    let total: u64 = o.values().filter_map(Value::as_u64).sum();
    if total == 0 {
        return "none seen".into();
    }
    o.iter()
        .filter_map(|(k, v)| v.as_u64().filter(|&n| n > 0).map(|n| (k, n)))
        .map(|(k, n)| {
            format!(
                "{} {:.1}%",
                k.to_uppercase(),
                100.0 * n as f64 / total as f64
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a finished row's directory.
pub(crate) fn read_row(kernel: &str, model: &str, out: &Path, wall: Duration) -> Row {
    let mut row = Row {
        kernel: kernel.into(),
        model: model.into(),
        wall_s: wall.as_secs_f64(),
        ..Row::default()
    };
    let rc = fs::read_to_string(out.join("rc")).unwrap_or_default();
    row.booted = out.join("guest.log").exists();
    if rc.trim() != "0" {
        row.note = format!("guest script: {}", rc.trim());
        row.stalled = rc.starts_with("network stalled:");
        return row;
    }
    let (rx_h, rx) = match last_summary(&out.join("rx.ndjson")) {
        Ok(x) => x,
        Err(e) => {
            row.note = format!("receiver agent: {e:#}");
            return row;
        }
    };
    let (_, tx) = match last_summary(&out.join("tx.ndjson")) {
        Ok(x) => x,
        Err(e) => {
            row.note = format!("sender agent: {e:#}");
            return row;
        }
    };
    describe(&mut row, &rx_h, &rx, &tx);
    row.verdicts = verdicts(&rx, &tx);
    row.sampled = match (
        last_summary(&out.join("rx-sampled.ndjson")),
        last_summary(&out.join("tx-sampled.ndjson")),
    ) {
        (Ok((_, rx)), Ok((_, tx))) => Some(verdicts(&rx, &tx)),
        _ => None,
    };
    row.mbit = mbit(out);
    independent(&mut row, out, &rx, &tx);
    row.features = features(out);
    row
}

/// What the agents saw: the receiver's driver, hand-offs and checksum
/// states, the sender's skbs.
fn describe(row: &mut Row, rx_h: &Value, rx: &Value, tx: &Value) {
    row.driver = format!(
        "{} ({})",
        rx_h["driver"].as_str().unwrap_or("?"),
        rx_h["device_class"].as_str().unwrap_or("?")
    );
    let r = &rx["rx"];
    row.handoff = r["handoff"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                .map(|(k, v)| format!("{k} {}", v))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    row.rx_csum = shares(r.get("csum"));
    row.skb_csum = shares(r.get("skb_csum"));
    let sps = &r["segs_per_skb"];
    row.segs_per_skb = format!(
        "{:.2} (max {})",
        u(sps, &["sum"]) as f64 / u(sps, &["count"]).max(1) as f64,
        u(sps, &["max"])
    );
    let t = &tx["tx"];
    row.tx = format!(
        "{} queued → {} to driver, {} wire segments; {} multi-segment TCP skbs at the driver; csum {}",
        u(t, &["queued_skbs"]),
        u(t, &["xmit_skbs"]),
        u(t, &["wire_segments"]),
        u(t, &["gso_xmit", "tcp4"]) + u(t, &["gso_xmit", "tcp6"]),
        shares(t.get("csum"))
    );
}

/// The verdicts each side judges: transmit offloads on the sender, receive
/// offloads and RSS on the receiver.
fn verdicts(rx: &Value, tx: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (side, s) in [("tx", tx), ("rx", rx)] {
        for v in s["verdicts"].as_array().into_iter().flatten() {
            let off = v["offload"].as_str().unwrap_or("?");
            let judged_here = matches!(
                (side, off),
                ("tx", "tx_segmentation" | "tx_checksum")
                    | ("rx", "rx_coalescing" | "rx_checksum" | "rss")
            );
            if judged_here {
                out.push((
                    off.to_string(),
                    v["mechanism"].as_str().unwrap_or("?").to_string(),
                    v["mismatch"].as_bool().unwrap_or(false),
                ));
            }
        }
    }
    out
}

/// iperf3's received rate, Mbit/s.
fn mbit(out: &Path) -> String {
    if let Ok(j) = fs::read_to_string(out.join("iperf.json"))
        && let Ok(v) = serde_json::from_str::<Value>(&j)
    {
        return format!(
            "{:.0}",
            v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0)
                / 1e6
        );
    }
    String::new()
}

/// The agents' counts beside bpftrace's in the guest, and what only
/// bpftrace read (IP fragments, GRO's results).
fn independent(row: &mut Row, out: &Path, rx: &Value, tx: &Value) {
    let (r, t) = (&rx["rx"], &tx["tx"]);
    match bpftrace_maps(&out.join("count.json")) {
        Ok(m) => {
            let sum = |name: &str| m.get(name).map(|e| e.values().sum()).unwrap_or(0);
            row.counts = vec![
                ("rx hand-offs".into(), u(r, &["segments"]), sum("@handoff")),
                ("rx skbs after GRO".into(), u(r, &["skbs"]), sum("@rx_skbs")),
                // Idle polls (e1000e's watchdog raises an interrupt every
                // 2 s) fall between the tracers' attach times: compare the
                // polls that did work.
                (
                    "rx NAPI polls with work".into(),
                    busy_polls(&rx["napi"]),
                    sum("@busy_polls"),
                ),
                (
                    "tx queued".into(),
                    u(t, &["queued_skbs"]),
                    sum("@tx_queued"),
                ),
                ("tx to driver".into(), u(t, &["xmit_skbs"]), sum("@tx_xmit")),
            ];
            let frag = m.get("@ip_fragment");
            let yes = frag
                .and_then(|f| f.get("1").or(f.get("true")))
                .copied()
                .unwrap_or(0);
            let all: u64 = frag.map(|f| f.values().sum()).unwrap_or(0);
            row.fragments = format!("{yes} of {all}");
            row.gro_result = m
                .get("@gro_result")
                .map(|g| {
                    g.iter()
                        .map(|(k, v)| format!("{}={v}", gro_result_name(k)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
        }
        Err(e) => row.note = format!("no independent count: {e:#}"),
    }
}

/// The receiver's offload features, as ethtool -k showed them.
fn features(out: &Path) -> String {
    fs::read_to_string(out.join("ethtool-k-toeb.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(": ")?;
            let short = match k {
                "rx-checksumming" => "rxcsum",
                "generic-receive-offload" => "gro",
                "large-receive-offload" => "lro",
                "rx-gro-hw" => "gro-hw",
                "tcp-segmentation-offload" => "tso",
                "tx-checksumming" => "txcsum",
                _ => return None,
            };
            Some(format!("{short} {}", v.replace(" [fixed]", "*")))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// gro_result_t, include/linux/netdevice.h (6.1 and 6.12).
fn gro_result_name(k: &str) -> &str {
    match k {
        "0" => "MERGED",
        "1" => "MERGED_FREE",
        "2" => "HELD",
        "3" => "NORMAL",
        "4" => "CONSUMED",
        other => other,
    }
}

pub(crate) const TABLE_HEAD: &str = "| kernel | NIC | driver (class) | hand-off hook | ip_summed at hand-off | after GRO | segs/skb | IP fragments at hand-off | GRO results | sender | Mbit/s | verdicts (tx_seg, tx_csum, rx_coal, rx_csum, rss) | agent = bpftrace | wall s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";

/// The matrix as a Markdown table (docs/vm.md quotes it).
pub(crate) fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(TABLE_HEAD);
    for r in rows {
        let verdicts = r
            .verdicts
            .iter()
            .map(|(_, m, mm)| {
                if *mm {
                    format!("{m} **MISMATCH**")
                } else {
                    m.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let counts = if r.counts.is_empty() {
            "-".to_string()
        } else if r.counts_agree() {
            format!("yes ({} counts)", r.counts.len())
        } else {
            r.counts
                .iter()
                .filter(|(_, a, b)| a != b)
                .map(|(w, a, b)| format!("{w}: {a} vs {b}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let boot = if r.booted || r.note.starts_with("not bootable") {
            String::new()
        } else {
            "did not boot: ".to_string()
        };
        let boot = match &r.first_boot {
            Some(why) => format!("{boot}(second boot; the first: {why}) "),
            None => boot,
        };
        s.push_str(&format!(
            "| {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |\n",
            r.kernel,
            r.model,
            boot,
            if r.driver.is_empty() {
                &r.note
            } else {
                &r.driver
            },
            r.handoff,
            r.rx_csum,
            r.skb_csum,
            r.segs_per_skb,
            r.fragments,
            r.gro_result,
            r.tx,
            r.mbit,
            verdicts,
            counts,
            r.wall_s
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty directory of this test process's own, for files a test
    /// writes; the test removes it.
    fn scratch(name: &str) -> PathBuf {
        let dir = env::temp_dir().join(format!("xtask-vm-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn newest_kernel_package_orders_by_numbers() {
        let mut names = [
            "linux-image-6.1.0-9-amd64",
            "linux-image-6.1.0-56-amd64",
            "linux-image-6.1.0-47-amd64",
        ];
        names.sort_by_key(|n| version_key(n));
        assert_eq!(names.last(), Some(&"linux-image-6.1.0-56-amd64"));
        assert!(
            version_key("linux-image-6.12.117+deb12-amd64")
                > version_key("linux-image-6.12.9+deb12-amd64")
        );
    }

    #[test]
    fn a_stopped_guest_is_placed_and_a_network_stall_may_boot_again() {
        let dir = scratch("stall");
        fs::write(dir.join("console.log"), "[    1.0] Run /init\n\n").unwrap();
        assert_eq!(
            last_step(&dir),
            "the guest script never started; the console's last line: [    1.0] Run /init"
        );
        fs::write(
            dir.join("guest.log"),
            "== 1.0 links up\n1.5 starting bpftrace\n== 2.0 tracers attached\nnoise\n",
        )
        .unwrap();
        assert_eq!(last_step(&dir), "its last step: 2.0 tracers attached");

        let read = |rc: &str| {
            fs::write(dir.join("rc"), rc).unwrap();
            read_row("k", "m", &dir, Duration::ZERO)
        };
        let row = read("network stalled: iperf3 did not end within 63 s\n");
        assert!(row.stalled && row.booted);
        assert_eq!(
            row.failure().as_deref(),
            Some("guest script: network stalled: iperf3 did not end within 63 s")
        );
        let row = read("hung: an agent, after SIGTERM, did not end within 60 s\n");
        assert!(!row.stalled, "an agent's hang is a failure, not a stall");
        assert!(row.failure().is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_minute_long_soft_lockup_stops_the_guest() {
        let dir = scratch("lockup");
        let console = dir.join("console.log");
        let mut from = 0;
        fs::write(
            &console,
            "[  95.8] rcu: INFO: rcu_preempt self-detected stall on CPU\n\
             [ 120.7] watchdog: BUG: soft lockup - CPU#0 stuck for 45s! [toe-agent:619]\n\
             [ 148.7] watchdog: BUG: soft lockup - CPU#0 stuck",
        )
        .unwrap();
        // 45 s can be a starved CPU; the unfinished line waits for its end.
        assert_eq!(lockup(&console, &mut from), None);
        let mut f = fs::OpenOptions::new().append(true).open(&console).unwrap();
        std::io::Write::write_all(&mut f, b" for 71s! [toe-agent:619]\n").unwrap();
        assert_eq!(
            lockup(&console, &mut from).as_deref(),
            Some("[ 148.7] watchdog: BUG: soft lockup - CPU#0 stuck for 71s! [toe-agent:619]")
        );
        assert_eq!(lockup(&console, &mut from), None, "read once");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_bpftrace_json_maps() {
        let dir = scratch("test");
        let file = dir.join("count.json");
        fs::write(
            &file,
            concat!(
                "{\"type\": \"attached_probes\", \"data\": {\"probes\": 10}}\n",
                "{\"type\": \"printf\", \"data\": \"ready\\n\"}\n",
                "{\"type\": \"map\", \"data\": {\"@handoff\": {\"napi_gro_receive\": 48643}}}\n",
                "{\"type\": \"map\", \"data\": {\"@rx_skbs\": 48642}}\n",
                "{\"type\": \"hist\", \"data\": {\"@work\": [{\"min\": 0, \"max\": 0, \"count\": 146}, {\"min\": 1, \"max\": 1, \"count\": 18}]}}\n",
            ),
        )
        .unwrap();
        let maps = bpftrace_maps(&file).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(maps["@handoff"]["napi_gro_receive"], 48643);
        assert_eq!(maps["@rx_skbs"][""], 48642);
        assert_eq!(maps["@work"][""], 164);
    }

    #[test]
    fn busy_polls_leave_out_idle_ones() {
        let napi: Value = serde_json::from_str(
            r#"{"polls": 602, "work": {"buckets": [[0, 186], [1, 18], [2, 1]]}}"#,
        )
        .unwrap();
        assert_eq!(busy_polls(&napi), 416);
    }
}
