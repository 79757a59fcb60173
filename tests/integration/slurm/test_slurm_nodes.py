"""The Nodes page and /api/v1/nodes on the Slurm cluster: its nodes with their GPUs, state
and the jobs running there (names only for jobs the caller may see)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labyard.app import create_app
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.scheduler import Scheduler
from tests.factories import access_token_for, auth, make_users_fast, session_client
from tests.integration.jobs.conftest import all_final, run_until, write_lab
from tests.integration.jobs.test_local_jobs import submit
from tests.slurm_cluster import SlurmCluster


@pytest.mark.usefixtures("slurm_flavors")
def test_the_nodes_show_the_clusters_gpus_and_who_runs_where(
    database: Database, slurm_settings: Settings, tmp_path: Path, make_slurm_scheduler,
    cluster: SlurmCluster,
) -> None:  # fmt: skip
    lab = write_lab(tmp_path / "lab", params="  mode: [wait]\n  n: [1, 2]\n")
    ids = submit(database, slurm_settings, lab, flavor="s3", inventory=None)
    scheduler: Scheduler = make_slurm_scheduler()
    jobs = run_until(scheduler, database, lambda js: all(j.status == "running" for j in js))
    where = {j.node: j for j in jobs}
    assert set(where) == set(cluster.nodes)
    bob = make_users_fast(database, "bob")["bob"]
    app = create_app(slurm_settings, database=database)
    with database.session() as db:
        ana = db.query(service.User).filter_by(username="ana").one()
    with TestClient(app) as client:
        body = client.get("/api/v1/nodes", headers=auth(access_token_for(app, database, ana)))
        assert body.status_code == 200
        nodes = {n["name"]: n for n in body.json()["nodes"]}
        assert body.json()["executor"] == "slurm" and set(nodes) == set(cluster.nodes)
        for name, job in where.items():
            node = nodes[name]
            assert (node["gpus"], node["gpus_used"], node["state"]) == (4, 3, "mixed")
            assert node["jobs"] == [{"id": job.id, "name": job.name, "gpus": job.assigned_gpus}]
            assert node["other_jobs"] == 0 and "main" in node["partitions"]
        theirs = client.get("/api/v1/nodes", headers=auth(access_token_for(app, database, bob)))
        assert {n["name"]: (n["jobs"], n["other_jobs"]) for n in theirs.json()["nodes"]} == {
            name: ([], 1) for name in cluster.nodes
        }
    with session_client(app, database, ana) as browser:
        page = browser.get("/nodes")
        assert page.status_code == 200
        for name, job in where.items():
            assert f'data-node="{name}"' in page.text and f'href="/jobs/{job.id}"' in page.text
    for job_id in ids:
        (service.job_dir(slurm_settings, job_id) / "output" / "go").touch()
    assert [j.status for j in run_until(scheduler, database, all_final)] == ["succeeded"] * 2
