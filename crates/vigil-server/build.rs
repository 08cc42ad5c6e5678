//! Rebuilds the crate when a dashboard file under `web/` is added or changed: rust-embed
//! embeds them at compile time, and cargo does not otherwise notice a new file there.

fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
