# uasyncio as a FreeRTOS component (CMake).
#
# A FreeRTOS application that already builds the kernel with FreeRTOS-Kernel's CMakeLists
# (targets `freertos_kernel` and `freertos_config`, its own FreeRTOSConfig.h) adds uasyncio
# next to it:
#
#   add_subdirectory(${FREERTOS_KERNEL_PATH} freertos_kernel)   # the application's kernel
#   add_subdirectory(path/to/uasyncio-rs uasyncio)               # this component
#   uasyncio_add_rust_library(app_rust CRATE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/rust)
#   target_link_libraries(app PRIVATE uasyncio app_rust)
#
# (The repository's top-level CMakeLists.txt includes this file outside a Zephyr build; an
# application may also include() it directly.)
#
# What it defines:
#   uasyncio_freertos_port  STATIC  ports/freertos/uasyncio_freertos_port.c, compiled against
#                                   the application's freertos_kernel (so its FreeRTOSConfig.h)
#   uasyncio                INTERFACE  the C API header (component/include/uasyncio.h) + the port
#   uasyncio_add_rust_library(<name> CRATE_DIR <dir> [LIB_NAME <n>] [RUST_TARGET <t>]
#                             [PROFILE <p>] [FEATURES <f>...] [CARGO_ENV <VAR=v>...])
#       builds the application's Rust staticlib crate (which depends on `uasyncio` with the
#       `freertos` feature) with cargo for the right target and exposes it as the IMPORTED
#       static library <name>, linked with the port (they reference each other).
#
# Required FreeRTOSConfig.h settings (the port's C file checks them with #error):
#   configSUPPORT_DYNAMIC_ALLOCATION 1, configUSE_TASK_NOTIFICATIONS 1,
#   configTASK_NOTIFICATION_ARRAY_ENTRIES >= 2 (recommended: uasyncio uses the last index),
#   INCLUDE_vTaskSuspend 1, INCLUDE_vTaskDelete 1, INCLUDE_xTaskGetSchedulerState 1,
#   INCLUDE_xTaskGetCurrentTaskHandle 1, a 32- or 64-bit TickType_t; a configASSERT;
#   on Cortex-M, interrupts that call uasyncio_*_from_isr at or below
#   configMAX_SYSCALL_INTERRUPT_PRIORITY (numerically >=). See ports/freertos/README.md.

include_guard(GLOBAL)

get_filename_component(UASYNCIO_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)

if(NOT TARGET freertos_kernel)
    message(FATAL_ERROR
        "uasyncio (FreeRTOS component): add the FreeRTOS kernel first, e.g.\n"
        "  add_library(freertos_config INTERFACE)\n"
        "  target_include_directories(freertos_config SYSTEM INTERFACE <dir of FreeRTOSConfig.h>)\n"
        "  set(FREERTOS_PORT GCC_ARM_CM3 CACHE STRING \"\")\n"
        "  set(FREERTOS_HEAP 4 CACHE STRING \"\")\n"
        "  add_subdirectory(<FreeRTOS-Kernel> freertos_kernel)")
endif()

add_library(uasyncio_freertos_port STATIC "${UASYNCIO_ROOT}/ports/freertos/uasyncio_freertos_port.c")
target_include_directories(uasyncio_freertos_port PUBLIC "${UASYNCIO_ROOT}/ports/freertos")
target_link_libraries(uasyncio_freertos_port PUBLIC freertos_kernel)

add_library(uasyncio INTERFACE)
target_include_directories(uasyncio INTERFACE "${UASYNCIO_ROOT}/component/include")
target_link_libraries(uasyncio INTERFACE uasyncio_freertos_port)

