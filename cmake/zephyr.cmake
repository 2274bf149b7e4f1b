# cmake/zephyr.cmake: the Zephyr branch of this repository's CMake entry point.
#
# Zephyr reads zephyr/module.yml, which names the top-level CMakeLists.txt; that file includes
# this one when it runs inside a Zephyr build (ZEPHYR_BASE is set). With CONFIG_UASYNCIO=y it
#
#   1. compiles the C shim (rtos-shims/zephyr-shim/uasyncio_shim.c) into a Zephyr library:
#      it exports Zephyr's static-inline and syscall APIs as real symbols for Rust, owns the
#      uasyncio heap, and starts the loop thread (CONFIG_UASYNCIO_LOOP_THREAD);
#   2. puts component/include (uasyncio.h, the C API) on every Zephyr include path;
#   3. defines uasyncio_cargo_application(), which an application's CMakeLists.txt calls to
#      build its Rust crate (a staticlib that depends on `uasyncio` with feature `zephyr`)
#      with cargo for the board's Rust target, and to link it into the image;
#   4. turns the mistakes that would otherwise surface as link errors into configure errors
#      that name the fix: no uasyncio_cargo_application() call, a crate that is not a
#      staticlib, CONFIG_UASYNCIO_HEAP_SIZE=0 without a system heap, and, with zephyr-lang-rust
#      (CONFIG_RUST=y), a second Rust staticlib or a second panic handler.
#
# SPDX-License-Identifier: MIT OR Apache-2.0

if(NOT CONFIG_UASYNCIO)
  # The module is listed but not enabled: an application that still calls the function gets
  # the fix instead of CMake's "Unknown CMake command".
  function(uasyncio_cargo_application)
    message(FATAL_ERROR
      "uasyncio: uasyncio_cargo_application() is called but CONFIG_UASYNCIO is not set: add "
      "CONFIG_UASYNCIO=y to the application's prj.conf.")
  endfunction()
  return()
endif()

