//! Puts `memory.x` and `device.x` where cortex-m-rt's `link.x` finds them, and links with
//! `link.x`.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in ["memory.x", "device.x"] {
        let text = std::fs::read(file).expect("memory.x and device.x sit next to build.rs");
        std::fs::write(out.join(file), text).expect("OUT_DIR is writable");
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
