"""runner/labyard_job.py: the in-job helper (params from mlsteam.yml, metrics, progress)."""

from __future__ import annotations

import importlib.util
import io
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

RUNNER = Path(__file__).resolve().parents[2] / "runner" / "labyard_job.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("labyard_job_under_test", RUNNER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lj = _load()

JOB_YML = """\
command: python train.py   # resolved for this job
params:
  network: lenet
  num_epoch: 10
  lr: 0.001
  batch_size: [64]
  aug_list:
    - flip_random
    - none
  use_amp: true
  note: "a # not a comment"
  empty:
params_definition:
  network: {options: [lenet, resnet50]}
image: labyard/runner:latest
"""


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A lab dir with a job's mlsteam.yml, found through $MLSTEAM_LAB_DIR."""
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    (lab_dir / "mlsteam.yml").write_text(JOB_YML)
    monkeypatch.setenv("MLSTEAM_LAB_DIR", str(lab_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return lab_dir


@pytest.fixture(params=["pyyaml", "fallback"])
def parser(request, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` raises ImportError
    lj._cache.clear()
    return request.param


# --------------------------------------------------------------------------- get_value


def test_get_value_reads_scalars_and_first_of_lists(lab, parser):
    assert lj.get_value("network") == "lenet"
    assert lj.get_value("num_epoch") == 10
    assert lj.get_value("lr") == pytest.approx(0.001)
    assert lj.get_value("batch_size") == 64
    assert lj.get_value("aug_list") == "flip_random"
    assert lj.get_value("use_amp") is True
    assert lj.get_value("note") == "a # not a comment"


def test_get_value_default_for_missing_or_empty(lab, parser):
    assert lj.get_value("nope") is None
    assert lj.get_value("nope", 3) == 3
    assert lj.get_value("empty", "d") == "d"
    assert "command" not in lj.load_params() and "options" not in lj.load_params()


def test_fallback_parser_matches_pyyaml():
    docs = [
        JOB_YML,
        "params: {a: 1, b: [x, y], c: 'q'}\n",
        "params:\n    deep_indent: 2.5e-3\n    s: hello world\nother: 1\n",
        "command: python x.py\n",
        "params:\n  flag: off\n  n: -7\n  inf: .inf\n",
    ]
    for doc in docs:
        expected = (yaml.safe_load(doc) or {}).get("params") or {}
        assert lj._fallback_params(doc) == expected, doc


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.delenv("MLSTEAM_LAB_DIR", raising=False)
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (home / "lab").mkdir(parents=True)
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    assert lj.find_config() is None
    assert lj.get_value("x", "dflt") == "dflt"

    (cwd / "mlsteam.yml").write_text("params:\n  x: from_cwd\n")
    assert lj.get_value("x") == "from_cwd"
    (home / "lab" / "mlsteam.yml").write_text("params:\n  x: from_home\n")
    assert lj.get_value("x") == "from_home"
    lab = tmp_path / "labdir"
    lab.mkdir()
    (lab / "mlsteam.yml").write_text("params:\n  x: from_lab_dir\n")
    monkeypatch.setenv("MLSTEAM_LAB_DIR", str(lab))
    assert lj.get_value("x") == "from_lab_dir"


def test_file_changes_are_seen(lab):
    lj._cache.clear()
    assert lj.get_value("network") == "lenet"
    (lab / "mlsteam.yml").write_text("params:\n  network: vgg16_longer_name\n")
    assert lj.get_value("network") == "vgg16_longer_name"


def test_runs_standalone_as_a_script(lab):
    # dependency-free: the module runs by itself, outside the platform and its venv
    out = subprocess.run(
        [sys.executable, "-S", str(RUNNER), "network"],
        capture_output=True,
        text=True,
        check=True,
        cwd=lab,
    )
    assert out.stdout.strip() == "lenet"


# --------------------------------------------------------------------------- log_metrics


def test_log_metrics_line_format(capsys):
    line = lj.log_metrics("Train", step=10, loss=0.818, acc=0.95)
    assert line == "Train step=10 loss=0.818 acc=0.95"
    assert capsys.readouterr().out == line + "\n"


def test_log_metrics_axes_and_numbers():
    buf = io.StringIO()
    lj.log_metrics("Validation", epoch=3, iter=7, acc=1, top5=0.123456789012, stream=buf)
    assert buf.getvalue() == "Validation epoch=3 iter=7 acc=1 top5=0.1234568\n"
    assert lj.log_metrics("Test", loss=1e-9, stream=io.StringIO()) == "Test loss=1e-09"


def test_log_metrics_accepts_numpy_like_scalars():
    class Scalar:  # like a 0-d tensor / numpy scalar: not numbers.Real, has .item()
        def item(self) -> float:
            return 0.25

    assert lj.log_metrics("Train", step=1, loss=Scalar(), stream=io.StringIO()).endswith(
        "loss=0.25"
    )


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("Training",), {"loss": 1.0}),
        (("train",), {"loss": 1.0}),
        (("Train",), {}),
        (("Train",), {"loss": math.nan}),
        (("Train",), {"loss": math.inf}),
        (("Train",), {"loss": "0.5"}),
        (("Train",), {"loss": None}),
        (("Train",), {"ok": True}),
        (("Train",), {"step": 1.5, "loss": 1.0}),
        (("Train",), {"bad name": 1.0}),
    ],
)
def test_log_metrics_refuses(args, kwargs, capsys):
    with pytest.raises(ValueError):
        lj.log_metrics(*args, **kwargs)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- log_progress


def test_log_progress(capsys):
    assert lj.log_progress(epoch=(3, 10), step=(120, 773)) == "Progress epoch=3/10 step=120/773"
    assert capsys.readouterr().out == "Progress epoch=3/10 step=120/773\n"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"epoch": (11, 10)}, {"epoch": (1, 0)}, {"epoch": (-1, 3)}, {"epoch": 3}, {"e": (1.0, 2)}],
)
def test_log_progress_refuses(kwargs):
    with pytest.raises(ValueError):
        lj.log_progress(**kwargs)
