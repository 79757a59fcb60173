"""Training mechanics on real digits: recomputing, small_chunk, augmentation, resume,
big networks, initial weights."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from cls.augment import augment
from cls.data import decode_all, scan_dataset
from cls.engine import Runtime, Trainer, make_optimizer
from cls.main import main
from cls.models import Classifier, build_network
from torch import nn

CPU = Runtime(torch.device("cpu"))


@pytest.fixture(scope="module")
def digits_tensors(digits_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    split = scan_dataset(digits_dir).train
    pick = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:256]
    return decode_all(split, 1, 32)[pick], torch.tensor(split.labels)[pick]


def _model(name: str, seed: int = 0, size: int = 32) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(build_network(name, 1, 10, size), [0.3], [0.4])


def _losses(
    name: str, data: tuple[torch.Tensor, torch.Tensor], *, recompute: bool, steps: int = 4
) -> tuple[list[float], Classifier]:
    model = _model(name)
    model.recompute = recompute
    trainer = Trainer(
        model, make_optimizer(model, "sgd_momentum", 0.05, 1e-4), CPU, aug="both", seed=1
    )
    gen = trainer.aug_generator(0)
    losses = []
    for i in range(steps):
        x, y = data[0][i * 32 : (i + 1) * 32], data[1][i * 32 : (i + 1) * 32]
        loss_sum, _ = trainer.train_step(x, y, gen)
        losses.append(float(loss_sum) / 32)
    return losses, model


@pytest.mark.parametrize("name", ["lenet", "resnet18"])
def test_recomputing_gives_the_same_losses_and_bn_stats(
    name: str, digits_tensors: tuple[torch.Tensor, torch.Tensor]
) -> None:
    plain, m1 = _losses(name, digits_tensors, recompute=False)
    recomputed, m2 = _losses(name, digits_tensors, recompute=True)
    assert len(set(plain)) == len(plain) and all(0 < v < 10 for v in plain)
    assert recomputed == pytest.approx(plain, rel=1e-4, abs=1e-5)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-4), k  # incl. BN running stats


def _grads(model: nn.Module, chunks: int, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    trainer = Trainer(model, make_optimizer(model, "sgd", 0.1, 0.0), CPU, small_chunk=chunks)
    model.zero_grad(set_to_none=True)
    trainer.forward_backward(CPU.prepare(x), y)
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_small_chunk_gives_the_full_batch_gradient_for_lenet(
    digits_tensors: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = digits_tensors[0][:64], digits_tensors[1][:64]
    full = _grads(_model("lenet"), 1, x, y)
    chunked = _grads(_model("lenet"), 4, x, y)
    uneven = _grads(_model("lenet"), 5, x, y)  # 64 = 13+13+13+13+12
    assert len(full) == 10
    for a, b, c in zip(full, chunked, uneven, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
        assert torch.allclose(a, c, atol=1e-6, rtol=1e-4)
    # BatchNorm sees per-chunk statistics, so ResNet's gradients do differ (README says so)
    res_full = _grads(_model("resnet18"), 1, x, y)
    res_chunked = _grads(_model("resnet18"), 4, x, y)
    assert not all(
        torch.allclose(a, b, atol=1e-6) for a, b in zip(res_full, res_chunked, strict=True)
    )


def test_each_augmentation_mode_trains(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for mode in ("none", "color_distortion", "flip_random", "both"):
        out = tmp_path / mode
        assert (
            main(
                [
                    "--data_dir",
                    str(digits_dir),
                    "--output_dir",
                    str(out),
                    "--num_epoch",
                    "1",
                    "--aug_list",
                    mode,
                    "--max_steps_per_epoch",
                    "5",
                    "--log_every",
                    "5",
                ]
            )
            == 0
        )
        assert (out / "model.pt").is_file()
    text = capsys.readouterr().out
    assert text.count("Train step=5 ") == 4


def test_augmentations_change_images_within_range() -> None:
    x = torch.rand(64, 3, 8, 8)
    flipped = augment(x, "flip_random", torch.Generator().manual_seed(0))
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    for mode in ("color_distortion", "both"):
        a = augment(x, mode, torch.Generator().manual_seed(5))
        b = augment(x, mode, torch.Generator().manual_seed(5))
        assert torch.equal(a, b) and not torch.equal(a, x)
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment(x, "rotate", torch.Generator())


def test_resume_continues_exactly(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "--data_dir",
        str(digits_dir),
        "--aug_list",
        "both",
        "--lr_schedule",
        "step",
        "--optimizer",
        "sgd_momentum",
        "--max_steps_per_epoch",
        "8",
        "--log_every",
        "4",
    ]
    assert main([*common, "--output_dir", str(tmp_path / "a"), "--num_epoch", "3"]) == 0
    straight = capsys.readouterr().out
    assert (
        main(
            [
                *common,
                "--output_dir",
                str(tmp_path / "b"),
                "--num_epoch",
                "3",
                "--max_epochs_this_run",
                "1",
            ]
        )
        == 0
    )
    first = capsys.readouterr().out
    shutil.copy(tmp_path / "b" / "checkpoint.pt", tmp_path / "epoch1.pt")
    assert main([*common, "--output_dir", str(tmp_path / "b"), "--num_epoch", "3", "--resume"]) == 0
    resumed = capsys.readouterr().out
    assert "Resume: continuing after epoch 1" in resumed
    assert "Validation epoch=2 " not in first

    def metric_lines(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if ln.startswith(("Train ", "Validation "))]

    assert metric_lines(first) + metric_lines(resumed) == metric_lines(straight)
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ckpt = torch.load(tmp_path / "epoch1.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and {"model", "optimizer", "scheduler", "rng"} <= set(ckpt)


@pytest.mark.parametrize("name,size", [("resnet50", 32), ("vgg16", 32), ("mobilenet_v2", 32)])
def test_big_networks_take_training_steps(
    name: str, size: int, digits_tensors: tuple[torch.Tensor, torch.Tensor]
) -> None:
    model = _model(name, size=size)
    model.recompute = True
    trainer = Trainer(model, make_optimizer(model, "sgd_momentum", 0.01, 1e-4), CPU, small_chunk=2)
    before = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator().manual_seed(0)
    x, y = digits_tensors[0][:8], digits_tensors[1][:8]
    losses = [float(trainer.train_step(x, y, gen)[0]) / 8 for _ in range(3)]
    assert all(0 < v < 20 for v in losses), losses
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert changed == len(before)
    model.eval()
    assert model(torch.rand(2, 1, size, size)).shape == (2, 10)


def test_vgg16_rejects_images_too_small_to_pool() -> None:
    with pytest.raises(ValueError, match="vgg16 needs image_size >= 32"):
        build_network("vgg16", 1, 10, 16)


def test_initial_weights_reinitialise_a_mismatched_head(
    digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    five = tmp_path / "five"
    for split in ("train", "test"):
        for d in range(5):
            shutil.copytree(digits_dir / split / str(d), five / split / str(d))
    source = _model("lenet", seed=11)
    torch.save(source.state_dict(), tmp_path / "ten_classes.pt")
    out = tmp_path / "out"
    assert (
        main(
            [
                "--data_dir",
                str(five),
                "--output_dir",
                str(out),
                "--num_epoch",
                "1",
                "--max_steps_per_epoch",
                "1",
                "--lr",
                "0",
                "--weights",
                str(tmp_path / "ten_classes.pt"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "Weights: re-initialised classifier.5.weight: shape (10, 84)" in text
    assert "Weights: loaded 8/10 tensors" in text
    trained = torch.load(out / "model.pt", weights_only=False)
    assert trained["class_names"] == ["0", "1", "2", "3", "4"]
    state = trained["model"]
    assert torch.equal(state["net.features.0.weight"], source.state_dict()["net.features.0.weight"])
    assert state["net.classifier.5.weight"].shape == (5, 84)
