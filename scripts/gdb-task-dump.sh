#!/usr/bin/env bash
# The task dump from a debugger: runs component/examples/task_dump under gdb, stops in
# `checkpoint` (on the loop's thread, inside a task) and calls the C API's
# `uasyncio_log_tasks()` as a developer would type it; checks that the dump names every task
# with its state and what it waits on. Needs gdb (skips with a message without it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v gdb >/dev/null; then
    echo "gdb-task-dump: skipped (gdb is not installed: apt-get install gdb)"
    exit 0
fi
cargo build -q -p uasyncio --features ffi --example task_dump
bin="${CARGO_TARGET_DIR:-target}/debug/examples/task_dump"
out="$(gdb -q -batch -nx \
    -ex 'set debuginfod enabled off' \
    -ex 'break checkpoint' -ex run \
    -ex 'set language c' -ex 'call (int) uasyncio_log_tasks()' \
    -ex continue "$bin" 2>&1)"
printf '%s\n' "$out" | grep -E "^(uasyncio:| +[0-9]+ '|\\\$1|\\[Inferior)" || true
fail=0
# Lines from the gdb call start with the text; the program's own copy starts with "self: ".
# The call's return value (`$1 = 0`) is not required: on some CPUs gdb 13 cannot restore the
# extended register state after an inferior call ("Couldn't write extended state status"),
# and prints no value although the call ran; the program must still go on and exit normally.
for want in "^uasyncio: 3 unfinished task\(s\)" "^ +[0-9]+ 'main' running" \
    "^ +[0-9]+ 'modem rx' waiting on Event.wait" "^ +[0-9]+ 'signal poller' waiting on sleep" \
    '^\[Inferior 1 \(process [0-9]+\) exited normally\]'; do
    if ! grep -qE -- "$want" <<<"$out"; then
        echo "gdb-task-dump: missing: $want"
        fail=1
    fi
done
[ "$fail" -eq 0 ] && echo "gdb-task-dump: ok (uasyncio_log_tasks() called from gdb at a breakpoint)"
exit "$fail"
