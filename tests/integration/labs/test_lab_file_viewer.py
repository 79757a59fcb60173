"""The file viewer on a lab's files: README.md rendered safely (also when the folder is
opened), images inline, code still in the editor, downloads, path safety, permissions."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from labyard.labs.service import lab_dir
from labyard.projects.models import Role
from tests.integration.labs.conftest import LabWorld

README = (
    "# My lab\n\n<script>alert('x')</script>\n\n[go](javascript:alert(1)) [ok](https://a.org)\n"
)


def _lab_with_files(world: LabWorld) -> tuple[int, Path]:
    lab_id = int(world.create_lab("viewer")["id"])
    root = lab_dir(world.settings, lab_id)
    (root / "README.md").write_text(README)
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 128).save(buffer, "PNG")
    (root / "sample.png").write_bytes(buffer.getvalue())
    (root / "table.csv").write_text("k,v\n<b>a</b>,1\n")
    return lab_id, root


def test_readme_renders_safely_when_chosen_and_on_the_folder(world: LabWorld) -> None:
    lab_id, _ = _lab_with_files(world)
    with world.web_for(world.owner) as web:
        for params in ({"file": "README.md"}, {}):
            page = web.get(f"/labs/{lab_id}/files", params=params)
            assert page.status_code == 200
            text = page.text
            assert "<h1>My lab</h1>" in text and "/static/css/viewer.css" in text
            assert "&lt;script&gt;alert('x')&lt;/script&gt;" in text
            assert "<script>alert('x')" not in text and 'href="javascript' not in text
            assert '<a href="https://a.org">ok</a>' in text
            assert f'href="/labs/{lab_id}/files/download?path=README.md"' in text
        edit = web.get(f"/labs/{lab_id}/files", params={"file": "README.md", "edit": "1"}).text
        assert "data-code-editor" in edit and "&lt;script&gt;" in edit and "<h1>My lab" not in edit
        code = web.get(f"/labs/{lab_id}/files", params={"file": "mlsteam.yml"}).text
        assert "data-code-editor" in code and 'class="viewer"' not in code


def test_image_inline_csv_table_and_download(world: LabWorld) -> None:
    lab_id, root = _lab_with_files(world)
    with world.web_for(world.owner) as web:
        page = web.get(f"/labs/{lab_id}/files", params={"file": "sample.png"}).text
        assert f'<img src="/labs/{lab_id}/files/raw?path=sample.png"' in page
        assert 'width="364" height="364" class="pixelated"' in page
        raw = web.get(f"/labs/{lab_id}/files/raw", params={"path": "sample.png"})
        assert raw.status_code == 200 and raw.headers["content-type"] == "image/png"
        assert raw.content == (root / "sample.png").read_bytes()
        table = web.get(f"/labs/{lab_id}/files", params={"file": "table.csv"}).text
        assert "<td>&lt;b&gt;a&lt;/b&gt;</td>" in table and "<b>a</b>" not in table
        got = web.get(f"/labs/{lab_id}/files/download", params={"path": "README.md"})
        assert got.status_code == 200 and got.text == README
        assert got.headers["content-disposition"].startswith("attachment")
        html = web.get(f"/labs/{lab_id}/files/raw", params={"path": "README.md"})
        assert html.status_code == 404 and "<h1>My lab" not in html.text


def test_outside_the_lab_refused_and_nothing_leaks(world: LabWorld, tmp_path: Path) -> None:
    lab_id, root = _lab_with_files(world)
    secret = tmp_path / "secret.md"
    secret.write_text("# TOP SECRET")
    (root / "leak.md").symlink_to(secret)
    with world.web_for(world.owner) as web:
        for path in ("leak.md", "../secret.md", "../../etc/passwd", "/etc/passwd"):
            page = web.get(f"/labs/{lab_id}/files", params={"file": path})
            assert page.status_code == 200 and "No such file" in page.text, path
            assert "TOP SECRET" not in page.text
            for route in ("raw", "download"):
                refused = web.get(f"/labs/{lab_id}/files/{route}", params={"path": path})
                assert refused.status_code == 404 and "TOP SECRET" not in refused.text
    assert secret.read_text() == "# TOP SECRET"


def test_read_members_view_outsiders_do_not(world: LabWorld) -> None:
    lab_id, _ = _lab_with_files(world)
    with world.web_for(world.other) as web:
        for url in ("/files?file=README.md", "/files/download?path=README.md"):
            refused = web.get(f"/labs/{lab_id}{url}")
            assert refused.status_code == 404 and "My lab" not in refused.text
    world.add_member(world.other, Role.READ)
    with world.web_for(world.other) as web:
        page = web.get(f"/labs/{lab_id}/files", params={"file": "README.md"}).text
        assert "<h1>My lab</h1>" in page and "edit=1" not in page  # no Edit for READ
