//! Compiles the FreeRTOS V11.2.0 kernel (POSIX simulator port, heap_4), our
//! `ports/freertos/posix/FreeRTOSConfig.h` and hooks, and the C half of rtos-shims' freertos
//! port into one static library linked into every test binary of this crate.

use std::env;
use std::path::PathBuf;

fn main() {
    let kernel = PathBuf::from(
        env::var("DEP_FREERTOS_KERNEL").expect("freertos-next must export DEP_FREERTOS_KERNEL (kernel sources)"),
    );
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let ports = manifest.join("../../ports/freertos");
    let posix = kernel.join("portable/ThirdParty/GCC/Posix");

    let mut build = cc::Build::new();
    build
        .include(ports.join("posix"))
        .include(&ports)
        .include(kernel.join("include"))
        .include(&posix)
        .include(posix.join("utils"))
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-pedantic")
        .opt_level(2)
        .warnings(true);
    for file in [
        "tasks.c",
        "queue.c",
        "list.c",
        "timers.c",
        "event_groups.c",
        "stream_buffer.c",
    ] {
        build.file(kernel.join(file));
    }
    build
        .file(kernel.join("portable/MemMang/heap_4.c"))
        .file(posix.join("port.c"))
        .file(posix.join("utils/wait_for_event.c"))
        .file(ports.join("uasyncio_freertos_port.c"))
        .file(ports.join("posix/hooks.c"));
    build.compile("freertos_posix");

    println!("cargo:rustc-link-lib=pthread");
    println!("cargo:rerun-if-changed={}", ports.display());
    println!("cargo:rerun-if-changed=build.rs");
}
