"""The job page: top panel, tabs, the live stream (resumable), log search and download,
output files (path safety), and permissions on every job route."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.ansi import lines_html
from labyard.jobs.models import Job
from labyard.jobs.service import job_dir
from tests.factories import WebClient, make_job_row
from tests.integration.jobpages.conftest import People, parse_sse

LOG = [
    "starting",
    "==== Model summary ====",
    "Net(conv1: 3->16, fc: 10)",
    "params: 1234",
    "==== End of summary ====",
    "\x1b[32mTrain step=1 loss=1.0\x1b[0m",
    "<script>alert(1)</script>",
    "Train step=2 loss=0.5",
    "done",
]


def shown_lines(fragment: str) -> list[str]:
    """The visible text of each log line in the log box's HTML (the time left out)."""
    bodies = re.findall(
        r'<div class="ll"[^>]*>(?:<span class="ts"[^>]*>[^<]*</span>)?(.*?)</div>', fragment
    )
    return [html.unescape(re.sub(r"<[^>]*>", "", body)) for body in bodies]


def boot_of(page: str) -> dict:
    """The JSON the job page hands its script."""
    match = re.search(r'<script type="application/json" id="job-boot">([^<]*)</script>', page)
    assert match
    return json.loads(match.group(1))


@pytest.fixture
def job_id(database: Database, settings: Settings, people: People) -> int:
    """A finished job of ana's project with log, metrics, outputs and a summary."""
    return make_job_row(
        database,
        settings,
        people.project_id,
        name="resnet <b>run</b>",
        log_lines=LOG,
        points={"Train_loss": [(1, 1.0), (2, 0.5)], "Validation_acc": [(1, 0.7), (2, 0.9)]},
        outputs={"model.onnx": b"ONNX", "tensorboard/events.out": b"ev", "ckpt/last.pt": b"pt"},
        image="labyard/runner:latest",
        assigned_gpus=["0", "1"],
        gpus=2,
    )


def test_job_page_shows_panel_tabs_and_boot_data(
    clients: dict[str, WebClient], job_id: int
) -> None:
    page = clients["ana"].get(f"/jobs/{job_id}")
    assert page.status_code == 200
    text = page.text
    assert "resnet &lt;b&gt;run&lt;/b&gt;" in text and "<b>run</b>" not in text
    assert "labyard/runner:latest" in text and "(0, 1)" in text
    assert 'id="job-status">succeeded' in text
    assert "python train.py --lr 0.1" in text  # the command line (config tab)
    assert "command: python train.py" in text  # the resolved mlsteam.yml
    assert "Net(conv1: 3-&gt;16, fc: 10)" in text  # the model summary tab
    for name in ("model.onnx", "tensorboard/events.out", "ckpt/last.pt"):
        assert f'/jobs/{job_id}/files/{name}"' in text
    assert "/static/css/jobs.css" in text and "/static/vendor/uPlot.iife.min.js" in text
    assert "<script>alert(1)</script>" not in text  # log text only escaped
    boot = boot_of(text)
    assert [s["name"] for s in boot["series"]] == ["Train_loss", "Validation_acc"]
    assert boot["series"][0]["x"] == [1.0, 2.0] and boot["series"][0]["y"] == [1.0, 0.5]
    assert "log" not in boot  # the tail is rendered in the page (see the next test)
    assert text.count('<div class="ll"') == len(LOG)
    assert boot["state"]["status"] == "succeeded" and boot["state"]["final"] is True
    log_size = (job_dir(clients["ana"].app.state.settings, job_id) / "job.log").stat().st_size
    assert boot["cursor"].split(".")[0] == str(log_size)


