"""Ending a run well: a time budget that the learning-rate schedule is fitted to, and a clean
stop on Ctrl-C or SIGTERM.

With ``train.time_limit`` (``--time-limit 30m``), the constant-then-linear-decay schedule of the
papers is stretched or cut to end at the limit: after a few steps the step rate is measured,
the steps the remaining time holds are estimated (corrected at every step as the rate moves),
and training stops with a final checkpoint when the time is up, leaving room for that
checkpoint. The limit counts all of a run's sessions: a resumed run continues the same
schedule with the time that is left. With `i2i train`, the limit counts from the command's
start: importing torch, data loading, sample grids, evaluations and checkpoints count too;
only starting Python and the interpreter's exit do not.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from types import FrameType
from typing import Any

WARMUP = 3  # steps before the rate is measured: the first ones allocate, cache and compile
WINDOW = 50  # steps the rate is measured over


def lr_fraction(progress: float, constant_share: float) -> float:
    """The paper's schedule as a function of the share of training done: constant for the
    first ``constant_share``, then linear to 0 at the end."""
    if progress <= constant_share:
        return 1.0
    return max(0.0, 1.0 - (progress - constant_share) / max(1e-9, 1.0 - constant_share))


def clock(seconds: float) -> str:
    """Seconds as a progress bar shows them: ``42s`` under two minutes, else ``12min``."""
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}min"


class Budget:
    """A run's time limit (s), all sessions together: how many steps it holds, and when to
    stop. ``spent`` is the time earlier sessions used; ``started`` when this one began
    (``time.perf_counter``)."""

    def __init__(self, limit: float, spent: float, started: float) -> None:
        self.limit, self.spent, self.started = limit, spent, started
        # s kept for the final checkpoint and pictures, until a checkpoint's time is measured
        self.reserve = min(5.0, 0.02 * limit)
        self.times: deque[tuple[float, int]] = deque(maxlen=WINDOW)
        self.steps_seen = 0

    def elapsed(self) -> float:
        return self.spent + time.perf_counter() - self.started

    def left(self) -> float:
        return self.limit - self.elapsed()

    def observe(self, step: int) -> None:
        """Called after each step, with the step count."""
        self.steps_seen += 1
        if self.steps_seen > WARMUP:
            self.times.append((time.perf_counter(), step))

    def seconds_per_step(self) -> float | None:
        if len(self.times) < 2:
            return None
        (t0, s0), (t1, s1) = self.times[0], self.times[-1]
        return (t1 - t0) / max(1, s1 - s0)

    def total_steps(self, step: int, most: int) -> int:
        """The step the schedule ends at: where the time left runs out at the measured rate,
        at most ``most`` (the epochs' or --max-steps' own end)."""
        rate = self.seconds_per_step()
        if rate is None:
            return most
        return max(step + 1, min(most, step + int((self.left() - self.reserve) / rate)))

    def exhausted(self) -> bool:
        """Whether the next step would run into the time kept for the final checkpoint."""
        rate = self.seconds_per_step() or 0.0
        return self.left() - self.reserve < rate

    def measured_save(self, seconds: float) -> None:
        """A checkpoint took ``seconds``: keep room for one more, and the pictures."""
        self.reserve = max(self.reserve, 2 * seconds)


class StopSignals:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a request to stop after the current step (the
    loop then writes a checkpoint and returns); a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested: str | None = None  # the signal's name, once one came
        self.previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: at once
        self.requested = name
        print(
            f"\n{name}: stopping after this step with a checkpoint (Ctrl-C again stops at once)",
            flush=True,
        )

    def install(self) -> None:
        """Handle the signals from now on (main thread only: elsewhere Python cannot)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handle)

    def uninstall(self) -> None:
        """Give the signals back to their earlier handlers."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}
