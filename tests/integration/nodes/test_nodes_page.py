"""The Nodes API without a cluster: this server is the one node, with its GPUs and the
live jobs the scheduler placed on it (tests/integration/slurm/test_slurm_nodes.py: Slurm)."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient

from labyard.app import create_app
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.models import Job
from tests.factories import access_token_for, auth


def test_without_a_cluster_the_node_is_this_server(settings: Settings, database: Database) -> None:
    settings.gpus = "0,1"
    app = create_app(settings, database=database)
    with database.session() as db:
        admin = db.query(service.User).filter_by(username="admin").one()
        held = Job(project_id=admin.default_project_id, name="held", params={}, command=["x"])
        held.flavor, held.status, held.assigned_gpus, held.executor = (
            "cpu",
            "running",
            ["1"],
            "local",
        )
        db.add(held)
    with TestClient(app) as client:
        body = client.get("/api/v1/nodes", headers=auth(access_token_for(app, database, admin)))
    [node] = body.json()["nodes"]
    assert (body.json()["executor"], node["name"], node["state"]) == (
        "local",
        socket.gethostname(),
        "up",
    )
    assert (node["gpus"], node["gpus_used"]) == (2, 1)
    assert [j["name"] for j in node["jobs"]] == ["held"]