def test_stream_sends_log_metrics_status_then_ends(
    clients: dict[str, WebClient], job_id: int
) -> None:
    response = clients["ana"].get(f"/jobs/{job_id}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [e["event"] for e in events]
    assert kinds == ["log", "metrics", "status", "end"]
    # the lines come rendered by the server's one renderer, as the page's tail is
    sent = events[0]["data"]["html"]
    log_file = job_dir(clients["ana"].app.state.settings, job_id) / "job.log"
    assert sent == lines_html(log_file.read_text().splitlines())
    assert shown_lines(sent) == [
        line.replace("\x1b[32m", "").replace("\x1b[0m", "") for line in LOG
    ]
    assert '<span class="ansi-fg-2">Train step=1 loss=1.0</span>' in sent
    assert "<script>" not in sent and "&lt;script&gt;alert(1)&lt;/script&gt;" in sent
    assert sorted(p[0] for p in events[1]["data"]["points"]) == [
        "Train_loss",
        "Train_loss",
        "Validation_acc",
        "Validation_acc",
    ]
    assert events[2]["data"]["status"] == "succeeded"
    ids = [e["id"] for e in events]
    offsets = [tuple(map(int, i.split("."))) for i in ids]
    assert offsets == sorted(offsets)  # the cursor only moves forward


def test_stream_resumes_exactly_from_last_event_id(
    clients: dict[str, WebClient], job_id: int, settings: Settings
) -> None:
    full = parse_sse(clients["ana"].get(f"/jobs/{job_id}/events").text)
    log_bytes = (job_dir(settings, job_id) / "job.log").read_bytes()
    cut = log_bytes.index(b"Train step=2")
    cut = log_bytes.rindex(b"\n", 0, cut) + 1  # the start of that line
    metric_id = int(full[1]["id"].split(".")[1]) - 1  # everything but the last point
    resumed = clients["ana"].get(
        f"/jobs/{job_id}/events", headers={"Last-Event-ID": f"{cut}.{metric_id}"}
    )
    events = parse_sse(resumed.text)
    log = [e for e in events if e["event"] == "log"]
    assert shown_lines(log[0]["data"]["html"]) == LOG[-2:]
    points = [e for e in events if e["event"] == "metrics"][0]["data"]["points"]
    assert len(points) == 1
    assert events[-1]["event"] == "end"
    # the query-string cursor works too (the page's first connection); header wins
    again = clients["ana"].get(f"/jobs/{job_id}/events?cursor={full[-1]['id']}")
    assert [e["event"] for e in parse_sse(again.text)] == ["status", "end"]


@pytest.mark.parametrize("bad", ["x.y", "-1.0", "1", "1.2.3", "9" * 50])
def test_bad_cursor_starts_from_the_beginning(
    clients: dict[str, WebClient], job_id: int, bad: str
) -> None:
    events = parse_sse(
        clients["ana"].get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": bad}).text
    )
    assert [e["event"] for e in events] == ["log", "metrics", "status", "end"]


def test_two_subscribers_each_get_every_event(clients: dict[str, WebClient], job_id: int) -> None:
    first = parse_sse(clients["ana"].get(f"/jobs/{job_id}/events").text)
    second = parse_sse(clients["rita"].get(f"/jobs/{job_id}/events").text)
    assert first[0]["data"] == second[0]["data"] and first[1]["data"] == second[1]["data"]


def test_log_download_and_search(clients: dict[str, WebClient], job_id: int) -> None:
    raw = clients["ana"].get(f"/jobs/{job_id}/log.txt")
    assert raw.status_code == 200 and "attachment" in raw.headers["content-disposition"]
    assert raw.text.count("\n") == len(LOG) and "\x1b[32mTrain step=1" in raw.text
    found = clients["ana"].get(f"/api/v1/jobs/{job_id}/log/search", params={"q": "TRAIN STEP"})
    assert found.status_code == 200
    body = found.json()
    assert [m["line"] for m in body["matches"]] == [6, 8] and body["truncated"] is False
    # each match comes rendered by the same server code as the log box's lines
    assert body["matches"][0]["html"] == lines_html([body["matches"][0]["text"]])
    assert '<span class="ansi-fg-2">Train step=1 loss=1.0</span>' in body["matches"][0]["html"]
    for bad in ("", "   ", "x" * 201):
        refused = clients["ana"].get(f"/api/v1/jobs/{job_id}/log/search", params={"q": bad})
        assert refused.status_code in (400, 422), bad


def test_output_download_and_path_traversal(
    clients: dict[str, WebClient], job_id: int, settings: Settings, tmp_path: Path
) -> None:
    ana = clients["ana"]
    ok = ana.get(f"/jobs/{job_id}/files/model.onnx")
    assert ok.status_code == 200 and ok.content == b"ONNX"
    assert ana.get(f"/jobs/{job_id}/files/ckpt/last.pt").content == b"pt"
    assert ana.get(f"/api/v1/jobs/{job_id}/files/model.onnx").content == b"ONNX"
    listing = ana.get(f"/api/v1/jobs/{job_id}/files").json()
    assert {f["path"] for f in listing["files"]} == {
        "model.onnx",
        "tensorboard/events.out",
        "ckpt/last.pt",
    }
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (job_dir(settings, job_id) / "output" / "leak").symlink_to(secret)
    (job_dir(settings, job_id) / "output" / "up").symlink_to(job_dir(settings, job_id))
    for path in (
        "../job.log",
        "..%2Fjob.log",
        "%2e%2e/job.log",
        "ckpt/../../job.log",
        "..\\job.log",
        "leak",
        "up/job.log",
        "up/lab/mlsteam.yml",
        "ckpt",
        "missing.bin",
        "model.onnx%00.txt",
    ):
        for prefix in ("", "/api/v1"):
            response = ana.get(f"{prefix}/jobs/{job_id}/files/{path}")
            assert response.status_code == 404, (prefix, path, response.status_code)
            assert b"top secret" not in response.content and b"Z starting" not in response.content


def test_permissions_on_every_job_route(
    clients: dict[str, WebClient], job_id: int, database: Database, web: WebClient
) -> None:
    routes = [
        f"/jobs/{job_id}",
        f"/jobs/{job_id}/events",
        f"/jobs/{job_id}/log.txt",
        f"/jobs/{job_id}/files/model.onnx",
        f"/api/v1/jobs/{job_id}/files",
        f"/api/v1/jobs/{job_id}/files/model.onnx",
        f"/api/v1/jobs/{job_id}/log/search?q=Train",
    ]
    for route in routes:
        assert clients["otto"].get(route).status_code == 404, route  # no existence leak
        assert clients["rita"].get(route).status_code == 200, route  # READ may look
        anonymous = web.get(route)
        assert anonymous.status_code in (303, 401), route
    missing = job_id + 1000
    assert clients["ana"].get(f"/jobs/{missing}").status_code == 404
    # READ members may not act; outsiders see nothing; nothing changes
    for action in ("stop", "retry", "delete"):
        assert clients["rita"].hx("POST", f"/jobs/{job_id}/{action}").status_code == 403
        assert clients["otto"].hx("POST", f"/jobs/{job_id}/{action}").status_code == 404
    with database.session() as db:
        assert db.query(Job).count() == 1
        assert db.get(Job, job_id).status == "succeeded"  # type: ignore[union-attr]


def test_page_actions_retry_then_delete(
    clients: dict[str, WebClient], job_id: int, database: Database, settings: Settings
) -> None:
    ana = clients["ana"]
    conflict = ana.hx("POST", f"/jobs/{job_id}/stop")
    assert conflict.status_code == 409 and "already succeeded" in conflict.text
    retried = ana.hx("POST", f"/jobs/{job_id}/retry")
    assert retried.status_code == 204
    new_id = int(retried.headers["HX-Redirect"].rsplit("/", 1)[1])
    assert ana.hx("POST", f"/jobs/{new_id}/stop").status_code == 204  # queued: stopped at once
    with database.session() as db:
        assert db.get(Job, new_id).status == "stopped"  # type: ignore[union-attr]
    deleted = ana.hx("POST", f"/jobs/{job_id}/delete")
    assert deleted.status_code == 204 and deleted.headers["HX-Redirect"].endswith("/jobs")
    assert not job_dir(settings, job_id).exists()
    assert ana.get(f"/jobs/{job_id}").status_code == 404


def test_page_without_csrf_token_is_refused(clients: dict[str, WebClient], job_id: int) -> None:
    response = clients["ana"].post(f"/jobs/{job_id}/delete")
    assert response.status_code == 403
    assert clients["ana"].get(f"/jobs/{job_id}").status_code == 200


def test_charts_are_downsampled_for_many_points(
    clients: dict[str, WebClient], database: Database, settings: Settings, people: People
) -> None:
    many = [(float(i), float(i % 97)) for i in range(20_000)]
    job = make_job_row(database, settings, people.project_id, points={"Train_loss": many})
    boot = boot_of(clients["ana"].get(f"/jobs/{job}").text)
    series = boot["series"][0]
    assert 2 <= len(series["x"]) <= settings.chart_max_points
    assert series["x"][0] == 0.0 and series["x"][-1] == 19_999.0
    assert max(series["y"]) == 96.0 and min(series["y"]) == 0.0  # spikes survive


def test_log_tail_is_rendered_escaped_with_ansi_classes(
    clients: dict[str, WebClient], database: Database, settings: Settings, people: People
) -> None:
    job = make_job_row(
        database,
        settings,
        people.project_id,
        log_lines=[
            "\x1b[1;31m<script>alert('x')</script>\x1b[0m & <b>bold</b>",
            "plain \x1b]0;title\x07line \x1b[38;5;12mblue\x1b[39m",
        ],
    )
    text = clients["ana"].get(f"/jobs/{job}").text
    log = text[text.index('<div id="log"') : text.index("</section>", text.index('id="log"'))]
    assert "<script>" not in log and "<b>" not in log and "\x1b" not in log
    assert (
        "<span class=\"ansi-fg-1 ansi-bold\">&lt;script&gt;alert('x')&lt;/script&gt;</span>"
        " &amp; &lt;b&gt;bold&lt;/b&gt;"
    ) in log
    assert 'plain line <span class="ansi-fg-12">blue</span>' in log
    assert re.search(r'<span class="ts" title="\d{4}-[^"]+Z">\d\d:\d\d:\d\d</span>', log)
    assert 'data-text="&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold' in log
    # the stream continues after the rendered tail: nothing of it is sent again
    boot = boot_of(text)
    events = parse_sse(clients["ana"].get(f"/jobs/{job}/events?cursor={boot['cursor']}").text)
    assert [e["event"] for e in events if e["event"] == "log"] == []


def test_job_page_names_its_lab_and_survives_the_labs_deletion(
    clients: dict[str, WebClient], database: Database, settings: Settings, people: People
) -> None:
    from labyard.labs.models import Lab

    with database.session() as db:
        lab = Lab(project_id=people.project_id, name="l<i>1", flavor="cpu")
        db.add(lab)
        db.flush()
        lab_id = lab.id
    job = make_job_row(database, settings, people.project_id, lab_id=lab_id)
    text = clients["ana"].get(f"/jobs/{job}").text
    assert f'<a href="/labs/{lab_id}">l&lt;i&gt;1</a>' in text
    with database.session() as db:
        db.delete(db.get(Lab, lab_id))
    text = clients["ana"].get(f"/jobs/{job}").text
    assert f"deleted lab #{lab_id}" in text
