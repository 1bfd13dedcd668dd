//! Each probe family's map value (toe-agent/src/probes/<family>/layout.rs)
//! becomes a module of this crate, its public items this crate's.
#[path = "build/families.rs"]
mod families;

fn main() {
    families::write("layout.rs", true);
}
