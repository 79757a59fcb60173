"""The labs pages: lists, "Create New" with the name rule inline, the tabs, htmx actions."""

from __future__ import annotations

from sqlalchemy import func, select

from labyard.labs.models import Lab
from labyard.labs.service import LAB_NAME_RULE, lab_dir
from tests.integration.labs.conftest import LabWorld


def test_create_new_from_template_then_tabs(world: LabWorld) -> None:
    with world.web_for(world.owner) as web:
        page = web.get(f"/projects/{world.project_id}/labs")
        assert (
            page.status_code == 200
            and "Create New" in page.text
            and "Image Classification" in page.text
        )
        form = {
            "project_id": world.project_id,
            "name": "cls",
            "use_template": "1",
            "template": "classification",
        }
        created = web.hx("POST", "/labs", data=form)
        assert created.status_code == 204
        target = created.headers["hx-redirect"]
        lab_id = int(target.split("/")[2])
        assert target == f"/labs/{lab_id}/files"
        for tab in ("files", "datasets", "parameters", "config", "jobs"):
            response = web.get(f"/labs/{lab_id}/{tab}")
            assert response.status_code == 200, tab
            assert 'aria-current="page">' + tab.capitalize() in response.text
        assert "/mlsteam/input/digits" in web.get(f"/labs/{lab_id}/datasets").text
        params = web.get(f"/labs/{lab_id}/parameters").text
        assert 'data-chips="network"' in params and "1</strong> job will be created" in params
        listing = web.get("/labs").text
        assert "cls" in listing and "digits" in listing
        assert (
            f'href="/projects/{world.project_id}/labs"'
            in web.get(f"/projects/{world.project_id}").text
        )


def test_bad_name_shows_the_rule_inline_and_creates_nothing(world: LabWorld) -> None:
    with world.web_for(world.owner) as web:
        response = web.hx(
            "POST", "/labs", data={"project_id": world.project_id, "name": "far-too-long-name"}
        )
    assert response.status_code == 200
    assert 'class="form-error">' + LAB_NAME_RULE.replace("'", "&#39;") in response.text
    assert 'value="far-too-long-name"' in response.text
    with world.database.session() as db:
        assert db.scalar(select(func.count()).select_from(Lab)) == 0


def test_blank_lab_from_page_and_files_actions(world: LabWorld) -> None:
    with world.web_for(world.owner) as web:
        created = web.hx(
            "POST", "/labs", data={"project_id": world.project_id, "name": "blank", "flavor": "cpu"}
        )
        lab_id = int(created.headers["hx-redirect"].split("/")[2])
        root = lab_dir(world.settings, lab_id)
        made = web.hx("POST", f"/labs/{lab_id}/files/new", data={"folder": "", "name": "<b>x.py"})
        assert made.status_code == 204 and (root / "<b>x.py").is_file()
        page = web.get(f"/labs/{lab_id}/files", params={"file": "<b>x.py"}).text
        assert "<b>x.py" not in page and "&lt;b&gt;x.py" in page
        saved = web.hx(
            "POST", f"/labs/{lab_id}/files/save", data={"path": "<b>x.py", "content": "print(2)\n"}
        )
        assert saved.status_code == 200 and "Saved" in saved.text
        assert (root / "<b>x.py").read_text() == "print(2)\n"
        again = web.hx("POST", f"/labs/{lab_id}/files/new", data={"folder": "", "name": "main.py"})
        assert again.status_code == 409 and (root / "main.py").read_text().startswith("print")
        web.hx("POST", f"/labs/{lab_id}/files/rename", data={"path": "<b>x.py", "new_path": "y.py"})
        web.hx("POST", f"/labs/{lab_id}/files/delete", data={"path": "y.py"})
        assert sorted(p.name for p in root.iterdir()) == ["main.py", "mlsteam.yml"]


def test_attach_by_name_with_suggestions_then_detach(world: LabWorld) -> None:
    lab = world.create_lab("ds")
    with world.web_for(world.owner) as web:
        suggest = web.hx("GET", f"/labs/{lab['id']}/datasets/suggest", params={"name": "dig"})
        assert '<option value="digits">' in suggest.text
        attached = web.hx("POST", f"/labs/{lab['id']}/datasets", data={"name": "digits"})
        assert attached.status_code == 200 and "/mlsteam/input/digits" in attached.text
        suggest = web.hx("GET", f"/labs/{lab['id']}/datasets/suggest", params={"name": "dig"})
        assert "digits" not in suggest.text
        missing = web.hx("POST", f"/labs/{lab['id']}/datasets", data={"name": "nope"})
        assert missing.status_code == 404 and "No dataset named" in missing.text
        dataset_id = world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers).json()[
            "datasets"
        ][0]["dataset_id"]
        detached = web.hx("POST", f"/labs/{lab['id']}/datasets/{dataset_id}/detach")
        assert "No datasets attached." in detached.text


def test_submit_from_page_lands_on_jobs(world: LabWorld) -> None:
    lab = world.create_lab("cls", template="classification")
    form = {"param.network": ["lenet", "resnet18"], "param.batch_size": "32, 64"}
    with world.web_for(world.owner) as web:
        count = web.hx("POST", f"/labs/{lab['id']}/parameters/count", data=form)
        assert "<strong>4</strong> jobs will be created" in count.text
        review = web.hx("POST", f"/labs/{lab['id']}/parameters/review", data=form)
        assert review.status_code == 200 and "Confirm 4 jobs" in review.text
        submitted = web.hx("POST", f"/labs/{lab['id']}/sweeps", data={**form, "flavor": "cpu"})
        assert submitted.headers["hx-redirect"] == f"/labs/{lab['id']}/jobs"
        jobs = web.get(f"/labs/{lab['id']}/jobs").text
    assert jobs.count('<tr data-job="') == 4 and "network=resnet18" in jobs
    labs = world.api.get("/api/v1/labs", headers=world.owner_headers).json()
    assert labs[0]["job_counts"] == {"queued": 4}


def test_templates_page_and_delete(world: LabWorld) -> None:
    lab = world.create_lab("gone")
    with world.web_for(world.owner) as web:
        catalog = web.get("/templates").text
        assert "Use template" in catalog and "/labs?template=classification" in catalog
        prefilled = web.get("/labs", params={"template": "classification"}).text
        assert 'name="use_template" value="1" data-template-toggle checked' in prefilled
        deleted = web.hx("POST", f"/labs/{lab['id']}/delete")
        assert deleted.headers["hx-redirect"] == f"/projects/{world.project_id}/labs"
    assert not lab_dir(world.settings, lab["id"]).exists()
