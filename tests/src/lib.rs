//! Helpers for the privileged end-to-end tests: a veth pair between two
//! network namespaces the test creates (and always deletes), the agent run
//! inside one of them, iperf3 traffic, and independent counts from perf.
//!
//! Traffic never leaves the namespaces: addresses are on the veth pair only.
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// Why a privileged test cannot run here, if it cannot. Under `CI=true` a
/// skip is a failure, so a broken CI machine cannot pass silently.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: network namespaces and BPF need root".into());
    }
    if agent_bin().is_none() {
        return Some("TOE_AGENT_BIN is not set: run through `cargo xtask test`".into());
    }
    for tool in ["ip", "iperf3", "ethtool"] {
        if Command::new(tool).arg("-V").output().is_err()
            && Command::new(tool).arg("--version").output().is_err()
        {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

/// Returns true when the test should go on; prints why not otherwise.
#[must_use]
pub fn privileged(test: &str) -> bool {
    match skip_reason() {
        None => true,
        Some(reason) if in_ci() => {
            panic!("{test}: cannot run under CI: {reason}")
        }
        Some(reason) => {
            eprintln!("skipped {test}: {reason}");
            false
        }
    }
}

/// Like [`privileged`], for a test that needs only the agent's binary
/// (`report` on files): it runs without root.
#[must_use]
pub fn has_agent(test: &str) -> bool {
    if agent_bin().is_some() {
        return true;
    }
    let reason = "TOE_AGENT_BIN is not set: run through `cargo xtask test`";
    assert!(!in_ci(), "{test}: cannot run under CI: {reason}");
    eprintln!("skipped {test}: {reason}");
    false
}

/// `CI` set to anything but empty, `0`, `false` or `no`: CI services set
/// `true`, `1` or their own name, and a skip there must fail.
pub fn in_ci() -> bool {
    ci_value_is_truthy(std::env::var("CI").ok().as_deref())
}

fn ci_value_is_truthy(v: Option<&str>) -> bool {
    v.map(str::trim).is_some_and(|v| {
        !v.is_empty() && !["0", "false", "no"].contains(&v.to_ascii_lowercase().as_str())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_truthy_ci_value_counts() {
        for on in ["true", "1", "TRUE", "yes", "github"] {
            assert!(super::ci_value_is_truthy(Some(on)), "{on}");
        }
        for off in [
            None,
            Some(""),
            Some("0"),
            Some("false"),
            Some("False"),
            Some("no"),
        ] {
            assert!(!super::ci_value_is_truthy(off), "{off:?}");
        }
    }
}

pub fn agent_bin() -> Option<PathBuf> {
    std::env::var_os("TOE_AGENT_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sh(args: &[&str]) -> Output {
    run(Command::new(args[0]).args(&args[1..]))
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, `a` (sender, 10.213.N.1) and `b` (receiver, 10.213.N.2),
/// joined by a veth pair. Deleted on drop, even when the test panics.
pub struct Lab {
    pub ns_a: String,
    pub ns_b: String,
    pub dev_a: String,
    pub dev_b: String,
    pub addr_b: String,
}

impl Lab {
    pub fn new() -> Lab {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{}", std::process::id() % 100_000, n);
        let lab = Lab {
            ns_a: format!("toe-t{id}-a"),
            ns_b: format!("toe-t{id}-b"),
            // IFNAMSIZ is 16: keep names short and unique (perf filters on them).
            dev_a: format!("ta{id}"),
            dev_b: format!("tb{id}"),
            addr_b: format!("10.213.{}.2", n % 250),
        };
        sh(&["ip", "netns", "add", &lab.ns_a]);
        sh(&["ip", "netns", "add", &lab.ns_b]);
        for ns in [&lab.ns_a, &lab.ns_b] {
            // No IPv6: router solicitations and DAD would add packets that
            // the traffic generator did not send.
            lab.exec(
                ns,
                &["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
            );
            lab.exec(
                ns,
                &["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"],
            );
            lab.exec(ns, &["ip", "link", "set", "lo", "up"]);
        }
        lab.link();
        lab
    }

    /// The veth pair between the namespaces, addressed and up: made by
    /// [`Lab::new`], and again by a test that deleted it.
    pub fn link(&self) {
        let subnet = self.addr_b.rsplit_once('.').expect("an IPv4 address").0;
        sh(&[
            "ip",
            "link",
            "add",
            &self.dev_a,
            "netns",
            &self.ns_a,
            "type",
            "veth",
            "peer",
            "name",
            &self.dev_b,
            "netns",
            &self.ns_b,
        ]);
        for (ns, dev, host) in [(&self.ns_a, &self.dev_a, 1), (&self.ns_b, &self.dev_b, 2)] {
            let addr = format!("{subnet}.{host}/24");
            self.exec(ns, &["ip", "addr", "add", &addr, "dev", dev]);
            self.exec(ns, &["ip", "link", "set", dev, "up"]);
        }
    }

    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        run(Command::new("ip").args(["netns", "exec", ns]).args(args))
    }

    /// `ethtool -K dev feature on|off ...` inside a namespace.
    pub fn offloads(&self, ns: &str, dev: &str, settings: &[(&str, bool)]) {
        let mut args = vec!["ethtool", "-K", dev];
        for (f, on) in settings {
            args.push(f);
            args.push(if *on { "on" } else { "off" });
        }
        self.exec(ns, &args);
    }

    /// Start the agent in `ns`; stdout and stderr are captured.
    pub fn agent(&self, ns: &str, args: &[&str]) -> Agent {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(agent_bin().expect("TOE_AGENT_BIN"))
            .args(args);
        Agent::start(cmd)
    }

    /// Start the agent in `ns` as user nobody holding only `caps` (setpriv
    /// names: "bpf", "perfmon"), in its effective, permitted, inheritable,
    /// ambient and bounding sets; stdout and stderr are captured. setpriv
    /// execs in place, so the PID is still the agent's.
    pub fn agent_with_caps(&self, ns: &str, caps: &[&str], args: &[&str]) -> Agent {
        let set: String = std::iter::once("-all".to_string())
            .chain(caps.iter().map(|c| format!("+{c}")))
            .collect::<Vec<_>>()
            .join(",");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "setpriv"])
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(format!("--inh-caps={set}"))
            .arg(format!("--ambient-caps={set}"))
            .arg(format!("--bounding-set={set}"))
            .arg("--")
            .arg(agent_bin().expect("TOE_AGENT_BIN"))
            .args(args);
        Agent::start(cmd)
    }

    /// `toe-agent trace` on `dev` in `ns`, sampling every `interval` seconds,
    /// NDJSON to `ndjson`, plus `extra` arguments. The per-segment probes
    /// run all the time (`--sample 1`) unless `extra` says otherwise: most
    /// tests compare every packet's count with perf, iperf or another
    /// agent; the tests of sampling pass their own `--sample`.
    pub fn trace(
        &self,
        ns: &str,
        dev: &str,
        interval: &str,
        ndjson: &Path,
        extra: &[&str],
    ) -> Agent {
        let nd = ndjson.to_str().expect("UTF-8 scratch path");
        let mut args = vec![
            "trace",
            "--iface",
            dev,
            "--interval",
            interval,
            "--ndjson",
            nd,
        ];
        if !extra.iter().any(|a| *a == "--sample" || *a == "--per-skb") {
            args.extend(["--sample", "1"]);
        }
        args.extend_from_slice(extra);
        self.agent(ns, &args)
    }

    /// `iperf3 -s -1` (one test, then exit) in `ns`, bound to `addr:port`,
    /// returned once it listens.
    pub fn iperf_server(&self, ns: &str, addr: &str, port: u16) -> Server {
        let port = port.to_string();
        let server = Server(
            Command::new("ip")
                .args(["netns", "exec", ns, "iperf3", "-s", "-1", "-B", addr, "-p"])
                .arg(&port)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting iperf3 -s"),
        );
        // Wait for the listener instead of sleeping a fixed time.
        let deadline = Instant::now() + Duration::from_secs(5);
        // ss writes an IPv6 address in brackets.
        let listening = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        loop {
            let out = self.exec(ns, &["ss", "-ltn"]);
            if String::from_utf8_lossy(&out.stdout).contains(&listening) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "iperf3 server did not start on {listening}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until `dev` in `ns` has received nothing for `quiet` (at most
    /// 5 s): the tail of a transfer (teardown, delayed ACKs) has arrived.
    /// The device's received-packet count (statistics/rx_packets).
    pub fn rx_packets(&self, ns: &str, dev: &str) -> u64 {
        let path = format!("/sys/class/net/{dev}/statistics/rx_packets");
        let out = self.exec(ns, &["cat", &path]).stdout;
        String::from_utf8_lossy(&out).trim().parse().unwrap_or(0)
    }

    pub fn wait_quiet(&self, ns: &str, dev: &str, quiet: Duration) {
        let read = || self.rx_packets(ns, dev);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = read();
        let mut since = Instant::now();
        while since.elapsed() < quiet && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
            let now = read();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    }

    /// A TCP transfer from a to b for `secs` seconds with iperf3; returns
    /// iperf3's JSON report (client side).
    pub fn iperf(&self, secs: u32) -> Value {
        let mut server = self.iperf_server(&self.ns_b, &self.addr_b, 5201);
        let out = self.exec(
            &self.ns_a,
            &["iperf3", "-c", &self.addr_b, "-t", &secs.to_string(), "-J"],
        );
        let _ = server.wait();
        serde_json::from_slice(&out.stdout).expect("iperf3 -J output")
    }
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and the peer.
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A one-shot iperf3 server: it exits after its test; killed (by its own
/// PID) on drop if a failing test never ran one.
pub struct Server(Child);

impl Server {
    /// Wait for the server to finish its one test.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A running agent; killed (by its own PID) on drop if still running.
pub struct Agent {
    child: Option<Child>,
    /// Readers of stdout and stderr: drained while the agent runs, so a
    /// chatty agent never blocks on a full pipe.
    output: Option<(thread::JoinHandle<String>, thread::JoinHandle<String>)>,
}

/// Read `pipe` to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Agent {
    /// Start the agent in this process's own network namespace (for a
    /// device of the host, traced passively); output captured.
    pub fn spawn(args: &[&str]) -> Agent {
        let mut cmd = Command::new(agent_bin().expect("TOE_AGENT_BIN"));
        cmd.args(args);
        Agent::start(cmd)
    }

    /// Run `cmd` (the agent, or `ip netns exec` of it) with output captured.
    fn start(mut cmd: Command) -> Agent {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the agent");
        let output = (drain(child.stdout.take()), drain(child.stderr.take()));
        Agent {
            child: Some(child),
            output: Some(output),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Deliver `sig` to the agent process. `ip netns exec` execs the
    /// command in place, so the PID is the agent's own.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a PID we spawned and have not reaped.
        unsafe { libc::kill(self.pid(), sig) };
    }

    pub fn wait(mut self, timeout: Duration) -> Finished {
        let mut child = self.child.take().expect("agent already waited for");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = child.try_wait().expect("waiting for the agent") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the agent did not exit within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let (stdout, stderr) = match self.output.take() {
            Some((o, e)) => (o.join().unwrap_or_default(), e.join().unwrap_or_default()),
            None => Default::default(),
        };
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Wait until `path` holds at least `n` lines (the agent writes the header
/// once its probes are attached).
pub fn wait_for_lines(path: &Path, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < n
    {
        assert!(
            Instant::now() < deadline,
            "{} did not reach {n} lines",
            path.display()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

pub fn read_ndjson(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("reading NDJSON")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad NDJSON line {l}: {e}")))
        .collect()
}

/// `perf stat` counting tracepoint events of one device, system-wide,
/// until stopped: an independent count of what the agent's probes see.
pub struct PerfCount {
    child: Option<Child>,
    out: PathBuf,
}

/// A test that fails before [`PerfCount::stop`] must not leave perf
/// running: stop it as Ctrl-C would.
impl Drop for PerfCount {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the perf process we spawned.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let _ = c.wait();
        }
    }
}

impl PerfCount {
    /// `events` like `net:netif_receive_skb`; the filter keeps the device
    /// (by name: names are unique on this machine for the test's lifetime).
    pub fn start(events: &[&str], dev: &str, out: PathBuf) -> PerfCount {
        let filter = format!("name == \"{dev}\"");
        let filtered: Vec<(&str, &str)> = events.iter().map(|e| (*e, filter.as_str())).collect();
        PerfCount::start_filtered(&filtered, out)
    }

    /// `(event, filter)` pairs, for events whose records name no device
    /// (a TCP port, say). Each event is counted twice: in all, and in
    /// softirqs run on top of the threads of PID 1 (see [`PerfCounts::blind`]).
    pub fn start_filtered(events: &[(&str, &str)], out: PathBuf) -> PerfCount {
        let on_init = init_threads()
            .iter()
            .map(|t| format!("common_pid == {t}"))
            .collect::<Vec<_>>()
            .join(" || ");
        let mut cmd = Command::new("perf");
        cmd.args(["stat", "-a", "-x", ",", "-o"]).arg(&out);
        for (e, filter) in events {
            cmd.args(["-e", e, "--filter", filter]);
            let blind = format!("({filter}) && ({on_init})");
            cmd.args(["-e", e, "--filter", &blind]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting perf stat");
        // perf needs a moment to open its events; the output file appears first.
        thread::sleep(Duration::from_millis(800));
        PerfCount {
            child: Some(child),
            out,
        }
    }

    /// Stop counting (SIGINT, as Ctrl-C would) and return the counts.
    pub fn stop(mut self) -> PerfCounts {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the perf process we spawned.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
            let _ = c.wait();
        }
        let text = std::fs::read_to_string(&self.out).expect("perf stat output");
        let mut counts = PerfCounts::default();
        // perf prints the events in the order given: each one's total,
        // then its count on top of PID 1's threads.
        for l in text.lines() {
            let f: Vec<&str> = l.split(',').collect();
            let (Some(count), Some(name)) = (
                f.first().and_then(|c| c.trim().parse::<u64>().ok()),
                f.get(2).map(|n| n.trim().to_string()),
            ) else {
                continue;
            };
            let map = if counts.all.contains_key(&name) {
                &mut counts.on_init
            } else {
                &mut counts.all
            };
            map.insert(name, count);
        }
        counts
    }
}

/// What perf counted, per event.
#[derive(Debug, Default)]
pub struct PerfCounts {
    all: std::collections::BTreeMap<String, u64>,
    on_init: std::collections::BTreeMap<String, u64>,
}

impl std::ops::Index<&str> for PerfCounts {
    type Output = u64;

    /// Every time the event fired (and passed the filter).
    fn index(&self, event: &str) -> &u64 {
        self.all.get(event).unwrap_or(&0)
    }
}

impl PerfCounts {
    /// The times `event` fired in a softirq run on top of a thread of PID 1.
    /// On this project's machines PID 1 is the VM's own init (process_api),
    /// and no BPF program runs there: an ftrace instance recorded such
    /// hits of `net:netif_receive_skb` and `net:netif_rx_entry` that
    /// neither a `tp_btf` nor a classic BPF program saw, with no recursion
    /// miss counted (docs/kernel-notes.md, "Where BPF does not run").
    /// Elsewhere this is what PID 1 handled, usually nothing.
    pub fn blind(&self, event: &str) -> u64 {
        self.on_init.get(event).copied().unwrap_or(0)
    }
}

/// The agent's count of tracepoint hits against perf's. perf's window
/// encloses the agent's (started before the agent attaches, stopped after
/// it has detached), so perf may see more: the packets that provably
/// arrived outside the agent's window (`outside`: the device's rx_packets
/// from perf's start to the agent's header, and from SIGTERM to perf's
/// stop), and the hits in softirqs on top of PID 1's threads, where no BPF
/// program runs on these machines ([`PerfCounts::blind`]). Any other
/// difference, either way, is a real miss (a CPU's counters lost) or a
/// false match (another namespace's device).
#[track_caller]
pub fn assert_counts_match(
    agent: u64,
    perf: &PerfCounts,
    events: &[&str],
    outside: u64,
    what: &str,
) {
    let all: u64 = events.iter().map(|e| perf[*e]).sum();
    let blind: u64 = events.iter().map(|e| perf.blind(e)).sum();
    assert!(
        agent <= all && all - agent <= outside + blind,
        "{what}: agent {agent}, perf {all}, of which {blind} where BPF does not run; \
         {outside} packets arrived outside the agent's window"
    );
}

/// The thread ids of PID 1.
fn init_threads() -> Vec<u32> {
    let mut tids: Vec<u32> = std::fs::read_dir("/proc/1/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if tids.is_empty() {
        tids.push(1);
    }
    tids
}

/// Names of the BPF programs loaded in the kernel (`bpftool prog show`).
pub fn loaded_programs() -> Vec<String> {
    let out = sh(&["bpftool", "prog", "show", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A scratch file path unique to this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("toe-agent-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the scratch directory");
    dir.join(name)
}