get_filename_component(_uasyncio_dir "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(UASYNCIO_DIR "${_uasyncio_dir}" CACHE INTERNAL "Root of the uasyncio-rs Zephyr module")

zephyr_library_named(uasyncio_shim)
zephyr_library_sources(${UASYNCIO_DIR}/rtos-shims/zephyr-shim/uasyncio_shim.c)
# The shim's kernel calls (heap, semaphore, clock, context, output). With
# CONFIG_UASYNCIO_ZEPHYR_SYS=y (zephyr-lang-rust) the crate uasyncio-zephyr-sys
# (rtos-shims/zephyr-sys-port) defines the same functions in Rust through zephyr-sys instead.
if(NOT CONFIG_UASYNCIO_ZEPHYR_SYS)
  zephyr_library_sources(${UASYNCIO_DIR}/rtos-shims/zephyr-shim/uasyncio_shim_kernel.c)
endif()
zephyr_library_include_directories(${UASYNCIO_DIR}/rtos-shims/zephyr-shim)
zephyr_include_directories(${UASYNCIO_DIR}/component/include)

# CONFIG_UASYNCIO_HEAP_SIZE=0 hands Rust allocations to the system heap (k_aligned_alloc), which
# exists only with CONFIG_HEAP_MEM_POOL_SIZE > 0; without it the link fails much later with
# "undefined reference to k_aligned_alloc". (A Kconfig `depends on` could only drop the user's
# value with a warning, so the combination is refused here, with the fix in the message.)
if(CONFIG_UASYNCIO_HEAP_SIZE EQUAL 0 AND NOT CONFIG_HEAP_MEM_POOL_SIZE GREATER 0)
  message(FATAL_ERROR
    "uasyncio: CONFIG_UASYNCIO_HEAP_SIZE=0 puts Rust allocations on the system heap, but "
    "CONFIG_HEAP_MEM_POOL_SIZE is 0 (no system heap). Set CONFIG_HEAP_MEM_POOL_SIZE=<bytes> "
    "(e.g. 16384) in prj.conf, or give uasyncio its own heap with CONFIG_UASYNCIO_HEAP_SIZE > 0.")
endif()

# With CONFIG_UASYNCIO_LOOP_THREAD=y the shim calls rust_main(), which lives in the
# application's Rust crate: without uasyncio_cargo_application() the link fails with undefined
# references (rust_main, uasyncio_zephyr_port_init, ...). Check once the application's
# CMakeLists.txt has been read, and say what is missing.
function(uasyncio_check_lang_rust_crate crate_dir)
  find_program(UASYNCIO_CARGO cargo HINTS $ENV{CARGO_HOME}/bin $ENV{HOME}/.cargo/bin)
  if(NOT UASYNCIO_CARGO OR NOT EXISTS ${crate_dir}/Cargo.toml)
    return()
  endif()
  execute_process(
    COMMAND ${UASYNCIO_CARGO} metadata --no-deps --format-version 1 --offline
      --manifest-path ${crate_dir}/Cargo.toml
    OUTPUT_VARIABLE metadata ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    return()    # cargo itself will report a broken manifest, with more detail
  endif()
  string(JSON n_deps ERROR_VARIABLE json_err LENGTH "${metadata}" packages 0 dependencies)
  if(json_err OR n_deps EQUAL 0)
    return()
  endif()
  math(EXPR last "${n_deps} - 1")
  set(has_sys_port FALSE)
  foreach(i RANGE ${last})
    string(JSON dep GET "${metadata}" packages 0 dependencies ${i} name)
    if(dep STREQUAL "uasyncio-zephyr-sys")
      set(has_sys_port TRUE)
    endif()
    if(dep STREQUAL "uasyncio")
      string(JSON features GET "${metadata}" packages 0 dependencies ${i} features)
      string(JSON defaults GET "${metadata}" packages 0 dependencies ${i} uses_default_features)
      if(features MATCHES "\"(zephyr|panic-handler)\"" OR defaults STREQUAL "ON" OR defaults STREQUAL "true")
        # The suggestion keeps the features that are not about the port (the C API's "ffi",
        # "stats", "diagnostics", "rtos-trace"; "stats" also when it came with the default
        # features), so that copying it does not break the build.
        set(keep "")
        set(wanted "${features}")
        if(defaults STREQUAL "ON" OR defaults STREQUAL "true")
          string(APPEND wanted " \"stats\"")
        endif()
        foreach(f ffi stats diagnostics rtos-trace)
          if(wanted MATCHES "\"${f}\"")
            string(APPEND keep ", \"${f}\"")
          endif()
        endforeach()
        message(FATAL_ERROR
          "uasyncio: CONFIG_RUST=y (zephyr-lang-rust), whose `zephyr` crate has the panic "
          "handler, but ${crate_dir}/Cargo.toml asks uasyncio for features ${features} "
          "(default features: ${defaults}): `zephyr` includes a second panic handler, and the "
          "default `std` is for hosts. Use\n"
          "  uasyncio = { path = ..., default-features = false, features = [\"zephyr-port\", "
          "\"global-allocator\", \"critical-section-impl\"${keep}] }\n"
          "(drop global-allocator / critical-section-impl if the zephyr crate provides them).")
      endif()
    endif()
  endforeach()
  # CONFIG_UASYNCIO_ZEPHYR_SYS=y leaves the C shim's kernel calls out: the crate
  # uasyncio-zephyr-sys must provide them, or the link fails with undefined
  # uasyncio_shim_sem_give etc.
  # A dependency no source file names is not linked: the port's kernel calls would then be
  # undefined at the link (uasyncio_shim_alloc, ...). Look for the crate's name in src/.
  if(CONFIG_UASYNCIO_ZEPHYR_SYS AND has_sys_port)
    file(GLOB_RECURSE sources ${crate_dir}/src/*.rs)
    set(named FALSE)
    foreach(f ${sources})
      file(READ ${f} text)
      string(FIND "${text}" "uasyncio_zephyr_sys" at)
      if(NOT at EQUAL -1)
        set(named TRUE)
        break()
      endif()
    endforeach()
    if(NOT named)
      message(FATAL_ERROR
        "uasyncio: ${crate_dir}/Cargo.toml depends on uasyncio-zephyr-sys, but no file in "
        "${crate_dir}/src names it, so rustc would not link it (the link would fail with "
        "undefined uasyncio_shim_alloc, uasyncio_shim_sem_give, ...). Add\n"
        "  use uasyncio_zephyr_sys as _;\n"
        "to ${crate_dir}/src/lib.rs.")
    endif()
  endif()
  if(CONFIG_UASYNCIO_ZEPHYR_SYS AND NOT has_sys_port)
    message(FATAL_ERROR
      "uasyncio: CONFIG_UASYNCIO_ZEPHYR_SYS=y (the default with CONFIG_RUST=y) makes the port's "
      "kernel calls from Rust through zephyr-sys, but ${crate_dir}/Cargo.toml does not depend "
      "on the crate that does it. Add\n"
      "  uasyncio-zephyr-sys = { path = \"${UASYNCIO_DIR}/rtos-shims/zephyr-sys-port\" }\n"
      "to its [dependencies] and `use uasyncio_zephyr_sys as _;` to its lib.rs, or set "
      "CONFIG_UASYNCIO_ZEPHYR_SYS=n (the C shim then makes the calls).")
  endif()
endfunction()

function(uasyncio_check_application)
  get_property(libs GLOBAL PROPERTY UASYNCIO_RUST_LIBS)
  if(CONFIG_RUST)
    # zephyr-lang-rust: rust_cargo_application() builds the crate. Its `zephyr` crate defines
    # the panic handler, so uasyncio's (feature `panic-handler`, part of `zephyr`) would make
    # rustc stop with "duplicate lang item `panic_impl`": say which features to use instead.
    uasyncio_check_lang_rust_crate(${APPLICATION_SOURCE_DIR})
    return()
  endif()
  if(NOT libs)
    message(FATAL_ERROR
      "uasyncio: CONFIG_UASYNCIO=y, but the application's CMakeLists.txt does not call "
      "uasyncio_cargo_application(): nothing builds the Rust crate that uses uasyncio, so the "
      "link would fail (undefined rust_main, uasyncio_zephyr_port_init). Add the line\n"
      "  uasyncio_cargo_application()\n"
      "after find_package(Zephyr ...) in ${APPLICATION_SOURCE_DIR}/CMakeLists.txt, or set "
      "CONFIG_UASYNCIO=n.")
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL uasyncio_check_application)

# zephyr-lang-rust (CONFIG_RUST=y): its main() calls rust_main(), so the loop thread of the shim
# (CONFIG_UASYNCIO_LOOP_THREAD, which Kconfig already turns off) would call it a second time.
if(CONFIG_RUST AND CONFIG_UASYNCIO_LOOP_THREAD)
  message(FATAL_ERROR
    "uasyncio: CONFIG_RUST=y (zephyr-lang-rust) calls rust_main() from main(); "
    "CONFIG_UASYNCIO_LOOP_THREAD=y would call it again from a second thread. "
    "Remove CONFIG_UASYNCIO_LOOP_THREAD=y from prj.conf (the loop then runs in the main "
    "thread: size it with CONFIG_MAIN_STACK_SIZE).")
endif()

# A Rust staticlib carries no .note.GNU-stack for its assembly parts; GNU ld then warns that
# the stack is executable. Zephyr never executes from the stack: say so.
zephyr_ld_options(-Wl,-z,noexecstack)

# uasyncio_rust_target(<out-var>)
#
# The Rust target triple for the board being built: the cache variable UASYNCIO_RUST_TARGET
# if set (-DUASYNCIO_RUST_TARGET=...), else derived from the board's Kconfig.
function(uasyncio_rust_target out)
  if(UASYNCIO_RUST_TARGET)
    set(triple ${UASYNCIO_RUST_TARGET})
  elseif(CONFIG_ARCH_POSIX)
    # native_sim / native_posix: the image is a host executable.
    if(CONFIG_64BIT)
      if(CMAKE_HOST_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
        set(triple aarch64-unknown-linux-gnu)
      else()
        set(triple x86_64-unknown-linux-gnu)
      endif()
    else()
      set(triple i686-unknown-linux-gnu)
    endif()
  elseif(CONFIG_CPU_CORTEX_M0 OR CONFIG_CPU_CORTEX_M0PLUS OR CONFIG_CPU_CORTEX_M1)
    set(triple thumbv6m-none-eabi)
  elseif(CONFIG_CPU_CORTEX_M3)
    set(triple thumbv7m-none-eabi)
  elseif(CONFIG_CPU_CORTEX_M4 OR CONFIG_CPU_CORTEX_M7)
    if(CONFIG_FP_HARDABI)
      set(triple thumbv7em-none-eabihf)
    else()
      set(triple thumbv7em-none-eabi)
    endif()
  elseif(CONFIG_CPU_CORTEX_M23)
    set(triple thumbv8m.base-none-eabi)
  elseif(CONFIG_CPU_CORTEX_M33 OR CONFIG_CPU_CORTEX_M55)
    if(CONFIG_FP_HARDABI)
      set(triple thumbv8m.main-none-eabihf)
    else()
      set(triple thumbv8m.main-none-eabi)
    endif()
  elseif(CONFIG_RISCV AND NOT CONFIG_64BIT)
    if(CONFIG_RISCV_ISA_EXT_A AND CONFIG_RISCV_ISA_EXT_M)
      set(triple riscv32imac-unknown-none-elf)
    elseif(CONFIG_RISCV_ISA_EXT_M)
      set(triple riscv32imc-unknown-none-elf)
    else()
      set(triple riscv32i-unknown-none-elf)
    endif()
  elseif(CONFIG_RISCV AND CONFIG_64BIT)
    set(triple riscv64imac-unknown-none-elf)
  else()
    message(FATAL_ERROR
      "uasyncio: no Rust target known for board ${BOARD} (arch ${ARCH}); "
      "pass -DUASYNCIO_RUST_TARGET=<rust target triple>")
  endif()
  set(${out} ${triple} PARENT_SCOPE)
endfunction()

# The cargo steps shared with the FreeRTOS component (crate name, staticlib check, cargo build).
include(${CMAKE_CURRENT_LIST_DIR}/cargo-crate.cmake)

# uasyncio_cargo_application([CRATE_DIR <dir>] [LIB_NAME <name>] [FEATURES <f>...]
#                            [CARGO_ARGS <arg>...])
#
# Builds the Rust crate in CRATE_DIR (default: the application's source directory) with
# `cargo build --target <board's Rust target>`, and links its static library into the app.
# The crate must be `crate-type = ["staticlib"]` (checked here, through `cargo metadata`, which
# also gives the library's file name), `#![no_std]`, and depend on `uasyncio` with feature
# `zephyr` (path dependency on <this module>/component). LIB_NAME overrides the name. With
# CONFIG_UASYNCIO_LOOP_THREAD=y it exports `extern "C" fn rust_main()`, the loop thread's body.
#
# Cargo runs on every build (it is incremental and cheap when nothing changed). Its target
# directory is $CARGO_TARGET_DIR when set, else <build>/rust-target. Panics abort (the port's
# panic handler prints through printk and calls k_panic()).
function(uasyncio_cargo_application)
  cmake_parse_arguments(ARG "" "CRATE_DIR;LIB_NAME" "FEATURES;CARGO_ARGS" ${ARGN})
  if(CONFIG_RUST)
    # Two Rust static libraries in one image each bring core, alloc and their global items;
    # zephyr-lang-rust links with --allow-multiple-definition, so the clash would not even
    # be reported. uasyncio must be a plain dependency of the one zephyr-lang-rust crate.
    message(FATAL_ERROR
      "uasyncio_cargo_application: CONFIG_RUST=y, so zephyr-lang-rust builds the application's "
      "Rust crate: call rust_cargo_application() instead, and in that crate's Cargo.toml depend "
      "on uasyncio with default-features = false, features = [\"zephyr-port\", "
      "\"global-allocator\", \"critical-section-impl\"] (the `zephyr` crate has the panic "
      "handler). See samples/zephyr/lang_rust.")
  endif()
  if(NOT ARG_CRATE_DIR)
    set(ARG_CRATE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  get_filename_component(crate_dir "${ARG_CRATE_DIR}" ABSOLUTE)

  # The crate's library (its file is lib<name>.a), which must be a staticlib: read and checked
  # through `cargo metadata` (cmake/cargo-crate.cmake). LIB_NAME overrides the name.
  uasyncio_crate_lib_name(lib_name "${crate_dir}" uasyncio_cargo_application)
  if(ARG_LIB_NAME)
    set(lib_name ${ARG_LIB_NAME})
  endif()

  uasyncio_rust_target(rust_target)
  uasyncio_check_rust_target(${rust_target})

  if(CONFIG_UASYNCIO_RUST_RELEASE)
    set(profile release)
  else()
    set(profile dev)
  endif()
  if(DEFINED ENV{CARGO_TARGET_DIR})
    set(target_dir $ENV{CARGO_TARGET_DIR})
  else()
    set(target_dir ${CMAKE_BINARY_DIR}/rust-target)
  endif()

  uasyncio_cargo_build(uasyncio_cargo_${lib_name}
    CRATE_DIR ${crate_dir}
    LIB_NAME ${lib_name}
    RUST_TARGET ${rust_target}
    TARGET_DIR ${target_dir}
    PROFILE ${profile}
    FEATURES ${ARG_FEATURES}
    CARGO_ARGS ${ARG_CARGO_ARGS}
    OUT_LIB_PATH lib_path)

  add_dependencies(app uasyncio_cargo_${lib_name})
  target_link_libraries(app PUBLIC ${lib_path})
  set_property(GLOBAL APPEND PROPERTY UASYNCIO_RUST_LIBS ${lib_path})
endfunction()
