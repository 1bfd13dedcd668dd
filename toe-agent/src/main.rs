use std::process::ExitCode;

use clap::Parser;
use toe_agent::{
    AuditArgs, BenchArgs, Cli, Command, LabArgs, ReportArgs, ServeArgs, TraceArgs, audit, bench,
    lab, report, serve, trace,
};

fn main() -> ExitCode {
    one_malloc_arena();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Trace(t) => trace(TraceArgs {
            iface: t.iface,
            interval: t.interval,
            duration: t.duration,
            ndjson: t.ndjson,
            plain: t.plain,
            classic_only: t.classic,
            log_level: t.log_level,
            self_stats: t.self_stats,
            per_skb: t.per_skb,
            sample: t.sample,
            device_class: t.device_class,
        }),
        Command::Audit(a) => audit(AuditArgs {
            ifaces: a.iface,
            all: a.all,
            json: a.json,
            fail_on: a.fail_on,
            sample: a.sample,
            log_since: a.log_since,
            from: a.from,
            diff: a.diff,
        }),
        Command::Serve(s) => serve(ServeArgs {
            ifaces: s.iface,
            listen: s.listen,
            interval: s.interval,
            window: s.window as usize,
            self_stats: s.self_stats,
            per_skb: s.per_skb,
            sample: s.sample,
            classic_only: s.classic,
            log_level: s.log_level,
            device_class: s.device_class,
        }),
        Command::Report(r) => report(ReportArgs {
            file: r.file,
            compare: r.compare.map(|c| (c[0].clone(), c[1].clone())),
            svg: r.svg,
        }),
        Command::Bench(b) => bench(BenchArgs {
            pairs: b.pairs as usize,
            duration: b.duration,
            out: b.out,
        }),
        Command::Lab(l) => lab(LabArgs {
            config: l.config,
            json: l.json,
            list: l.list,
            duration: l.duration,
            sample: l.sample,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("toe-agent: {}", f.message());
            ExitCode::from(f.exit_code())
        }
    }
}

/// One malloc arena for every thread. Attaching reads the kernel's BTF
/// (megabytes) and frees it again; serve re-attaches from its sampler
/// thread, and glibc kept that memory in the thread's own arena, even after
/// malloc_trim(3): in the soak (docs/cli.md) serve's resident memory went
/// from 8 to 19 MB at the first re-attachment and stayed there; with one
/// arena it stays at 8. The agent's few threads never contend for it.
fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt(3) before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
