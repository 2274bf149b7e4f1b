//! Builds the FreeRTOS kernel the freertos-rust way (freertos-cargo-build: the kernel from
//! `FREERTOS_SRC`, `config/FreeRTOSConfig.h`, port GCC/ARM_CM3, heap_4, freertos-rust's shim)
//! and adds uasyncio's C port file to the same library, compiled with the same configuration.
//!
//! `UASYNCIO_NOTIFY_INDEX_MIN=1`: freertos-rust's task notifications use index 0, so the C port
//! refuses to compile (`#error`) if the configuration would put uasyncio's wake-up there
//! (`configTASK_NOTIFICATION_ARRAY_ENTRIES` below 2, or `UASYNCIO_NOTIFY_INDEX=0`).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let uasyncio = manifest.join("../..");
    let target = env::var("TARGET").unwrap_or_default();
    if !target.starts_with("thumbv7") {
        // freertos-rust hard-codes 32-bit BaseType_t/TickType_t: Cortex-M3/M4/M7 only here.
        panic!("this sample is for thumbv7m-none-eabi (mps2-an385), not {target}");
    }

    let mut b = freertos_cargo_build::Builder::new();
    if let Ok(src) = env::var("FREERTOS_SRC") {
        b.freertos(src);
    }
    b.freertos_config(manifest.join("config"));
    b.freertos_port("GCC/ARM_CM3");
    b.heap("heap_4.c");
    b.add_build_file(uasyncio.join("ports/freertos/uasyncio_freertos_port.c"));
    b.get_cc()
        .include(uasyncio.join("ports/freertos"))
        .define("UASYNCIO_NOTIFY_INDEX_MIN", "1");
    if let Err(e) = b.compile() {
        panic!("building FreeRTOS (set FREERTOS_SRC to a FreeRTOS-Kernel V11 checkout): {e}");
    }

    // cortex-m-rt's linker script: memory.x and the (empty) device.x next to it.
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in ["memory.x", "device.x"] {
        fs::copy(manifest.join(file), out.join(file)).expect("copy the linker script parts");
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=config/FreeRTOSConfig.h");
    println!("cargo:rerun-if-changed={}", uasyncio.join("ports/freertos").display());
}
