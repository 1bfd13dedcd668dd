//! The probe families, one folder each under toe-agent/src/probes/: each
//! folder with its programs (kernel.rs) becomes a `#[path]` module in
//! `$OUT_DIR/families.rs`, which src/lib.rs or src/main.rs includes. A new
//! family is a new folder; no list is edited by hand.
use std::{env, fs, path::Path};

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let probes = Path::new(&manifest).join("../toe-agent/src/probes");
    println!("cargo:rerun-if-changed={}", probes.display());
    let mut files: Vec<_> = fs::read_dir(&probes)
        .expect("toe-agent/src/probes")
        .filter_map(|e| Some(e.ok()?.path().join("kernel.rs")))
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    let mut out = String::new();
    for file in files {
        let dir = file.parent().expect("a family's folder");
        let name = dir.file_name().expect("a folder name").to_string_lossy();
        let path = fs::canonicalize(&file).expect("the family's kernel.rs");
        let path = path.display().to_string();
        out.push_str(&format!("#[path = {path:?}]\nmod {name};\n"));
    }
    let dest = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("families.rs");
    fs::write(dest, out).expect("writing families.rs");
}
