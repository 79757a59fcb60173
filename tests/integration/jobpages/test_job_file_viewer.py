"""The file viewer on a job's outputs: each file type as the files tab shows it (image
inline, CSV table, pretty JSON, safe Markdown, numbered text, binary download only), bounded
previews of huge files, and path safety and permissions on the view and raw routes."""

from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.service import job_dir
from labyard.web import viewer
from tests.factories import WebClient, make_job_row
from tests.integration.jobpages.conftest import People


def png(width: int, height: int) -> bytes:
    """A real PNG of the given size."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


README = b"""# Results <script>alert('readme')</script>

<img src=x onerror=alert(1)>

[safe](https://example.org/a) [bad](javascript:alert(2)) [bad2](JaVaScRiPt:alert(3))
[rel](docs/more.md) [data](data:text/html;base64,PHNjcmlwdD4=)
"""
OUTPUTS = {
    "confusion_matrix.png": png(640, 480),
    "digit.png": png(32, 32),
    "metrics.csv": b"epoch,note\n1,<b>bold</b>\n2,plain\n",
    "summary.json": b'{"acc": 0.9, "classes": ["<i>cat</i>", "dog"]}',
    "README.md": README,
    "notes.txt": b"first line\nsecond <line>\nthird\n",
    "model.bin": b"\x00\x01\x02ONNX\x00",
    "evil.svg": b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    "big.log": b"".join(b"line %07d\n" % i for i in range(200_000)),  # ~2.6 MB
}


@pytest.fixture
def job_id(database: Database, settings: Settings, people: People) -> int:
    """A finished job of ana's project with one output of every kind."""
    return make_job_row(database, settings, people.project_id, outputs=OUTPUTS)


def view(client: WebClient, job_id: int, path: str) -> str:
    """The viewer fragment of one output, as the files tab loads it."""
    response = client.hx("GET", f"/jobs/{job_id}/view/{path}")
    assert response.status_code == 200, response.text
    assert "<html" not in response.text  # a fragment, not a page
    return str(response.text)


def cells(fragment: str, tag: str) -> list[str]:
    """The unescaped text of each `tag` cell of a fragment."""
    name = tag.split()[0]
    pattern = rf"<{tag}(?:\s[^>]*)?>(.*?)</{name}>"
    return [html.unescape(c) for c in re.findall(pattern, fragment)]


def test_files_tab_links_each_output_to_the_viewer(
    clients: dict[str, WebClient], job_id: int
) -> None:
    page = clients["ana"].get(f"/jobs/{job_id}").text
    assert 'id="job-file-view"' in page and "/static/css/viewer.css" in page
    assert f'hx-get="/jobs/{job_id}/view/confusion_matrix.png"' in page
    assert f'href="/jobs/{job_id}/files/confusion_matrix.png" download' in page


def test_image_inline_from_the_raw_route(clients: dict[str, WebClient], job_id: int) -> None:
    ana = clients["ana"]
    fragment = view(ana, job_id, "confusion_matrix.png")
    assert f'<img src="/jobs/{job_id}/raw/confusion_matrix.png"' in fragment
    assert 'width="640" height="480"' in fragment and "pixelated" not in fragment
    raw = ana.get(f"/jobs/{job_id}/raw/confusion_matrix.png")
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png"
    assert raw.content == OUTPUTS["confusion_matrix.png"]
    assert f'href="/jobs/{job_id}/files/confusion_matrix.png"' in fragment
    small = view(ana, job_id, "digit.png")  # 32x32 scaled by a whole factor, pixelated
    assert 'width="384" height="384" class="pixelated"' in small


def test_raw_route_serves_raster_images_only(clients: dict[str, WebClient], job_id: int) -> None:
    ana = clients["ana"]
    for path in ("evil.svg", "README.md", "notes.txt"):
        refused = ana.get(f"/jobs/{job_id}/raw/{path}")
        assert refused.status_code == 404, path
        assert "alert(1)" not in refused.text and "Only images are shown inline" in refused.text
        assert refused.headers["content-type"].startswith("text/html")


def test_csv_is_a_table_with_cells_as_text(clients: dict[str, WebClient], job_id: int) -> None:
    fragment = view(clients["ana"], job_id, "metrics.csv")
    assert 'class="viewer-table"' in fragment
    assert "<b>bold</b>" not in fragment and "&lt;b&gt;bold&lt;/b&gt;" in fragment
    assert cells(fragment, "th") == ["epoch", "note"]
    assert cells(fragment, "td") == ["1", "<b>bold</b>", "2", "plain"]


def test_json_pretty_printed(clients: dict[str, WebClient], job_id: int) -> None:
    fragment = view(clients["ana"], job_id, "summary.json")
    code = cells(fragment, 'td class="code"')
    expected = json.dumps(json.loads(OUTPUTS["summary.json"]), indent=2).splitlines()
    assert code == expected and len(code) == 7
    assert "<i>cat</i>" not in fragment


def test_markdown_rendered_without_raw_html_or_unsafe_links(
    clients: dict[str, WebClient], job_id: int
) -> None:
    fragment = view(clients["ana"], job_id, "README.md")
    assert "<h1>Results &lt;script&gt;alert('readme')&lt;/script&gt;</h1>" in fragment
    assert "<script" not in fragment and "<img src=x" not in fragment
    assert "&lt;img src=x onerror=alert(1)&gt;" in fragment  # shown as text
    assert '<a href="https://example.org/a">safe</a>' in fragment
    assert '<a href="docs/more.md">rel</a>' in fragment
    assert 'href="javascript' not in fragment.lower() and 'href="data:' not in fragment
    assert "[bad](javascript:alert(2))" in html.unescape(fragment)  # left as plain text


def test_text_with_line_numbers(clients: dict[str, WebClient], job_id: int) -> None:
    fragment = view(clients["ana"], job_id, "notes.txt")
    assert cells(fragment, 'td class="ln"') == ["1", "2", "3"]
    assert cells(fragment, 'td class="code"') == ["first line", "second <line>", "third"]
    assert "second <line>" not in fragment


def test_binary_gets_a_download_link_only(clients: dict[str, WebClient], job_id: int) -> None:
    fragment = view(clients["ana"], job_id, "model.bin")
    assert 'data-kind="binary"' in fragment and "not text" in fragment
    assert f'href="/jobs/{job_id}/files/model.bin"' in fragment
    assert "viewer-code" not in fragment and "ONNX" not in fragment


def test_huge_file_truncated_with_a_note(clients: dict[str, WebClient], job_id: int) -> None:
    fragment = view(clients["ana"], job_id, "big.log")
    numbers = cells(fragment, 'td class="ln"')
    shown_bytes = len(numbers) * len(b"line 0000000\n")
    assert 0 < shown_bytes <= viewer.PREVIEW_BYTES and len(numbers) < 200_000
    last = cells(fragment, 'td class="code"')[-1]
    assert last == f"line {len(numbers) - 1:07d}"  # whole lines only
    assert "Only the first 512.0 KiB of 2.5 MiB are shown." in fragment
    assert f'href="/jobs/{job_id}/files/big.log"' in fragment  # the whole file


def test_huge_csv_and_json_are_bounded(
    clients: dict[str, WebClient], database: Database, settings: Settings, people: People
) -> None:
    rows = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(10_000))
    wide = b",".join(b"c%d" % i for i in range(80)) + b"\n"
    big_json = b"[" + b",".join(b"%d" % i for i in range(600_000)) + b"]"  # > 2 MiB
    job = make_job_row(
        database,
        settings,
        people.project_id,
        outputs={
            "rows.csv": rows,
            "wide.csv": wide,
            "big.json": big_json,
            "broken.json": b'{"a": <b>',
            "deep.json": b"[" * 50_000 + b"]" * 50_000,
        },
    )
    ana = clients["ana"]
    table = view(ana, job, "rows.csv")
    assert len(cells(table, "td")) == 2 * viewer.CSV_ROWS
    assert f"Only the first {viewer.CSV_ROWS} rows are shown." in table
    columns = view(ana, job, "wide.csv")
    assert len(cells(columns, "th")) == viewer.CSV_COLUMNS and "first 50 columns" in columns
    raw_json = view(ana, job, "big.json")
    assert 'data-kind="text"' in raw_json and "Only the first 512.0 KiB" in raw_json
    broken = view(ana, job, "broken.json")
    assert "Not valid JSON (Expecting value, line 1); shown as text." in broken
    assert cells(broken, 'td class="code"') == ['{"a": <b>']
    deep = view(ana, job, "deep.json")
    assert "cannot be pretty-printed" in deep and 'data-kind="text"' in deep


def test_outside_the_output_folder_refused(
    clients: dict[str, WebClient], job_id: int, settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    output = job_dir(settings, job_id) / "output"
    (output / "leak.txt").symlink_to(secret)
    (output / "leak.png").symlink_to(secret)
    ana = clients["ana"]
    for path in ("leak.txt", "leak.png", "../job.log", "%2e%2e/job.log", "../lab/mlsteam.yml"):
        for route in ("view", "raw"):
            refused = ana.get(f"/jobs/{job_id}/{route}/{path}")
            assert refused.status_code == 404, (route, path)
            assert "TOP SECRET" not in refused.text and "starting" not in refused.text
    assert secret.read_text() == "TOP SECRET"


def test_permissions_on_view_and_raw(clients: dict[str, WebClient], job_id: int) -> None:
    assert "first line" in view(clients["rita"], job_id, "notes.txt")  # READ member
    for route in ("view/notes.txt", "raw/digit.png"):
        refused = clients["otto"].get(f"/jobs/{job_id}/{route}")
        assert refused.status_code == 404 and "first line" not in refused.text
    page = clients["ana"].get(f"/jobs/{job_id}/view/notes.txt")  # a link opened directly
    assert page.status_code == 200 and "<html" in page.text and "first line" in page.text
