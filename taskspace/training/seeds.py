"""Seeds derived from one root seed, so that serial, resumed and parallel runs agree."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

__all__ = ["derive_seed", "torch_generator"]


def derive_seed(seed: int, *keys: str | int) -> int:
    """A 63-bit seed from ``seed`` and any path of keys (phase names, epoch numbers, ...)."""
    words = [int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:4], "little") for key in keys]
    state = np.random.SeedSequence([seed, *words]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def torch_generator(seed: int, *keys: str | int) -> torch.Generator:
    """A CPU generator seeded with :func:`derive_seed`."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))
