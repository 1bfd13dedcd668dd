//! The probe families, one folder each under toe-agent/src/probes/, for the
//! build scripts of toe-agent-common and toe-agent-ebpf: each folder with
//! the crate's file (layout.rs, kernel.rs) becomes a `#[path]` module in
//! `$OUT_DIR/families.rs`, which the crate includes. A new family is a new
//! folder; no list is edited by hand.
use std::{env, fs, path::Path};

/// Write the modules of every family's `file`; with `reexport`, each
/// module's public items are the crate's too.
pub(crate) fn write(file: &str, reexport: bool) {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let probes = Path::new(&manifest).join("../toe-agent/src/probes");
    println!("cargo:rerun-if-changed={}", probes.display());
    let mut files: Vec<_> = fs::read_dir(&probes)
        .expect("toe-agent/src/probes")
        .filter_map(|e| Some(e.ok()?.path().join(file)))
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    let mut out = String::new();
    for f in files {
        let dir = f.parent().expect("a family's folder");
        let name = dir.file_name().expect("a folder name").to_string_lossy();
        let path = fs::canonicalize(&f).expect("the family's file");
        out.push_str(&format!(
            "#[path = {:?}]\nmod {name};\n",
            path.display().to_string()
        ));
        if reexport {
            out.push_str(&format!("pub use {name}::*;\n"));
        }
    }
    let dest = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("families.rs");
    fs::write(dest, out).expect("writing families.rs");
}
