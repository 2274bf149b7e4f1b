# cmake/cargo-crate.cmake: building an application's Rust staticlib crate with cargo, shared by
# the FreeRTOS component (cmake/freertos.cmake, uasyncio_add_rust_library()) and the Zephyr
# module (cmake/zephyr.cmake, uasyncio_cargo_application()). Those two keep their own
# arguments and defaults (where the cargo target directory is, how the Rust target and the
# profile are chosen, what the library links with); the steps below are the same for both:
#
#   uasyncio_find_cargo()
#       sets UASYNCIO_CARGO and UASYNCIO_RUSTC (cache) to cargo and rustc ($CARGO_HOME/bin,
#       ~/.cargo/bin, then PATH).
#   uasyncio_crate_lib_name(<out-var> <crate-dir> <caller>)
#       the file name stem of the crate's library (lib<stem>.a), read with `cargo metadata`
#       (so a [lib] name and workspace members are honoured), '-' turned into '_' as rustc
#       does. Stops the configure step, naming <caller> and the fix, when the crate has no
#       library target or its crate-type lacks "staticlib" (cargo would then build no .a, and
#       the link would only say that lib<stem>.a is missing).
#   uasyncio_check_rust_target(<triple>)
#       stops the configure step with the rustup command when the target's standard library
#       is not installed.
#   uasyncio_cargo_build(<custom-target> CRATE_DIR <dir> LIB_NAME <stem> RUST_TARGET <triple>
#                        TARGET_DIR <dir> PROFILE <dev|release|name> OUT_LIB_PATH <var>
#                        [LTO] [FEATURES <f>...] [CARGO_ENV <VAR=v>...] [CARGO_ARGS <a>...])
#       adds the custom target (built by default) that runs
#         cargo build --manifest-path <dir>/Cargo.toml --target <triple> --profile <profile>
#       with panic = "abort" for that profile (a no_std staticlib cannot unwind) and, with LTO,
#       lto = true, both through cargo's environment overrides (CARGO_ENV comes after them
#       and can override them), and sets <var> to the library it produces:
#       <target dir>/<triple>/<debug|profile>/lib<stem>.a. Cargo runs on every build: it is
#       incremental and decides itself whether anything changed.
#
# SPDX-License-Identifier: MIT OR Apache-2.0

include_guard(GLOBAL)

