"""The search page and the Parameters tab's search mode over the real app: a search run to its
end renders with the user's text escaped, its live block refreshes, strangers get 404, Stop,
Resume and "Submit best" call the same services as their API twins and refuse bad requests
with a message naming the field, writing nothing; the form starts a search and opens its page,
its errors name their field; a search's sweep links to the search from the jobs pages."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest

from labyard.db import Database
from labyard.searches.models import Search
from tests.factories import WebClient, add_member, session_client
from tests.integration.searches.conftest import run_search
from tests.integration.searches.world import SearchWorld, search_yml

HOSTILE = "<script>alert('x')</script>"
TAG = "<b>x&y</b>"
FLASH = re.compile(
    r'<div class="flash error" role="alert"(?: data-field="([^"]*)")?>'
    r'<span class="message">([^<]*)</span>'
)


def hostile_yml() -> str:
    """The fake lab's file with a fixed string param that is markup."""
    return search_yml().replace("params:\n", f'params:\n  tag: ["{TAG}"]\n', 1)


def error_of(response: Any) -> tuple[str | None, str]:
    """(field, message) of an htmx error answer (templates/error.html's flash)."""
    found = FLASH.search(response.text)
    assert found, response.text
    return found.group(1), found.group(2)


def boot_of(html: str) -> dict[str, Any]:
    """The JSON the search page's charts draw."""
    found = re.search(r'<div id="search-live" [^>]*data-boot="([^"]*)"', html)
    assert found
    data: dict[str, Any] = json.loads(unescape(found.group(1)))
    return data


def state_of(database: Database, search_id: int) -> tuple[str, int]:
    with database.read_session() as db:
        search = db.get(Search, search_id)
        assert search is not None
        return search.state, search.trials_wanted


def pages_client(world: SearchWorld, user: Any = None) -> WebClient:
    return session_client(world.app, world.database, user or world.owner)


@pytest.fixture
def ended(search_world: SearchWorld, search_scheduler) -> tuple[int, int]:
    """A project named with markup, a lab whose param is markup, its search of 4 trials with
    ASHA run to its end."""
    renamed = search_world.api.patch(
        f"/api/v1/projects/{search_world.project_id}",
        json={"name": HOSTILE},
        headers=search_world.headers,
    )
    assert renamed.status_code == 200, renamed.text
    lab_id = search_world.make_lab(yml=hostile_yml())
    body = {"search": {"trials": 4, "parallel": 2, "seed": 5, "early_stopping": "asha"}}
    search_id = int(search_world.start(lab_id, body)["id"])
    run_search(search_scheduler(), search_world.database, search_id)
    return lab_id, search_id


def test_the_page_shows_the_search_with_user_text_escaped(
    search_world: SearchWorld, ended: tuple[int, int]
) -> None:
    lab_id, search_id = ended
    with pages_client(search_world) as web:
        page = web.get(f"/searches/{search_id}")
        assert page.status_code == 200
        html = page.text
        assert HOSTILE not in html and TAG not in html
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</a> / " in html  # the crumbs
        assert "&lt;b&gt;x&amp;y&lt;/b&gt;" in html  # the param of the best trial
        # the table's columns are the searched params; fixed ones are the same in every trial
        assert re.findall(r'<th class="param">([^<]*)</th>', html) == ["lr", "width"]
        boot = boot_of(html)
        assert "\\u003cb\\u003ex\\u0026y\\u003c/b\\u003e" in html  # and in the charts' JSON
        assert boot["trials"][0]["params"]["tag"] == TAG
        search, trials = boot["search"], boot["trials"]
        assert search["state"] == "finished" and len(trials) == 4
        counts = search["counts"]
        assert counts["complete"] + counts["pruned"] + counts["failed"] == 4
        assert f"<strong>{counts['complete']}</strong> complete" in html
        assert f"<strong>{counts['pruned']}</strong> pruned" in html
        best = search["best"]
        assert best is not None
        assert f'Best trial: <a href="/jobs/{best["job_id"]}">' in html
        assert 'aria-label="Trials ended: 4 of 4" value="100.0"' in html
        for t in trials:
            assert f'<tr data-trial="{t["number"]}"' in html
            assert boot["labels"][str(t["number"])].startswith(f"#{t['number'] + 1} ")
        assert 'hx-trigger="every 10s"' not in html  # an ended search is not polled
        assert f'href="/labs/{lab_id}/jobs"' in html
        # the refresh: the live block only, the same data
        live = web.hx("GET", f"/searches/{search_id}", headers={"HX-Target": "search-live"})
        assert live.status_code == 200
        assert "<html" not in live.text and 'id="search-live"' in live.text
        assert boot_of(live.text) == boot


