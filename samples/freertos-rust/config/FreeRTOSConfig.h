/*
 * FreeRTOSConfig.h of the freertos-rust sample on QEMU's mps2-an385 board (Cortex-M3,
 * 25 MHz, GCC_ARM_CM3 port), built by freertos-cargo-build.
 *
 * Settings that uasyncio needs are marked [uasyncio]; ports/freertos/README.md lists them.
 */
#ifndef FREERTOS_CONFIG_H
#define FREERTOS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define configCPU_CLOCK_HZ                         ( ( uint32_t ) 25000000 )
#define configTICK_RATE_HZ                         1000   /* [uasyncio] SysTick gives us µs inside a tick */
#define configUSE_PREEMPTION                       1
#define configUSE_TIME_SLICING                     1
#define configUSE_PORT_OPTIMISED_TASK_SELECTION    1
#define configUSE_TICKLESS_IDLE                    0
#define configMAX_PRIORITIES                       8
#define configMINIMAL_STACK_SIZE                   ( ( uint16_t ) 256 )
#define configMAX_TASK_NAME_LEN                    16
#define configTICK_TYPE_WIDTH_IN_BITS              TICK_TYPE_WIDTH_32_BITS
#define configIDLE_SHOULD_YIELD                    1

#define configUSE_TASK_NOTIFICATIONS               1      /* [uasyncio] loop wake-up */
#define configTASK_NOTIFICATION_ARRAY_ENTRIES      2      /* [uasyncio] index 1; freertos-rust uses 0 */
#define configUSE_MUTEXES                          1
#define configUSE_RECURSIVE_MUTEXES                0
#define configUSE_COUNTING_SEMAPHORES              1
#define configQUEUE_REGISTRY_SIZE                  0
#define configUSE_QUEUE_SETS                       0

#define configSUPPORT_DYNAMIC_ALLOCATION           1      /* [uasyncio] pvPortMalloc */
#define configSUPPORT_STATIC_ALLOCATION            0
#define configTOTAL_HEAP_SIZE                      ( ( size_t ) ( 256 * 1024 ) )

/* No idle hook: the idle task spins, which keeps -icount timing deterministic (a WFI would
 * make QEMU's virtual clock jump). */
#define configUSE_IDLE_HOOK                        0
#define configUSE_TICK_HOOK                        0
#define configUSE_MALLOC_FAILED_HOOK               1
#define configCHECK_FOR_STACK_OVERFLOW             2
#define configUSE_DAEMON_TASK_STARTUP_HOOK         0

#define configUSE_TIMERS                           1      /* freertos-rust's Timer */
#define configTIMER_TASK_PRIORITY                  ( configMAX_PRIORITIES - 1 )
#define configTIMER_QUEUE_LENGTH                   4
#define configTIMER_TASK_STACK_DEPTH               256
#define configUSE_TRACE_FACILITY                   0
#define configGENERATE_RUN_TIME_STATS              0
#define configUSE_STATS_FORMATTING_FUNCTIONS       0
#define configRECORD_STACK_HIGH_ADDRESS            1

#define INCLUDE_vTaskPrioritySet                   1
#define INCLUDE_uxTaskPriorityGet                  1
#define INCLUDE_vTaskDelete                        1      /* [uasyncio] */
#define INCLUDE_vTaskSuspend                       1      /* [uasyncio] */
#define INCLUDE_xTaskDelayUntil                    1
#define INCLUDE_vTaskDelay                         1
#define INCLUDE_xTaskGetSchedulerState             1      /* [uasyncio] */
#define INCLUDE_xTaskGetCurrentTaskHandle          1      /* [uasyncio] */
#define INCLUDE_uxTaskGetStackHighWaterMark        1

/* Interrupt priorities (8 bits as QEMU models them; only the top bits matter on silicon).
 * Interrupts that call FromISR APIs (uasyncio_flag_set_from_isr included) must be at
 * configMAX_SYSCALL_INTERRUPT_PRIORITY or numerically above: the timer0 IRQ uses 0xC0. */
#define configKERNEL_INTERRUPT_PRIORITY            0xFF
#define configMAX_SYSCALL_INTERRUPT_PRIORITY       0xA0

/* The vector table points straight at the port's handlers (V11 checks this): cortex-m-rt's
 * table names them SVCall, PendSV and SysTick. */
#define vPortSVCHandler        SVCall
#define xPortPendSVHandler     PendSV
#define xPortSysTickHandler    SysTick
#define configCHECK_HANDLER_INSTALLATION           1

/* freertos-rust defines vAssertCalled (it panics with the file and line). */
extern void vAssertCalled( const char * pcFile, unsigned long ulLine );
#define configASSERT( x )    if( ( x ) == 0 ) vAssertCalled( __FILE__, __LINE__ )

#endif /* FREERTOS_CONFIG_H */
