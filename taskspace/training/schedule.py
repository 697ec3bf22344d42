"""Learning-rate schedule computed in-process from the step number (so resuming needs no state)."""

from __future__ import annotations

import math

__all__ = ["warmup_cosine"]


def warmup_cosine(step: int, *, total_steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warm-up from ``peak / warmup_steps`` to ``peak``, then cosine decay to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))