def test_a_running_search_is_polled_and_its_sweep_links_to_it(
    search_world: SearchWorld,
) -> None:
    lab_id = search_world.make_lab()
    search_id = int(search_world.start(lab_id, {"search": {"trials": 3}})["id"])
    with pages_client(search_world) as web:
        html = web.get(f"/searches/{search_id}").text
        assert f'hx-get="/searches/{search_id}" hx-trigger="every 10s"' in html
        assert "No trials yet" in html and "No trial has completed yet." in html
        sweep = web.get(f"/sweeps/{search_id}").text
        assert f'<a href="/searches/{search_id}" id="sweep-search-link">' in sweep
        tab = web.get(f"/labs/{lab_id}/jobs").text
        assert (
            f'<a href="/searches/{search_id}">' in tab
            and '<span class="badge">search</span>' in tab
        )
        jobs = web.get(f"/jobs?sweep_id={search_id}").text
        assert f'href="/searches/{search_id}">Search page</a>' in jobs


def test_a_trial_job_page_links_to_its_search(
    search_world: SearchWorld, ended: tuple[int, int]
) -> None:
    _lab_id, search_id = ended
    trials = search_world.get(f"/api/v1/searches/{search_id}/trials").json()
    with pages_client(search_world) as web:
        html = web.get(f"/jobs/{trials[0]['job_id']}").text
        assert f'<a href="/searches/{search_id}" id="job-search">' in html


def test_strangers_get_404_and_readers_may_not_act(
    search_world: SearchWorld, ended: tuple[int, int]
) -> None:
    world = search_world
    _lab_id, search_id = ended
    before = world.footprint()
    with pages_client(world, world.other) as web:
        assert web.get(f"/searches/{search_id}").status_code == 404
        assert web.get("/searches/999999").status_code == 404
        for action in ("stop", "submit-best"):
            assert web.hx("POST", f"/searches/{search_id}/{action}").status_code == 404
        resumed = web.hx("POST", f"/searches/{search_id}/resume", data={"trials": "2"})
        assert resumed.status_code == 404
        add_member(world.database, world.project_id, world.other, "READ")
        page = web.get(f"/searches/{search_id}")
        assert page.status_code == 200 and 'id="search-actions"' not in page.text
        refused = web.hx("POST", f"/searches/{search_id}/submit-best")
        assert refused.status_code == 403
    assert world.footprint() == before
    assert state_of(world.database, search_id) == ("finished", 4)


def test_stop_resume_and_submit_best_from_the_page(
    search_world: SearchWorld, search_scheduler
) -> None:
    world = search_world
    lab_id = world.make_lab()
    search_id = int(world.start(lab_id, {"search": {"trials": 2, "parallel": 2}})["id"])
    with pages_client(world) as web:
        nothing = web.hx("POST", f"/searches/{search_id}/submit-best")
        assert nothing.status_code == 409
        assert (
            error_of(nothing)[1] == "No trial has completed yet; there is no best trial to submit."
        )
        stopped = web.hx("POST", f"/searches/{search_id}/stop")
        assert stopped.status_code == 200 and "<html" not in stopped.text
        assert boot_of(stopped.text)["search"]["state"] == "stopped"
        again = web.hx("POST", f"/searches/{search_id}/stop")
        assert again.status_code == 409 and error_of(again) == (
            None,
            "The search is already stopped.",
        )
        before = world.footprint()
        for bad in ("", "two", "0", "-1", "²"):
            refused = web.hx("POST", f"/searches/{search_id}/resume", data={"trials": bad})
            assert refused.status_code == 422, bad
            assert error_of(refused)[0] == "trials"
        too_many = web.hx("POST", f"/searches/{search_id}/resume", data={"trials": "1001"})
        assert too_many.status_code == 422
        assert error_of(too_many) == (
            "trials",
            "A search runs at most 1000 trials in all; this one has 0.",
        )
        assert world.footprint() == before and state_of(world.database, search_id) == ("stopped", 2)
        resumed = web.hx("POST", f"/searches/{search_id}/resume", data={"trials": "3"})
        assert resumed.status_code == 200
        assert 'hx-trigger="every 10s"' in resumed.text
        assert state_of(world.database, search_id) == ("running", 3)
        run_search(search_scheduler(), world.database, search_id)
        best = world.get(f"/api/v1/searches/{search_id}").json()["best"]
        submitted = web.hx("POST", f"/searches/{search_id}/submit-best")
        assert submitted.status_code == 204
        job_id = int(submitted.headers["HX-Redirect"].removeprefix("/jobs/"))
        job = world.get(f"/api/v1/jobs/{job_id}").json()
        assert job["params"] == best["params"] and job["status"] == "queued"


# --------------------------------------------------------------------------- the form


