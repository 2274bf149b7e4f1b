# Finds the FreeRTOS-Kernel V11.2.0 sources that the crates.io package `freertos-next` 0.12.0
# carries, for this repository's own firmware and tests (an application brings its own
# kernel). Sets FREERTOS_KERNEL_PATH unless the caller already did.
#
# The package is the dependency of tests/freertos-posix; `cargo metadata` downloads it if
# needed and reports where cargo unpacked it. Nothing is copied into the source tree.
include_guard(GLOBAL)

if(NOT FREERTOS_KERNEL_PATH)
    find_program(UASYNCIO_CARGO cargo HINTS "$ENV{HOME}/.cargo/bin" REQUIRED)
    get_filename_component(_uasyncio_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
    execute_process(
        COMMAND "${UASYNCIO_CARGO}" metadata --format-version 1 --locked
                --manifest-path "${_uasyncio_root}/tests/freertos-posix/Cargo.toml"
        OUTPUT_VARIABLE _meta
        RESULT_VARIABLE _rc
        ERROR_VARIABLE _err
        TIMEOUT 600)
    if(NOT _rc EQUAL 0)
        message(FATAL_ERROR "cargo metadata failed (${_rc}): ${_err}")
    endif()
    string(JSON _count LENGTH "${_meta}" packages)
    math(EXPR _last "${_count} - 1")
    foreach(_i RANGE ${_last})
        string(JSON _name GET "${_meta}" packages ${_i} name)
        if(_name STREQUAL "freertos-next")
            string(JSON _manifest GET "${_meta}" packages ${_i} manifest_path)
            get_filename_component(_dir "${_manifest}" DIRECTORY)
            set(FREERTOS_KERNEL_PATH "${_dir}/FreeRTOS-Kernel")
            break()
        endif()
    endforeach()
    if(NOT EXISTS "${FREERTOS_KERNEL_PATH}/tasks.c")
        message(FATAL_ERROR "FreeRTOS kernel sources not found through freertos-next (got '${FREERTOS_KERNEL_PATH}')")
    endif()
    message(STATUS "FreeRTOS kernel (freertos-next crate): ${FREERTOS_KERNEL_PATH}")
endif()
