//! One fact about the target for the port code: whether it is an M-profile Arm core
//! (Cortex-M), where "is the caller an interrupt handler" is one read of the IPSR register
//! instead of a call into the kernel (the Zephyr port; see `zephyr::in_isr`).
//!
//! Rust's M-profile targets are `thumbv6m-`, `thumbv7m-`, `thumbv7em-` and `thumbv8m.*`
//! `-none-eabi[hf]`; `thumbv4t-`/`thumbv5te-` are classic Arm cores without IPSR, and the
//! A- and R-profile targets start with `armv`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(uasyncio_cortex_m)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if ["thumbv6m-", "thumbv7m-", "thumbv7em-", "thumbv8m."]
        .iter()
        .any(|p| target.starts_with(p))
    {
        println!("cargo:rustc-cfg=uasyncio_cortex_m");
    }
}