def test_the_parameters_tab_offers_grid_or_search(search_world: SearchWorld) -> None:
    world = search_world
    with_block = world.make_lab("with")
    plain = world.make_lab("plain", yml=search_yml().split("search:\n")[0])
    with pages_client(world) as web:
        html = web.get(f"/labs/{with_block}/parameters").text
        assert '<input type="radio" name="mode" value="grid" checked>' in html  # as before
        assert '<input type="radio" name="mode" value="search">' in html
        assert '<input name="metric" value="Validation_acc"' in html
        assert "<option selected>tpe</option>" in html
        assert 'name="trials" value="8"' in html and 'name="parallel" value="2"' in html
        # lr has a typed min..max: a range in search mode; width keeps its values
        assert 'name="range.lr.min" value="0.0001"' in html
        assert 'name="range.lr.max" value="1.0"' in html
        assert 'name="range.lr.log" value="true" checked' in html
        assert "range.width" not in html and 'name="param.width"' in html
        html = web.get(f"/labs/{plain}/parameters").text
        assert '<input type="radio" name="mode" value="grid" checked>' in html
        assert (
            '<input name="metric" value=""' in html and "has no <code>search:</code> block" in html
        )
        assert "<option selected>tpe</option>" in html and 'name="trials" value="20"' in html


def _form(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mode": "search",
        "algorithm": "random",
        "metric": "Validation_acc",
        "goal": "maximize",
        "trials": "5",
        "parallel": "2",
        "early_stopping": "asha",
        "resource": "epoch",
        "min_resource": "1",
        "reduction_factor": "3",
        "range.lr.min": "0.001",
        "range.lr.max": "0.1",
        "range.lr.log": "true",
        "param.width": ["16", "64"],
        "param.epochs": "2",
    }
    data.update(extra)
    return data


def test_the_form_starts_a_search_and_opens_its_page(search_world: SearchWorld) -> None:
    world = search_world
    lab_id = world.make_lab()
    with pages_client(world) as web:
        started = web.hx("POST", f"/labs/{lab_id}/searches", data=_form())
        assert started.status_code == 204, started.text
        search_id = int(started.headers["HX-Redirect"].removeprefix("/searches/"))
    search = world.get(f"/api/v1/searches/{search_id}").json()
    assert search["lab_id"] == lab_id and search["trials"] == 5
    settings = search["settings"]
    assert (settings["algorithm"], settings["early_stopping"], settings["parallel"]) == (
        "random",
        "asha",
        2,
    )
    space = search["space"]
    assert (space["lr"]["kind"], space["lr"]["low"], space["lr"]["high"]) == ("float", 0.001, 0.1)
    assert space["lr"]["log"] is True
    assert space["width"]["choices"] == [16, 64]
    assert space["epochs"] == {**space["epochs"], "kind": "fixed", "choices": [2]}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"metric": "acc"}, "metric", "metric must name a series"),
        ({"algorithm": "anneal"}, "algorithm", "algorithm must be one of grid, random"),
        ({"trials": "many"}, "trials", "trials must be a whole number from 1 to 1000"),
        ({"parallel": "9"}, "parallel", "must not exceed trials"),
        ({"reduction_factor": "1"}, "reduction_factor", "reduction_factor must be a whole number"),
        (
            {"range.lr.min": "0.5", "range.lr.max": "0.1"},
            "space.lr",
            "lr: min (0.5) must be below max",
        ),
        ({"range.lr.min": "zero"}, "space.lr", "lr: min must be a finite number"),
        ({"range.lr.min": "0.00001"}, "space.lr", "lr: min 1e-05 is below the file's minimum"),
        ({"param.width": "wide"}, "space.width", "width"),
        ({"algorithm": "grid"}, "space.lr", "A grid search needs values for every param; lr"),
    ],
)
def test_the_form_names_the_field_of_each_error_and_writes_nothing(
    search_world: SearchWorld, change: dict[str, Any], field: str, says: str
) -> None:
    world = search_world
    lab_id = world.make_lab()
    before = world.footprint()
    with pages_client(world) as web:
        refused = web.hx("POST", f"/labs/{lab_id}/searches", data=_form(**change))
        assert refused.status_code == 422, refused.text
        got_field, message = error_of(refused)
        assert got_field == field and says in message.replace("&#39;", "'"), message
        html = web.get(f"/labs/{lab_id}/parameters").text
        assert f'name="{field}"' in html  # the control the message goes next to exists
    assert world.footprint() == before


def test_a_file_without_search_block_needs_the_metric(search_world: SearchWorld) -> None:
    world = search_world
    lab_id = world.make_lab("plain", yml=search_yml().split("search:\n")[0])
    before = world.footprint()
    with pages_client(world) as web:
        refused = web.hx("POST", f"/labs/{lab_id}/searches", data=_form(metric=""))
        assert refused.status_code == 422
        assert error_of(refused) == (
            "metric",
            "metric is required: the series to optimize, like Validation_acc.",
        )
        assert world.footprint() == before
        started = web.hx("POST", f"/labs/{lab_id}/searches", data=_form())
        assert started.status_code == 204 and started.headers["HX-Redirect"].startswith(
            "/searches/"
        )
