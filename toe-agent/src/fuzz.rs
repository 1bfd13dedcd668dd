//! One entry per parser that reads input from outside the program: files
//! a user names, and what the kernel writes into buffers and netlink
//! messages. Each takes arbitrary bytes and must return, never panic. The
//! cargo-fuzz targets in `fuzz/` call these, and `fuzz/corpus/` (the
//! minimised corpus, with every input that once failed) is replayed by the
//! unit test below on every `cargo test`.

/// `report` and `report --compare`: an NDJSON recording.
pub fn ndjson(data: &[u8]) {
    let _ = crate::read_run(data, "fuzz");
}

/// `audit --from` and `audit --diff`: a JSON report or snapshot, judged,
/// printed and compared with itself.
pub fn audit_report(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(report) = crate::cmd::audit::parse(text, &"fuzz") {
        let _ = crate::cmd::audit::render(&report);
        assert!(crate::cmd::audit::diff(&report, &report).is_empty());
    }
}

/// A datagram of a netdev qstats dump.
pub fn qstats(data: &[u8]) {
    let _ = crate::sys::qstats::decode_datagram(data, 1);
}

/// ethtool string and statistics buffers as a driver fills them: the
/// first byte is the count asked for, the rest the buffer.
pub fn ethtool(data: &[u8]) {
    let Some((&asked, rest)) = data.split_first() else {
        return;
    };
    let words: Vec<u32> = rest
        .chunks_exact(4)
        .map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    let _ = crate::sys::ethtool::decode_buffers(&words, asked as usize);
}

/// Kernel BTF (/sys/kernel/btf/vmlinux): parsed, then every offset and the
/// drop reasons resolved from it.
pub fn btf(data: &[u8]) {
    if let Ok(btf) = crate::kernel::btf::KernelBtf::parse(data.to_vec()) {
        let _ = btf.offsets();
        let _ = btf.enum_values("skb_drop_reason");
    }
}

/// A parser's fuzz entry.
pub type Entry = fn(&[u8]);

/// The fuzz targets by name, as `fuzz/corpus/<name>/` holds their inputs.
pub const TARGETS: &[(&str, Entry)] = &[
    ("ndjson_reader", ndjson),
    ("audit_report", audit_report),
    ("qstats", qstats),
    ("ethtool", ethtool),
    ("btf", btf),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every input of the minimised corpus goes through its parser without
    /// a panic: the fuzzers' findings stay fixed.
    #[test]
    fn the_fuzz_corpus_parses_without_a_panic() {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        for (name, parse) in super::TARGETS {
            let dir = corpus.join(name);
            let inputs: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            assert!(!inputs.is_empty(), "{} is empty", dir.display());
            for input in inputs {
                let data = std::fs::read(&input).unwrap();
                let caught = std::panic::catch_unwind(|| parse(&data));
                assert!(caught.is_ok(), "{} panics", input.display());
            }
        }
    }
}
