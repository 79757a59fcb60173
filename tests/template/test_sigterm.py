"""SIGTERM: a job stops at a step boundary, exits 143, and ``--resume auto`` finishes
with exactly the weights of an uninterrupted run. The helpers here (a lab made with
copy_template, a job started the way the platform starts it) serve every template."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from cls.engine import Runtime, Trainer, make_optimizer
from cls.models import Classifier, build_network
from cls.stopping import EXIT_CODE, GracefulStop, StopRequested

from labyard.templates_catalog import copy_template, load_catalog

from .conftest import REPO, platform_argv, subprocess_env

STOPPED = re.compile(
    r"^Stopped by SIGTERM (during|after) epoch (\d+) of \d+: .*Continue with --resume auto"
)


def make_lab(template: str, dest: Path) -> Path:
    """The lab folder Labyard creates from ``lab_templates/<template>`` (with includes)."""
    copy_template(load_catalog(REPO / "lab_templates")[template], dest)
    return dest


@dataclass
class Job:
    """A job started like the platform starts one; ``finish`` waits for it."""

    proc: subprocess.Popen[str]
    output_dir: Path
    stderr_file: Any

    def lines(self) -> Iterator[str]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            yield line.rstrip("\n")

    def finish(self, timeout: int = 300) -> tuple[int, str, str]:
        """(exit status, rest of stdout, stderr)."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.stderr_file.seek(0)
        return self.proc.returncode, out, self.stderr_file.read()


def start_job(lab: Path, dataset: Path, output: Path, overrides: dict[str, Any]) -> Job:
    """Mount ``dataset`` under a fresh input folder and run the lab's command + params."""
    input_dir = output.with_name(output.name + "-input")
    input_dir.mkdir(parents=True, exist_ok=True)
    if not (input_dir / dataset.name).exists():
        (input_dir / dataset.name).symlink_to(dataset, target_is_directory=True)
    output.mkdir(parents=True, exist_ok=True)
    env = subprocess_env(
        MLSTEAM_INPUT_DIR=str(input_dir), MLSTEAM_OUTPUT_DIR=str(output), MLSTEAM_LAB_DIR=str(lab)
    )
    err = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed with the Job)
    proc = subprocess.Popen(
        platform_argv(lab, overrides),
        cwd=lab,
        env=env,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
    )
    return Job(proc, output, err)


def finished_job(
    lab: Path, dataset: Path, output: Path, overrides: dict[str, Any]
) -> tuple[Path, str]:
    """Run the lab's command to its end (it must exit 0): (output folder, stdout)."""
    code, stdout, stderr = start_job(lab, dataset, output, overrides).finish()
    assert code == 0, stderr[-3000:]
    return output, stdout


def terminate_after(job: Job, marker: str) -> tuple[int, str, str]:
    """Send SIGTERM once a stdout line starts with ``marker``; (status, stdout, stderr)."""
    seen: list[str] = []
    for line in job.lines():
        seen.append(line)
        if line.startswith(marker):
            job.proc.send_signal(signal.SIGTERM)
            break
    code, rest, err = job.finish()
    return code, "\n".join(seen) + "\n" + rest, err


def assert_resumes_exactly(
    lab: Path, dataset: Path, tmp: Path, params: dict[str, Any], marker: str
) -> str:
    """Straight run vs SIGTERM after ``marker`` + ``--resume auto``: same model.pt."""
    code, _, err = start_job(lab, dataset, tmp / "straight", params).finish()
    assert code == 0, err[-3000:]
    code, out, err = terminate_after(start_job(lab, dataset, tmp / "cut", params), marker)
    assert code == EXIT_CODE, (out[-2000:], err[-3000:])
    stopped = [ln for ln in out.splitlines() if ln.startswith("Stopped by SIGTERM")]
    assert len(stopped) == 1 and STOPPED.match(stopped[0]), out[-2000:]
    assert not (tmp / "cut" / "model.pt").exists()
    code, resumed, err = start_job(lab, dataset, tmp / "cut", {**params, "resume": "auto"}).finish()
    assert code == 0, err[-3000:]
    assert re.search(r"^Resume: continuing after epoch [1-9]", resumed, re.M), resumed[:2000]
    a = torch.load(tmp / "straight" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp / "cut" / "model.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return stopped[0]


@pytest.mark.slow
def test_sigterm_then_resume_equals_an_uninterrupted_run(digits_dir: Path, tmp_path: Path) -> None:
    lab = make_lab("classification", tmp_path / "lab")
    params = {"num_epoch": 3, "aug_list": "both", "lr_schedule": "step", "log_every": 5}
    stopped = assert_resumes_exactly(lab, digits_dir, tmp_path, params, "Validation epoch=1 ")
    assert "epoch 1" in stopped or "epoch 2" in stopped, stopped


def test_sigterm_only_sets_a_flag_while_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with GracefulStop() as stop:
        assert not stop.should_stop(1)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.should_stop(2) and stop.stop_now()
    assert signal.getsignal(signal.SIGTERM) == before


def test_the_epoch_stops_at_the_step_after_the_signal() -> None:
    torch.manual_seed(0)
    model = Classifier(build_network("lenet", 1, 10, 16), [0.5], [0.25])
    trainer = Trainer(model, make_optimizer(model, "sgd", 0.01, 0.0), Runtime(torch.device("cpu")))
    taken: list[int] = []

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(10):
            if i == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives while batch 3 is served
            taken.append(i)
            yield torch.randint(0, 255, (4, 1, 16, 16), dtype=torch.uint8), torch.arange(4)

    logged: list[int] = []
    with GracefulStop() as stop, pytest.raises(StopRequested, match="epoch 1, step 4"):
        trainer.train_one_epoch(
            batches(), 0, log_every=2, on_log=lambda s, *_: logged.append(s),
            should_stop=stop.should_stop,
        )  # fmt: skip
    assert taken == [0, 1, 2, 3] and logged == [2]  # no log line for the dropped step 4
