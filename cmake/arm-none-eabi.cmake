# CMake toolchain file: Debian's arm-none-eabi-gcc for a Cortex-M core (default cortex-m3).
#   cmake -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake [-DUASYNCIO_ARM_CPU=cortex-m4] ...
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)
set(CMAKE_SIZE arm-none-eabi-size)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(UASYNCIO_ARM_CPU cortex-m3 CACHE STRING "-mcpu for the C side (the Rust target follows it)")
set(CMAKE_C_FLAGS_INIT "-mcpu=${UASYNCIO_ARM_CPU} -mthumb -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "-mcpu=${UASYNCIO_ARM_CPU} -mthumb")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-mcpu=${UASYNCIO_ARM_CPU} -mthumb -Wl,--gc-sections")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
