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
#      with cargo for the board's Rust target, and to link it into the image.
#
# SPDX-License-Identifier: MIT OR Apache-2.0

if(NOT CONFIG_UASYNCIO)
  return()
endif()

get_filename_component(_uasyncio_dir "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(UASYNCIO_DIR "${_uasyncio_dir}" CACHE INTERNAL "Root of the uasyncio-rs Zephyr module")

zephyr_library_named(uasyncio_shim)
zephyr_library_sources(${UASYNCIO_DIR}/rtos-shims/zephyr-shim/uasyncio_shim.c)
zephyr_library_include_directories(${UASYNCIO_DIR}/rtos-shims/zephyr-shim)
zephyr_include_directories(${UASYNCIO_DIR}/component/include)

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

# uasyncio_cargo_application([CRATE_DIR <dir>] [LIB_NAME <name>] [FEATURES <f>...]
#                            [CARGO_ARGS <arg>...])
#
# Builds the Rust crate in CRATE_DIR (default: the application's source directory) with
# `cargo build --target <board's Rust target>`, and links its static library into the app.
# The crate must be `crate-type = ["staticlib"]`, `#![no_std]`, and depend on `uasyncio`
# with feature `zephyr` (path dependency on <this module>/component). With
# CONFIG_UASYNCIO_LOOP_THREAD=y it exports `extern "C" fn rust_main()`, the loop thread's body.
#
# Cargo runs on every build (it is incremental and cheap when nothing changed). Its target
# directory is $CARGO_TARGET_DIR when set, else <build>/rust-target. Panics abort (the port's
# panic handler prints through printk and calls k_panic()).
function(uasyncio_cargo_application)
  cmake_parse_arguments(ARG "" "CRATE_DIR;LIB_NAME" "FEATURES;CARGO_ARGS" ${ARGN})
  if(NOT ARG_CRATE_DIR)
    set(ARG_CRATE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  get_filename_component(crate_dir "${ARG_CRATE_DIR}" ABSOLUTE)
  if(NOT EXISTS ${crate_dir}/Cargo.toml)
    message(FATAL_ERROR "uasyncio_cargo_application: no Cargo.toml in ${crate_dir}")
  endif()

  # The library's file name: [lib] name if given, else the package name, '-' -> '_'.
  if(ARG_LIB_NAME)
    set(lib_name ${ARG_LIB_NAME})
  else()
    file(STRINGS ${crate_dir}/Cargo.toml name_lines REGEX "^[ \t]*name[ \t]*=")
    list(GET name_lines -1 name_line)
    string(REGEX REPLACE "^[ \t]*name[ \t]*=[ \t]*\"([^\"]+)\".*" "\\1" lib_name "${name_line}")
    string(REPLACE "-" "_" lib_name "${lib_name}")
  endif()

  uasyncio_rust_target(rust_target)

  find_program(UASYNCIO_CARGO cargo HINTS $ENV{CARGO_HOME}/bin $ENV{HOME}/.cargo/bin REQUIRED)
  find_program(UASYNCIO_RUSTC rustc HINTS $ENV{CARGO_HOME}/bin $ENV{HOME}/.cargo/bin REQUIRED)
  execute_process(COMMAND ${UASYNCIO_RUSTC} --print sysroot
    OUTPUT_VARIABLE rust_sysroot OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT EXISTS "${rust_sysroot}/lib/rustlib/${rust_target}")
    message(FATAL_ERROR
      "uasyncio: the Rust standard library for ${rust_target} is not installed; "
      "run: rustup target add ${rust_target}")
  endif()

  if(CONFIG_UASYNCIO_RUST_RELEASE)
    set(profile_flag --release)
    set(profile_dir release)
  else()
    set(profile_flag)
    set(profile_dir debug)
  endif()
  if(DEFINED ENV{CARGO_TARGET_DIR})
    set(target_dir $ENV{CARGO_TARGET_DIR})
  else()
    set(target_dir ${CMAKE_BINARY_DIR}/rust-target)
  endif()
  set(lib_path ${target_dir}/${rust_target}/${profile_dir}/lib${lib_name}.a)

  set(feature_args)
  if(ARG_FEATURES)
    string(REPLACE ";" "," features "${ARG_FEATURES}")
    set(feature_args --features ${features})
  endif()

  add_custom_target(uasyncio_cargo_${lib_name} ALL
    COMMAND ${CMAKE_COMMAND} -E env
      CARGO_TARGET_DIR=${target_dir}
      CARGO_PROFILE_RELEASE_PANIC=abort
      CARGO_PROFILE_DEV_PANIC=abort
      ${UASYNCIO_CARGO} build
        --manifest-path ${crate_dir}/Cargo.toml
        --target ${rust_target}
        ${profile_flag} ${feature_args} ${ARG_CARGO_ARGS}
    BYPRODUCTS ${lib_path}
    WORKING_DIRECTORY ${crate_dir}
    COMMENT "cargo: building ${lib_name} for ${rust_target} (${profile_dir})"
    USES_TERMINAL
    VERBATIM)

  add_dependencies(app uasyncio_cargo_${lib_name})
  target_link_libraries(app PUBLIC ${lib_path})
  set_property(GLOBAL APPEND PROPERTY UASYNCIO_RUST_LIBS ${lib_path})
endfunction()
