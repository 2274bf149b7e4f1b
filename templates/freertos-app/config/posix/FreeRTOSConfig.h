/*
 * FreeRTOSConfig.h for the FreeRTOS POSIX port (GCC_POSIX, Linux host): the template
 * application's own configuration (yours to change).
 *
 * Settings that uasyncio needs are marked [uasyncio]; ports/freertos/README.md lists them.
 */
#ifndef FREERTOS_CONFIG_H
#define FREERTOS_CONFIG_H

#include <stddef.h>

/* Scheduler */
#define configUSE_PREEMPTION                       1
#define configUSE_TIME_SLICING                     1
#define configUSE_PORT_OPTIMISED_TASK_SELECTION    0
#define configUSE_TICKLESS_IDLE                    0
#define configTICK_RATE_HZ                         1000   /* [uasyncio] clock resolution on POSIX */
#define configMAX_PRIORITIES                       8
#define configMINIMAL_STACK_SIZE                   ( ( unsigned short ) 1024 )
#define configMAX_TASK_NAME_LEN                    16
#define configTICK_TYPE_WIDTH_IN_BITS              TICK_TYPE_WIDTH_64_BITS
#define configIDLE_SHOULD_YIELD                    1

/* Notifications and synchronisation */
#define configUSE_TASK_NOTIFICATIONS               1      /* [uasyncio] loop wake-up */
#define configTASK_NOTIFICATION_ARRAY_ENTRIES      2      /* [uasyncio] uses the last index */
#define configUSE_MUTEXES                          1
#define configUSE_RECURSIVE_MUTEXES                0
#define configUSE_COUNTING_SEMAPHORES              1
#define configQUEUE_REGISTRY_SIZE                  0
#define configUSE_QUEUE_SETS                       0

/* Memory: heap_4 inside a static array. */
#define configSUPPORT_DYNAMIC_ALLOCATION           1      /* [uasyncio] pvPortMalloc */
#define configSUPPORT_STATIC_ALLOCATION            0
#define configTOTAL_HEAP_SIZE                      ( ( size_t ) ( 1024 * 1024 ) )
#define configAPPLICATION_ALLOCATED_HEAP           0

/* Hooks */
#define configUSE_IDLE_HOOK                        1      /* usleep(): the idle task must not spin a core */
#define configUSE_TICK_HOOK                        1      /* the only ISR context on this port */
#define configUSE_MALLOC_FAILED_HOOK               1
#define configCHECK_FOR_STACK_OVERFLOW             0      /* tasks run on pthread stacks here */
#define configUSE_DAEMON_TASK_STARTUP_HOOK         0

/* Software timers (unused by uasyncio; the POSIX port includes timers.h). */
#define configUSE_TIMERS                           1
#define configTIMER_TASK_PRIORITY                  ( configMAX_PRIORITIES - 1 )
#define configTIMER_QUEUE_LENGTH                   8
#define configTIMER_TASK_STACK_DEPTH               configMINIMAL_STACK_SIZE

/* Statistics */
#define configUSE_TRACE_FACILITY                   0
#define configGENERATE_RUN_TIME_STATS              0
#define configUSE_STATS_FORMATTING_FUNCTIONS       0
#define configRECORD_STACK_HIGH_ADDRESS            1

/* API functions */
#define INCLUDE_vTaskPrioritySet                   1
#define INCLUDE_uxTaskPriorityGet                  1
#define INCLUDE_vTaskDelete                        1      /* [uasyncio] spawn_thread bodies end */
#define INCLUDE_vTaskSuspend                       1      /* [uasyncio] portMAX_DELAY = forever */
#define INCLUDE_xTaskDelayUntil                    1
#define INCLUDE_vTaskDelay                         1
#define INCLUDE_xTaskGetSchedulerState             1      /* [uasyncio] */
#define INCLUDE_xTaskGetCurrentTaskHandle          1      /* [uasyncio] current_thread_id */
#define INCLUDE_uxTaskGetStackHighWaterMark        1
#define INCLUDE_xTaskGetIdleTaskHandle             0
#define INCLUDE_eTaskGetState                      0
#define INCLUDE_xTimerPendFunctionCall             0

/* Assertions: print file:line and exit (vAssertCalled in board-posix.c). */
extern void vAssertCalled( const char * pcFile, unsigned long ulLine );
#define configASSERT( x )    if( ( x ) == 0 ) vAssertCalled( __FILE__, __LINE__ )

#endif /* FREERTOS_CONFIG_H */
