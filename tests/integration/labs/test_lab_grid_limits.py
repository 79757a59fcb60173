"""The one grid validator behind count, review and submit: WRITE only, the size checked
against LABYARD_MAX_GRID_SIZE from the value counts (never by expanding), exact at the limit."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from labyard.jobs.models import Job
from labyard.projects.models import Role
from tests.integration.labs.conftest import LabWorld

CONFIG = """\
command: python run.py
params:
  a: [1]
  b: [1]
  c: [1]
"""
THOUSAND = ", ".join(str(i) for i in range(1000))
THREE_BY_THOUSAND = {"param.a": THOUSAND, "param.b": THOUSAND, "param.c": THOUSAND}


def _lab(world: LabWorld) -> dict[str, Any]:
    lab = world.create_lab("grid")
    saved = world.api.put(
        f"/api/v1/labs/{lab['id']}/config", json={"content": CONFIG}, headers=world.owner_headers
    )
    assert saved.status_code == 200, saved.text
    return lab


def _job_counts(world: LabWorld, lab: dict[str, Any]) -> dict[str, int]:
    answer = world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers)
    counts: dict[str, int] = answer.json()["job_counts"]
    return counts


@pytest.mark.parametrize("role", [Role.READ, None], ids=["READ member", "non-member"])
def test_count_and_review_need_write(world: LabWorld, role: Role | None) -> None:
    lab = _lab(world)
    if role is not None:
        world.add_member(world.other, role)
    with world.web_for(world.other) as web:
        for step in ("count", "review"):
            answer = web.hx("POST", f"/labs/{lab['id']}/parameters/{step}", data={})
            assert answer.status_code == (403 if role else 404), (step, answer.text)
            assert "will be created" not in answer.text and "Confirm" not in answer.text


def test_a_three_by_thousand_grid_is_refused_without_expanding(world: LabWorld) -> None:
    lab = _lab(world)
    message = "This grid makes 1000000000 jobs; the limit is 1000 (setting LABYARD_MAX_GRID_SIZE)"
    with world.web_for(world.owner) as web:
        tracemalloc.start()
        try:
            count = web.hx("POST", f"/labs/{lab['id']}/parameters/count", data=THREE_BY_THOUSAND)
            review = web.hx("POST", f"/labs/{lab['id']}/parameters/review", data=THREE_BY_THOUSAND)
            submit = web.hx("POST", f"/labs/{lab['id']}/sweeps", data=THREE_BY_THOUSAND)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert count.status_code == 200 and message in count.text and "1000 × 1000 × 1000" in count.text
    assert "will be created" not in count.text
    assert review.status_code == 413 and message in review.text
    assert submit.status_code == 413 and message in submit.text
    assert peak < 64 * 1024**2  # 10^9 combinations would need hundreds of GiB
    api = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps",
        json={"params": {"a": list(range(1000)), "b": list(range(1000)), "c": [1, 2, 3]}},
        headers=world.owner_headers,
    )
    assert api.status_code == 413 and "3000000 jobs" in api.json()["detail"]
    assert _job_counts(world, lab) == {}


@pytest.mark.parametrize(("values", "ok"), [(6, True), (7, False)])
def test_counts_are_exact_at_the_limit(world: LabWorld, values: int, ok: bool) -> None:
    world.settings.max_grid_size = 12
    lab = _lab(world)
    data = {"param.a": "1, 2", "param.b": ", ".join(str(i) for i in range(values))}
    with world.web_for(world.owner) as web:
        count = web.hx("POST", f"/labs/{lab['id']}/parameters/count", data=data)
        review = web.hx("POST", f"/labs/{lab['id']}/parameters/review", data=data)
        submit = web.hx("POST", f"/labs/{lab['id']}/sweeps", data={**data, "flavor": "cpu"})
    jobs = 2 * values
    assert count.status_code == 200
    if ok:
        assert f"<strong>{jobs}</strong> jobs will be created" in count.text
        assert review.status_code == 200 and f"Confirm {jobs} jobs" in review.text
        assert submit.status_code == 204
        assert _job_counts(world, lab) == {"queued": jobs}
    else:
        assert f"This grid makes {jobs} jobs; the limit is 12" in count.text
        assert review.status_code == 413 and submit.status_code == 413
        assert _job_counts(world, lab) == {}


def test_review_lists_the_first_combinations_and_says_how_many(world: LabWorld) -> None:
    lab = _lab(world)
    data = {"param.a": THOUSAND}  # exactly the default limit of 1000
    with world.web_for(world.owner) as web:
        count = web.hx("POST", f"/labs/{lab['id']}/parameters/count", data=data)
        review = web.hx("POST", f"/labs/{lab['id']}/parameters/review", data=data)
    assert "<strong>1000</strong> jobs will be created" in count.text
    assert review.status_code == 200 and "Confirm 1000 jobs" in review.text
    assert review.text.count("<tr>") == 1 + 200 and "… and 800 more." in review.text


def test_the_review_step_chooses_a_priority(world: LabWorld) -> None:
    lab = _lab(world)
    data = {"param.a": "1", "param.b": "2"}
    with world.web_for(world.owner) as web:
        review = web.hx("POST", f"/labs/{lab['id']}/parameters/review", data=data)
        assert review.status_code == 200 and 'name="priority"' in review.text
        assert "the project's (normal)" in review.text
        bad = web.hx("POST", f"/labs/{lab['id']}/sweeps", data={**data, "priority": "urgent"})
        assert bad.status_code == 422 and "Priority is low, normal or high." in bad.text
        assert _job_counts(world, lab) == {}
        low = web.hx("POST", f"/labs/{lab['id']}/sweeps", data={**data, "priority": "low"})
        assert low.status_code == 204
    with world.database.read_session() as db:
        assert [job.priority for job in db.query(Job)] == [-1]
