"""The step path that keeps data on the device: uint8 splits normalised a batch at a time, an epoch's
draws made up front, bfloat16 autocast and torch.compile, and the same arithmetic as before on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskspace.config import TrainConfig
from taskspace.data import ImageSplit, load_digits_dataset, random_crop_flip
from taskspace.data.augment import apply_crop_flip
from taskspace.errors import ConfigError
from taskspace.training import load_model, train_task
from taskspace.training.compute import Compute, full_precision
from taskspace.training.seeds import torch_generator
from taskspace.training.tensors import minibatch_indices, to_tensor_split
from taskspace.training.trainers import plan_epoch

MEAN, STD = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def _split(count: int = 300, seed: int = 0) -> ImageSplit:
    rng = np.random.default_rng(seed)
    return ImageSplit(rng.integers(0, 256, size=(count, 8, 8, 3), dtype=np.uint8),
                      rng.integers(0, 3, size=count).astype(np.int64))


def _normalised_at_once(split: ImageSplit) -> torch.Tensor:
    """How a split was normalised before it stayed uint8: the whole split at once."""
    images = torch.from_numpy(split.images).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, -1, 1, 1)
    std = torch.tensor(STD).view(1, -1, 1, 1)
    return ((images - mean) / std).contiguous(memory_format=torch.channels_last)


def test_a_split_stays_uint8_and_each_batch_equals_normalising_the_whole_split() -> None:
    split = _split()
    tensors = to_tensor_split(split, mean=MEAN, std=STD)
    assert tensors.pixels.dtype == torch.uint8
    assert tensors.pixels.is_contiguous(memory_format=torch.channels_last)
    whole = _normalised_at_once(split)
    rows = torch.tensor([5, 0, 299, 17, 17])
    batch = tensors.images_at(rows)
    assert batch.dtype == torch.float32 and batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, whole[rows])
    assert torch.equal(tensors.images_at(slice(100, 164)), whole[100:164])
    assert torch.equal(tensors.images, whole)
    assert torch.equal(tensors.subset(rows).images, whole[rows])
    assert torch.equal(tensors.subset(rows).labels, torch.from_numpy(split.labels)[rows])


@pytest.mark.parametrize("augment", [True, False])
def test_an_epoch_plan_draws_what_batch_by_batch_drawing_drew(augment: bool) -> None:
    """Shuffle, then each batch's crops from the same generator: the batches are those of drawing as
    each step came (the order the loop drew in before it planned an epoch)."""
    split = _split(count=300)
    tensors = to_tensor_split(split, mean=MEAN, std=STD)
    whole = _normalised_at_once(split)
    plan = plan_epoch(len(tensors), 64, generator=torch_generator(3, "hidden0", 1), augment=augment,
                      device=tensors.device)
    generator = torch_generator(3, "hidden0", 1)
    expected_batches = minibatch_indices(300, 64, generator=generator, drop_last=True)
    assert len(plan.batches) == len(expected_batches) == 4  # 300 = 4 x 64 + 44 dropped
    for rows, crops, expected_rows in zip(plan.batches, plan.crops, expected_batches, strict=True):
        assert torch.equal(rows, expected_rows)
        images = tensors.images_at(rows)
        if augment:
            assert crops is not None
            expected = random_crop_flip(whole[expected_rows], generator=generator)
            assert torch.equal(apply_crop_flip(images, crops), expected)
        else:
            assert crops is None
            assert torch.equal(images, whole[expected_rows])


def test_a_single_short_batch_is_kept() -> None:
    plan = plan_epoch(10, 64, generator=torch_generator(0, "e2e", 0), augment=True, device=torch.device("cpu"))
    assert [len(rows) for rows in plan.batches] == [10]
    assert plan.crops[0] is not None and len(plan.crops[0].row_offsets) == 10


def test_compute_settings() -> None:
    with pytest.raises(ConfigError, match="precision 'fp16'"):
        Compute(precision="fp16")
    layer = torch.nn.Linear(4, 4)
    inputs = torch.randn(2, 4)
    with Compute().autocast(torch.device("cpu")):
        assert layer(inputs).dtype == torch.float32
    with Compute(precision="bf16").autocast(torch.device("cpu")):
        assert layer(inputs).dtype == torch.bfloat16
        with full_precision(torch.device("cpu")):
            assert layer(inputs).dtype == torch.float32
    assert Compute().compiled(layer) is layer


def test_precision_and_compile_enter_the_hash_only_when_set() -> None:
    plain = TrainConfig(task="all", mode="modular", epochs=15, seed=0)
    assert plain.hash() == "9c740fe6f62ac1d0"  # the hash of runs written before these options existed
    assert TrainConfig(task="all", epochs=15, precision="bf16").hash() != plain.hash()
    assert TrainConfig(task="all", epochs=15, compile=True).hash() != plain.hash()
    with pytest.raises(ConfigError, match="unknown precision 'half'"):
        TrainConfig(task="all", precision="half")
    with pytest.raises(ConfigError, match="compile must be true or false"):
        TrainConfig(task="all", compile="yes")  # type: ignore[arg-type]


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_model(folder / "model.pt")[0].state_dict()


def test_bf16_autocast_trains_to_the_float32_result_within_noise(tmp_path, digits) -> None:
    options = {"task": "3_vs_8", "dataset": "digits", "epochs": 3, "cut_points": (1,)}
    exact = train_task(TrainConfig(**options), out_dir=tmp_path / "fp32", dataset=digits)
    mixed = train_task(TrainConfig(**options, precision="bf16"), out_dir=tmp_path / "bf16", dataset=digits)
    assert mixed["config_hash"] != exact["config_hash"]
    assert mixed["test_accuracy"] >= 0.9 and abs(mixed["test_accuracy"] - exact["test_accuracy"]) <= 0.05
    weights = _weights(tmp_path / "bf16")
    assert all(tensor.dtype != torch.bfloat16 for tensor in weights.values())  # weights stay float32
    assert any(not torch.equal(weights[name], value) for name, value in _weights(tmp_path / "fp32").items())


def test_a_compiled_step_trains_as_the_eager_one(tmp_path, digits) -> None:
    pytest.importorskip("torch._inductor")
    options = {"task": "3_vs_8", "dataset": "digits", "epochs": 1, "mode": "e2e"}
    eager = train_task(TrainConfig(**options), out_dir=tmp_path / "eager", dataset=digits)
    compiled = train_task(TrainConfig(**options, compile=True), out_dir=tmp_path / "compiled", dataset=digits)
    assert abs(compiled["test_accuracy"] - eager["test_accuracy"]) <= 0.02
    eager_weights = _weights(tmp_path / "eager")
    for name, value in _weights(tmp_path / "compiled").items():
        torch.testing.assert_close(value, eager_weights[name], atol=1e-3, rtol=1e-3, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_the_whole_split_on_the_gpu_trains_like_the_cpu(tmp_path, digits) -> None:
    options = {"task": "3_vs_8", "dataset": "digits", "epochs": 3, "cut_points": (1,)}
    cpu = train_task(TrainConfig(**options), out_dir=tmp_path / "cpu", dataset=digits)
    gpu = train_task(TrainConfig(**options, device="cuda", precision="bf16", compile=True), out_dir=tmp_path / "gpu",
                     dataset=digits)
    assert abs(gpu["test_accuracy"] - cpu["test_accuracy"]) <= 0.05
