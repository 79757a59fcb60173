"""Display names of sweeps and jobs (labyard.jobs.naming): the params that differ, values
that print alike kept apart, long lists cut, names that can be directory names."""

from __future__ import annotations

import itertools

from labyard.jobs import naming


def test_sweep_name_has_its_number_once() -> None:
    assert naming.sweep_display_name("QuickStart", 3) == "QuickStart · sweep 3"
    assert naming.sweep_display_name("QuickStart1", 1) == "QuickStart1 · sweep 1"


def test_only_params_that_differ_in_the_grid_name_a_job() -> None:
    grid = {"network": ["lenet", "resnet18"], "lr": [0.1], "epochs": 3, "aug": ["none", "none"]}
    varying = naming.grid_varying(grid)
    assert varying == ["network"]
    params = {"network": "resnet18", "lr": 0.1, "epochs": 3, "aug": "none"}
    label = naming.job_label(2, params, varying)
    assert label == "#2 · network=resnet18"
    full = naming.job_display_name(naming.sweep_display_name("QuickStart", 3), label)
    assert full == "QuickStart · sweep 3 · #2 · network=resnet18"


def test_a_single_job_sweep_shows_just_its_number() -> None:
    grid = {"network": ["lenet"], "lr": [0.1]}
    assert naming.job_label(1, {"network": "lenet", "lr": 0.1}, naming.grid_varying(grid)) == "#1"


def test_values_that_print_alike_read_apart() -> None:
    grid = {"lr": [0.1, "0.1", 1, True, "true", None, "None", "a,b", "a b"]}
    varying = naming.grid_varying(grid)
    assert varying == ["lr"]
    parts = [naming.job_label(1, {"lr": v}, varying).split(" · ", 1)[1] for v in grid["lr"]]
    assert len(set(parts)) == len(parts), parts
    assert parts[:2] == ["lr=0.1", 'lr="0.1"']


def test_long_param_lists_are_cut_and_the_full_text_kept_for_hover() -> None:
    grid = {f"param_{i}": [f"value_{i}_a", f"value_{i}_b"] for i in range(12)}
    varying = naming.grid_varying(grid)
    params = {k: v[1] for k, v in grid.items()}
    label = naming.job_label(5, params, varying)
    assert label.startswith("#5 · param_0=value_0_b, ") and label.endswith("…")
    assert len(label) <= len("#5 · ") + naming.PARAMS_MAX
    full = naming.params_text(params)
    assert "param_11=value_11_b" in full and "…" not in full


def test_different_jobs_never_share_a_name_even_when_values_cut_alike() -> None:
    long = "x" * 200
    grid = {"prompt": [long + "a", long + "b"], "lr": [0.1, "0.1"]}
    varying = naming.grid_varying(grid)
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    labels = [naming.job_label(i, p, varying) for i, p in enumerate(combos, start=1)]
    # the cut values read alike, the numbers keep the names apart
    assert labels[0].split(" · ", 1)[1].split(",")[0] == labels[2].split(" · ", 1)[1].split(",")[0]
    assert len(set(labels)) == len(labels) == 4


def test_retry_label_names_the_job_it_retries() -> None:
    assert naming.retry_label(3, "#1 · lr=0.1") == "#3 · retry of #1 · lr=0.1"


def test_directory_names_are_safe_and_bounded() -> None:
    assert naming.safe_dirname("QuickStart · sweep 3 · #2 · net=a/b") == (
        "QuickStart · sweep 3 · #2 · net=a_b"
    )
    assert naming.safe_dirname("../..") == "_.."
    assert naming.safe_dirname("...") == "run"
    assert naming.safe_dirname("a\x00b\nc") == "a_b_c"
    cut = naming.safe_dirname("é" * 300)
    assert len(cut.encode()) <= naming.DIRNAME_MAX_BYTES and cut == "é" * 100