# The repository's root, for messages (cached: the functions below are called from the
# application's scope, which may not see this file's variables).
get_filename_component(_uasyncio_repo "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(UASYNCIO_REPO_DIR "${_uasyncio_repo}" CACHE INTERNAL "the uasyncio-rs checkout")

macro(uasyncio_find_cargo)
  find_program(UASYNCIO_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin" REQUIRED)
  find_program(UASYNCIO_RUSTC rustc HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin" REQUIRED)
endmacro()

function(uasyncio_crate_lib_name out crate_dir caller)
  uasyncio_find_cargo()
  if(NOT EXISTS "${crate_dir}/Cargo.toml")
    message(FATAL_ERROR "${caller}: no Cargo.toml in ${crate_dir}")
  endif()
  execute_process(
    COMMAND "${UASYNCIO_CARGO}" metadata --no-deps --format-version 1 --offline
      --manifest-path "${crate_dir}/Cargo.toml"
    OUTPUT_VARIABLE metadata ERROR_VARIABLE metadata_err RESULT_VARIABLE metadata_rc)
  if(NOT metadata_rc EQUAL 0)
    set(hint "")
    if(metadata_err MATCHES "failed to load manifest for dependency `([^`]*)`")
      # A path dependency to a folder without a Cargo.toml: most often a crate copied from a
      # sample or the template, whose relative `path` pointed into this repository.
      string(CONCAT hint "\nIts dependency `${CMAKE_MATCH_1}` names no crate at its `path`. If this "
        "crate was copied from a sample or a template, set that path to the `component/` folder "
        "of your uasyncio-rs checkout, in ${crate_dir}/Cargo.toml:\n"
        "  path = \"${UASYNCIO_REPO_DIR}/component\"\n")
    endif()
    message(FATAL_ERROR "${caller}: `cargo metadata` failed for "
      "${crate_dir}/Cargo.toml:\n${metadata_err}${hint}")
  endif()
  # In a Cargo workspace the metadata lists every member: take the crate's own package.
  file(REAL_PATH "${crate_dir}/Cargo.toml" manifest)
  string(JSON n_packages LENGTH "${metadata}" packages)
  math(EXPR last_package "${n_packages} - 1")
  set(package 0)
  foreach(p RANGE ${last_package})
    string(JSON path GET "${metadata}" packages ${p} manifest_path)
    file(REAL_PATH "${path}" path)
    if(path STREQUAL manifest)
      set(package ${p})
    endif()
  endforeach()
  string(JSON n_targets LENGTH "${metadata}" packages ${package} targets)
  set(lib_name)
  set(lib_kinds)
  math(EXPR last "${n_targets} - 1")
  foreach(i RANGE ${last})
    string(JSON kinds GET "${metadata}" packages ${package} targets ${i} kind)
    if(kinds MATCHES "\"(lib|staticlib|rlib|cdylib|dylib)\"")
      string(JSON lib_name GET "${metadata}" packages ${package} targets ${i} name)
      set(lib_kinds "${kinds}")
    endif()
  endforeach()
  if(NOT lib_name)
    message(FATAL_ERROR "${caller}: ${crate_dir}/Cargo.toml has no library "
      "target. The Rust part of the firmware is a library: add src/lib.rs and\n"
      "  [lib]\n  crate-type = [\"staticlib\"]")
  endif()
  string(REPLACE "-" "_" lib_name "${lib_name}")
  if(NOT lib_kinds MATCHES "\"staticlib\"")
    message(FATAL_ERROR "${caller}: the library of ${crate_dir}/Cargo.toml is "
      "${lib_kinds}, not a staticlib, so cargo would build no lib${lib_name}.a to link. Add to "
      "that Cargo.toml:\n  [lib]\n  crate-type = [\"staticlib\"]")
  endif()
  set(${out} "${lib_name}" PARENT_SCOPE)
endfunction()

function(uasyncio_check_rust_target triple)
  uasyncio_find_cargo()
  execute_process(COMMAND "${UASYNCIO_RUSTC}" --print sysroot
    OUTPUT_VARIABLE rust_sysroot OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT EXISTS "${rust_sysroot}/lib/rustlib/${triple}")
    message(FATAL_ERROR
      "uasyncio: the Rust standard library for ${triple} is not installed; "
      "run: rustup target add ${triple}")
  endif()
endfunction()

function(uasyncio_cargo_build custom_target)
  cmake_parse_arguments(ARG "LTO"
    "CRATE_DIR;LIB_NAME;RUST_TARGET;TARGET_DIR;PROFILE;OUT_LIB_PATH"
    "FEATURES;CARGO_ENV;CARGO_ARGS" ${ARGN})
  foreach(required CRATE_DIR LIB_NAME RUST_TARGET TARGET_DIR PROFILE OUT_LIB_PATH)
    if(NOT ARG_${required})
      message(FATAL_ERROR "uasyncio_cargo_build(${custom_target}): ${required} is required")
    endif()
  endforeach()
  uasyncio_find_cargo()
  if(ARG_PROFILE STREQUAL "dev")
    set(profile_dir debug)
  else()
    set(profile_dir "${ARG_PROFILE}")
  endif()
  set(lib_path "${ARG_TARGET_DIR}/${ARG_RUST_TARGET}/${profile_dir}/lib${ARG_LIB_NAME}.a")

  set(feature_args)
  if(ARG_FEATURES)
    list(JOIN ARG_FEATURES "," features)
    set(feature_args --features "${features}")
  endif()
  string(TOUPPER "${ARG_PROFILE}" profile_env)
  string(REPLACE "-" "_" profile_env "${profile_env}")
  set(profile_args CARGO_PROFILE_${profile_env}_PANIC=abort)
  if(ARG_LTO)
    list(APPEND profile_args CARGO_PROFILE_${profile_env}_LTO=true)
  endif()

  add_custom_target(${custom_target} ALL
    COMMAND "${CMAKE_COMMAND}" -E env
      "CARGO_TARGET_DIR=${ARG_TARGET_DIR}" ${profile_args} ${ARG_CARGO_ENV}
      "${UASYNCIO_CARGO}" build
        --manifest-path "${ARG_CRATE_DIR}/Cargo.toml"
        --target "${ARG_RUST_TARGET}"
        --profile "${ARG_PROFILE}"
        ${feature_args} ${ARG_CARGO_ARGS}
    BYPRODUCTS "${lib_path}"
    WORKING_DIRECTORY "${ARG_CRATE_DIR}"
    COMMENT "cargo: building ${ARG_LIB_NAME} for ${ARG_RUST_TARGET} (${ARG_PROFILE})"
    USES_TERMINAL
    VERBATIM)
  set(${ARG_OUT_LIB_PATH} "${lib_path}" PARENT_SCOPE)
endfunction()
