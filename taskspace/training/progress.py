"""Progress that suits where it is shown: bars on a terminal, a line per stage in a pipe or a file.

On a terminal (stderr is a TTY) tqdm draws its bars. Anywhere else a bar would redraw thousands of
times into a log, so a stage prints one line when it starts and one when it ends, with its counts
and time, and the step bars of training print nothing.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import SupportsFloat

__all__ = ["ProgressBar", "stage_progress", "on_terminal"]


def on_terminal() -> bool:
    """Whether stderr, where progress goes, is a terminal."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


@contextlib.contextmanager
def stage_progress(what: str, *, total: int, unit: str, enabled: bool) -> Iterator[Callable[..., None]]:
    """Yield ``advance(count=1)``, to call as units of a stage of ``total`` units finish (or are found done)."""
    if not enabled:
        yield lambda count=1: None
        return
    if on_terminal():
        from tqdm.auto import tqdm

        with tqdm(total=total, desc=what, unit=unit, file=sys.stderr) as bar:
            yield lambda count=1: bar.update(count)
        return
    started, done = time.perf_counter(), [0]
    print(f"{what}: {total} {unit}s to run", file=sys.stderr, flush=True)

    def advance(count: int = 1) -> None:
        done[0] += count

    try:
        yield advance
    finally:
        print(f"{what}: {done[0]} of {total} {unit}s done in {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)


class ProgressBar:
    """A step bar with ETA on a terminal (nothing elsewhere); ``update`` per step, ``epoch_done`` per epoch."""

    def __init__(self, description: str, *, enabled: bool) -> None:
        self.description = description
        self.enabled = enabled and on_terminal()
        self.total_steps = 0
        self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()

    def _ensure(self) -> None:
        if self._bar is None and self.enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total_steps or None, desc=self.description, unit="step", leave=False)

    def update(self, **postfix: SupportsFloat) -> None:
        """One step done; ``postfix`` values (a loss on the device, say) are read every 25 steps only,
        since reading a device value waits for the device."""
        self._ensure()
        if self._bar is not None:
            self._bar.update(1)
            if self._bar.n % 25 == 1:
                self._bar.set_postfix({name: f"{float(value):.4f}" for name, value in postfix.items()}, refresh=False)

    def epoch_done(self, epoch: int, metrics: dict[str, float]) -> None:
        self._ensure()
        if self._bar is not None:
            self._bar.set_description(f"{self.description} (epoch {epoch + 1}, val {metrics['validation_score']:.4f})")