# The Rust target that matches the C compiler's core.
function(uasyncio_detect_rust_target out)
    if(DEFINED UASYNCIO_RUST_TARGET AND NOT UASYNCIO_RUST_TARGET STREQUAL "")
        set(${out} "${UASYNCIO_RUST_TARGET}" PARENT_SCOPE)
        return()
    endif()
    # The core is named by -mcpu: in the C flags, or in add_compile_options() (a toolchain file
    # or the firmware's own CMakeLists), which this directory inherits.
    get_directory_property(dir_options COMPILE_OPTIONS)
    string(REPLACE ";" " " dir_options "${dir_options}")
    set(flags "${CMAKE_C_FLAGS} ${CMAKE_C_FLAGS_INIT} ${dir_options}")
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(arm|ARM|cortex)")
        if(flags MATCHES "cortex-m0|cortex-m1")
            set(t thumbv6m-none-eabi)
        elseif(flags MATCHES "cortex-m3")
            set(t thumbv7m-none-eabi)
        elseif(flags MATCHES "cortex-m(4|7)")
            if(flags MATCHES "-mfloat-abi=hard")
                set(t thumbv7em-none-eabihf)
            else()
                set(t thumbv7em-none-eabi)
            endif()
        elseif(flags MATCHES "cortex-m33|cortex-m55")
            if(flags MATCHES "-mfloat-abi=hard")
                set(t thumbv8m.main-none-eabihf)
            else()
                set(t thumbv8m.main-none-eabi)
            endif()
        else()
            message(FATAL_ERROR "uasyncio: cannot tell the Rust target from the C flags (looked for -mcpu=cortex-m0/m3/m4/m7/m33/m55 in CMAKE_C_FLAGS, CMAKE_C_FLAGS_INIT and add_compile_options); set UASYNCIO_RUST_TARGET, e.g. -DUASYNCIO_RUST_TARGET=thumbv7m-none-eabi for a Cortex-M3, thumbv7em-none-eabihf for a Cortex-M4F/M7 with -mfloat-abi=hard")
        endif()
    elseif(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
        set(t x86_64-unknown-linux-gnu)
    elseif(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
        set(t aarch64-unknown-linux-gnu)
    else()
        message(FATAL_ERROR "uasyncio: unknown Rust target for ${CMAKE_SYSTEM_NAME}/${CMAKE_SYSTEM_PROCESSOR}; set UASYNCIO_RUST_TARGET")
    endif()
    set(${out} "${t}" PARENT_SCOPE)
endfunction()

include("${CMAKE_CURRENT_LIST_DIR}/cargo-crate.cmake")

function(uasyncio_add_rust_library name)
    cmake_parse_arguments(ARG "" "CRATE_DIR;LIB_NAME;RUST_TARGET;PROFILE" "FEATURES;CARGO_ENV" ${ARGN})
    if(NOT ARG_CRATE_DIR)
        message(FATAL_ERROR "uasyncio_add_rust_library(${name}): CRATE_DIR is required")
    endif()
    get_filename_component(crate_dir "${ARG_CRATE_DIR}" ABSOLUTE)
    # The library's file name (checked to be a staticlib) from `cargo metadata`; see
    # cmake/cargo-crate.cmake.
    uasyncio_crate_lib_name(lib_name "${crate_dir}" "uasyncio_add_rust_library(${name})")
    if(ARG_LIB_NAME)
        set(lib_name "${ARG_LIB_NAME}")
    endif()
    if(ARG_RUST_TARGET)
        set(target "${ARG_RUST_TARGET}")
    else()
        uasyncio_detect_rust_target(target)
    endif()
    uasyncio_check_rust_target(${target})
    if(NOT ARG_PROFILE)
        set(ARG_PROFILE release)
    endif()

    # A no_std staticlib cannot unwind: panic = "abort" for the profile we build. On a hosted
    # target (the POSIX simulator) core's precompiled unwinding glue still asks for
    # `rust_eh_personality`, which only LTO removes: lto = true too. Set through cargo's
    # environment overrides, so a crate whose Cargo.toml lacks them still links; ARG_CARGO_ENV
    # comes after and can override them.
    uasyncio_cargo_build(${name}_cargo LTO
        CRATE_DIR "${crate_dir}"
        LIB_NAME "${lib_name}"
        RUST_TARGET "${target}"
        TARGET_DIR "${CMAKE_CURRENT_BINARY_DIR}/${name}-cargo"
        PROFILE "${ARG_PROFILE}"
        FEATURES ${ARG_FEATURES}
        CARGO_ENV ${ARG_CARGO_ENV}
        OUT_LIB_PATH lib_path)

    add_library(${name} STATIC IMPORTED GLOBAL)
    set_target_properties(${name} PROPERTIES
        IMPORTED_LOCATION "${lib_path}"
        # The Rust library calls the port's C functions and the port calls back into Rust
        # (uasyncio_rtos_thread_main): let the linker see both twice.
        IMPORTED_LINK_INTERFACE_MULTIPLICITY 3)
    target_link_libraries(${name} INTERFACE uasyncio_freertos_port freertos_kernel)
    add_dependencies(${name} ${name}_cargo)
endfunction()
