"""The sweep page carries its comparison (the parallel coordinates' and scatter's data) as
JSON inside the page: the same body as the compare API, and a param value that looks like
markup stays inert text."""

from __future__ import annotations

import json
import re

from labyard.config import Settings
from labyard.db import Database
from tests.factories import WebClient, make_sweep_row
from tests.integration.jobpages.conftest import People

HOSTILE = "</script><script>alert(1)</script><!--"


def embedded(page: str) -> object:
    """The JSON of the page's <script id="sweep-compare">."""
    match = re.search(r'<script type="application/json" id="sweep-compare">(.*?)</script>', page)
    assert match is not None, "the page carries no comparison"
    return json.loads(match.group(1))


def test_sweep_page_embeds_the_compare_body_with_markup_kept_inert(
    clients: dict[str, WebClient], database: Database, settings: Settings, people: People
) -> None:
    runs = [
        {"params": {"lr": lr, "note": note}, "points": {"Validation_loss": [(1, lr * 3), (2, lr)]}}
        for lr, note in ((0.1, HOSTILE), (0.01, "plain"))
    ]
    sweep_id, _jobs = make_sweep_row(database, settings, people.project_id, runs)
    page = clients["ana"].get(f"/sweeps/{sweep_id}")
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text  # escaped in the table and in the JSON
    data = embedded(page.text)
    api = clients["ana"].get(f"/api/v1/sweeps/{sweep_id}/compare")
    assert data == api.json()
    assert [j["params"]["note"] for j in api.json()["jobs"]] == [HOSTILE, "plain"]
    assert [j["metrics"]["Validation_loss"]["best"] for j in api.json()["jobs"]] == [0.1, 0.01]
    # the parallel coordinates' axes: the params in the table's order
    axes = re.search(r'id="parcoords"[^>]*data-params="([^"]*)"', page.text)
    assert axes is not None and json.loads(axes.group(1).replace("&#34;", '"')) == ["lr", "note"]
    # an outsider gets neither the page nor its data
    assert clients["otto"].get(f"/sweeps/{sweep_id}").status_code == 404
