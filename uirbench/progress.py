"""Progress of long work, on stderr: a live bar on a terminal, a plain line every few seconds otherwise.

Logs and CI (stderr not a terminal) get lines such as
``evaluate nafnet: 40/120 img (33%), 2.10 img/s, ETA 38 s`` after the first unit of work (the first
estimate of the time left), then at most every ``every`` seconds, and once at the end; never
carriage-return bars, so a long job is never silent.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """``with Progress(total, unit, desc) as bar: bar.update(n)``; ``initial`` counts work already done."""

    def __init__(self, total: int, unit: str, desc: str, initial: int = 0, every: float = 5.0, enabled: bool = True) -> None:
        self.total, self.unit, self.desc, self.every = total, unit, desc, every
        self.done = initial
        self._initial = initial
        self._enabled = enabled
        self._start = self._last = time.perf_counter()
        self._first = True
        self._postfix: dict[str, str] = {}
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit=unit, desc=desc, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.perf_counter()
        if self._enabled and (self._first or now - self._last >= self.every):
            self._first, self._last = False, now
            print(self.line(now), file=sys.stderr, flush=True)

    def postfix(self, **values: str) -> None:
        """Values shown after the rate (e.g. ``loss="0.0412"``), kept until replaced."""
        self._postfix = values
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def line(self, now: float | None = None) -> str:
        """``desc: done/total unit (pct), rate unit/s, ETA`` (or the elapsed time once finished)."""
        elapsed = (now if now is not None else time.perf_counter()) - self._start
        rate = (self.done - self._initial) / elapsed if elapsed > 0 else 0.0
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = self.total - self.done
        tail = f"ETA {_duration(left / rate)}" if left > 0 and rate > 0 else f"{_duration(elapsed)} elapsed"
        extra = "".join(f", {k} {v}" for k, v in self._postfix.items())
        return f"{self.desc}: {self.done}/{self.total} {self.unit}{pct}, {rate:.2f} {self.unit}/s{extra}, {tail}"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close(finished=kind is None)

    def close(self, finished: bool = True) -> None:
        """End the bar; a finished run's last line gives the totals (an interrupted one prints nothing more)."""
        if self._bar is not None:
            self._bar.close()
        elif self._enabled and finished and self.done > self._initial:
            print(self.line(), file=sys.stderr, flush=True)
