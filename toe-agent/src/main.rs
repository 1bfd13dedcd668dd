use std::process::ExitCode;

use clap::Parser;
use toe_agent::{
    bench,
    cli::{Cli, Command},
    lab, trace,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Trace(t) => trace::run(trace::TraceArgs {
            iface: t.iface,
            interval: t.interval,
            duration: t.duration,
            ndjson: t.ndjson,
            classic_only: t.classic,
            self_stats: t.self_stats,
        }),
        Command::Bench(b) => bench::run(bench::BenchArgs {
            pairs: b.pairs as usize,
            duration: b.duration,
            out: b.out,
        }),
        Command::Lab(l) => lab::run(lab::LabArgs {
            config: l.config,
            json: l.json,
            list: l.list,
            duration: l.duration,
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
