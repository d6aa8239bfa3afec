"""A job kind for supervisor tests, driven by its parameters.

ACTION is one of ``sleep`` (SECONDS, honouring cancellation), ``fail`` (raise),
``exit`` (``os._exit(3)``), ``sigkill`` (SIGKILL itself), ``segfault`` (ctypes),
``results`` (write K results), ``ignore_cancel`` (a loop deaf to
``ctx.cancelled``), ``hog`` (keep MB megabytes for the runner's life). With LOG
set, ``start <job_id>`` and ``end <job_id>`` lines are appended to that file, so
tests can see order and overlap without clocks.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time

from aiouws.jobapi import JobCancelled, JobContext

#: What ``hog`` jobs keep: the runner's resident memory stays grown.
_HOARD: list[bytes] = []


def _log(ctx: JobContext, what: str) -> None:
    path = ctx.parameters.get("log")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{what} {ctx.job_id} {os.getpid()}\n".encode())
        finally:
            os.close(fd)


def run(ctx: JobContext) -> None:
    _log(ctx, "start")
    action = ctx.parameters.get("action", "sleep")
    seconds = float(ctx.parameters.get("seconds", "0"))
    ctx.note("action", action)
    if action == "sleep":
        if ctx.cancelled.wait(seconds):
            raise JobCancelled(ctx.job_id)
    elif action == "fail":
        raise RuntimeError(ctx.parameters.get("message", "scripted failure"))
    elif action == "fail_nul":
        ctx.note("bad\x00note", "nul \x00 here")
        raise RuntimeError("message with a \x00 NUL")
    elif action == "exit":
        os._exit(3)
    elif action == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "segfault":
        ctypes.string_at(0)
    elif action == "results":
        for i in range(int(ctx.parameters.get("k", "1"))):
            ctx.add_result(
                f"r{i}", f"result {i}\n".encode(), "text/plain", file_name=f"r{i}.txt"
            )
    elif action == "hog":
        _HOARD.append(os.urandom(int(ctx.parameters.get("mb", "64")) * 1024 * 1024))
    elif action == "ignore_cancel":
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)  # deliberately deaf to ctx.cancelled
    _log(ctx, "end")


async def run_async(ctx: JobContext) -> None:
    _log(ctx, "start")
    seconds = float(ctx.parameters.get("seconds", "0"))
    ctx.note("mode", "async")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _log(ctx, "cancelled")
        raise
    with ctx.open_result("result", "text/plain", "result.txt") as out:
        out.write(b"async done\n")
    _log(ctx, "end")
