"""The demo job kind: waits ``seconds`` (abortable), then returns ``message``."""

from __future__ import annotations

import time

from aiouws.jobapi import JobCancelled, JobContext
from aiouws.kinds import JobKind, ParameterSpec

__all__ = ["DEMO_KIND", "run"]

DEMO_KIND = JobKind(
    name="demo",
    entry_point="aiouws.demo:run",
    parameters=(
        ParameterSpec(
            name="seconds",
            type="float",
            default="1",
            description="How long the job works, in seconds.",
        ),
        ParameterSpec(
            name="message", default="hello", description="The text of the result."
        ),
    ),
    description="Waits SECONDS seconds, reporting progress, then returns MESSAGE "
    "as a text/plain result called 'result'.",
)

_STEP = 0.1
_NOTE_EVERY = 1.0


def run(ctx: JobContext) -> None:
    """Wait in small steps, noting progress and honouring cancellation."""
    seconds = max(0.0, float(ctx.parameters.get("seconds", "1")))
    message = ctx.parameters.get("message", "hello")
    deadline = time.monotonic() + seconds
    ctx.note("progress", "0%")
    next_note = time.monotonic() + _NOTE_EVERY
    while (left := deadline - time.monotonic()) > 0:
        if ctx.cancelled.wait(min(_STEP, left)):
            raise JobCancelled(ctx.job_id)
        if time.monotonic() >= next_note:
            next_note += _NOTE_EVERY
            ctx.note("progress", f"{1 - max(0.0, left) / seconds:.0%}")
    ctx.note("progress", "100%")
    ctx.add_result(
        "result", message.encode() + b"\n", "text/plain", file_name="result.txt"
    )
