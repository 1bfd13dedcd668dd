//! Each probe family's programs (toe-agent/src/probes/<family>/kernel.rs)
//! become a module of the object.
#[path = "../toe-agent-common/build/families.rs"]
mod families;

fn main() {
    families::write("kernel.rs", false);
}
