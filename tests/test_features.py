"""Forward-pass outputs of a frozen source are cached by content and never served stale."""

from __future__ import annotations

import numpy as np

from taskspace.config import TrainConfig
from taskspace.data import load_digits_dataset
from taskspace.features import cached_source_outputs
from taskspace.training import prepare_splits, train_task


def test_outputs_are_cached_by_content(tmp_path):
    digits = load_digits_dataset()
    config = TrainConfig(task="3_vs_8", dataset="digits", epochs=1)
    train_task(config, out_dir=tmp_path / "source", dataset=digits)
    checkpoint = tmp_path / "source" / "model.pt"
    target = prepare_splits(TrainConfig(task="1_vs_7", dataset="digits"), digits).train
    cache = tmp_path / "cache"
    first = cached_source_outputs(checkpoint, target, cache_dir=cache)
    assert first.features.shape == (len(target), 64) and first.logits.shape == (len(target), 2)
    assert np.allclose(np.linalg.norm(first.features, axis=1), 1.0, atol=1e-5)
    assert len(list(cache.iterdir())) == 1
    again = cached_source_outputs(checkpoint, target, cache_dir=cache)
    assert np.array_equal(first.features, again.features)
    # other target images -> another entry
    cached_source_outputs(checkpoint, target.take(range(10)), cache_dir=cache)
    assert len(list(cache.iterdir())) == 2
    # a damaged entry is recomputed, not trusted
    entry = sorted(cache.iterdir(), key=lambda path: path.stat().st_mtime)[0]
    entry.write_bytes(b"damaged")
    repaired = cached_source_outputs(checkpoint, target, cache_dir=cache)
    assert np.array_equal(repaired.features, first.features)
    # a retrained checkpoint (other bytes) never gets the old entry
    train_task(config.replace(seed=5), out_dir=tmp_path / "other", dataset=digits)
    other = cached_source_outputs(tmp_path / "other" / "model.pt", target, cache_dir=cache)
    assert not np.array_equal(other.features, first.features)
