//! Data flows one way: no module imports a module that imports it back.
//! This test reads the crate's sources, collects every `crate::` and
//! `super::` path outside comments and test modules (`use` trees and
//! paths in macros included), resolves each to the module (file) it names, and fails on
//! any cycle between modules, naming it. Parent and
//! child modules (a folder and its files) are one unit and not compared.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Module path (`sinks::view`) of every source file under `dir`.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let mut parts = prefix.to_vec();
        if path.is_dir() {
            parts.push(name);
            modules(&path, &parts, out);
            continue;
        }
        // probes/<family>/kernel.rs belongs to the eBPF crate and
        // layout.rs to toe-agent-common.
        let ebpf = ["kernel", "layout"].contains(&name.as_str())
            && prefix.first().is_some_and(|p| p == "probes");
        if path.extension().is_none_or(|e| e != "rs") || ebpf {
            continue;
        }
        if !["mod", "lib", "main"].contains(&name.as_str()) {
            parts.push(name);
        }
        out.insert(parts.join("::"), std::fs::read_to_string(&path).unwrap());
    }
}

/// The paths a `use` tree names: `a::{b, c::{d, e}}` gives a::b, a::c::d, a::c::e.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or("").trim().to_string()];
    };
    let (prefix, body) = (&tree[..open], &tree[open + 1..tree.rfind('}').unwrap()]);
    let (mut items, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .iter()
        .filter(|i| !i.trim().is_empty())
        .flat_map(|i| expand(i).into_iter().map(|p| format!("{prefix}{p}")))
        .collect()
}

/// The source without comments and without its `mod tests`.
fn code(source: &str) -> String {
    let body = source.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    body.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules the source of `module` refers to: through `crate::`, and
/// through `super::` to its siblings (`use super::view::Context`).
fn references(module: &str, source: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let code = code(source);
    let mut paths = Vec::new();
    let starts = code
        .match_indices("crate::")
        .map(|(i, _)| (i + "crate::".len(), String::new()))
        .chain(code.match_indices("super::").filter_map(|(i, _)| {
            // The first `super::` of a path: resolved against the module's
            // parent, one level up per `super::`.
            if code[..i].ends_with("::") {
                return None;
            }
            let mut at = i;
            let mut base: Vec<&str> = module.split("::").collect();
            while code[at..].starts_with("super::") {
                base.pop();
                at += "super::".len();
            }
            Some((at, base.iter().map(|s| format!("{s}::")).collect()))
        }));
    for (at, base) in starts {
        let rest = &code[at..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '$'))
            .unwrap_or(rest.len());
        if rest[end..].starts_with('{') {
            // A use tree, `crate::{a, b}` or `crate::model::{a, b::c}`.
            let end = rest.find(';').unwrap_or(rest.len());
            paths.extend(
                expand(&rest[..end])
                    .into_iter()
                    .map(|p| format!("{base}{p}")),
            );
        } else {
            paths.push(format!("{base}{}", rest[..end].trim_end_matches(':')));
        }
    }
    paths.iter().flat_map(|p| resolve(p, known)).collect()
}

/// The modules a path names: its longest prefix that is a module. A
/// macro's `$name` segment (`crate::probes::$family::period::Part`)
/// stands for every module it can be.
fn resolve(path: &str, known: &BTreeMap<String, String>) -> Vec<String> {
    let parts: Vec<&str> = path.split("::").collect();
    let matches = |module: &str, pattern: &[&str]| {
        let segments: Vec<&str> = module.split("::").collect();
        segments.len() == pattern.len()
            && segments
                .iter()
                .zip(pattern)
                .all(|(s, p)| p.starts_with('$') || s == p)
    };
    (1..=parts.len())
        .rev()
        .map(|k| {
            known
                .keys()
                .filter(|m| matches(m, &parts[..k]))
                .cloned()
                .collect::<Vec<_>>()
        })
        .find(|m| !m.is_empty())
        .unwrap_or_default()
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut known = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut known,
    );
    assert!(known.contains_key("sinks::view") && known.contains_key("model::catalogue"));
    let edges: BTreeMap<&String, BTreeSet<String>> = known
        .iter()
        .map(|(m, src)| {
            let refs = references(m, src, &known);
            (m, refs.into_iter().filter(|r| !related(m, r)).collect())
        })
        .collect();
    // A cycle through any number of modules: search from each module for a
    // path back to it.
    for start in edges.keys() {
        let mut stack: Vec<(String, Vec<String>)> =
            vec![((*start).clone(), vec![(*start).clone()])];
        let mut seen = BTreeSet::new();
        while let Some((m, path)) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if next == *start {
                    panic!("module cycle: {} -> {start}", path.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
}

#[test]
fn use_trees_and_macro_paths_name_their_modules() {
    let known: BTreeMap<String, String> = [
        "model",
        "model::period",
        "model::verdict",
        "probes",
        "probes::gro",
        "probes::gro::period",
        "probes::napi",
        "probes::napi::period",
    ]
    .into_iter()
    .map(|m| (m.to_string(), String::new()))
    .collect();
    let refs = |src: &str| {
        references("model::catalogue", src, &known)
            .into_iter()
            .collect::<Vec<_>>()
    };
    // A use tree below the crate's root names each module in it (this
    // one once read as `model` alone, hiding a cycle).
    assert_eq!(
        refs("use crate::model::{period::{Blocks, Sampling}, verdict::Coverage};"),
        ["model::period", "model::verdict"]
    );
    // A macro's `$family` stands for every family with that module.
    assert_eq!(
        refs("type T = crate::probes::$family::period::Part;"),
        ["probes::gro::period", "probes::napi::period"]
    );
    assert_eq!(refs("crate::probes::gro::FAMILY"), ["probes::gro"]);
    // `super::` names a sibling.
    assert_eq!(refs("use super::verdict::Coverage;"), ["model::verdict"]);
}
