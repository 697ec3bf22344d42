"""Progress bars (tqdm on stderr) that cost nothing when turned off."""

from __future__ import annotations

from types import TracebackType

__all__ = ["ProgressBar"]


class ProgressBar:
    """A step bar with ETA; ``update`` per step, ``epoch_done`` per epoch."""

    def __init__(self, description: str, *, enabled: bool) -> None:
        self.description = description
        self.enabled = enabled
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

    def update(self, **postfix: float) -> None:
        self._ensure()
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix({name: f"{value:.4f}" for name, value in postfix.items()}, refresh=False)

    def epoch_done(self, epoch: int, metrics: dict[str, float]) -> None:
        self._ensure()
        if self._bar is not None:
            self._bar.set_description(f"{self.description} (epoch {epoch + 1}, val {metrics['validation_score']:.4f})")
