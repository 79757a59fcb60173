"""Fixtures of the weights tests: a project with an owner (ana), a WRITE (walt) and a READ
(rita) member and an outsider (eve), their API clients, and a finished job whose output
holds what the classification template writes (model.onnx, model.pt, the test report)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.projects.models import Membership, Role
from tests.factories import access_token_for, auth, make_job_row, make_users_fast

# fixtures of other domains' tests used here: a live server and the client, the scheduler,
# Docker settings, a labs world
from tests.integration.cli.conftest import cli, server  # noqa: F401
from tests.integration.jobs.conftest import flavors, make_scheduler  # noqa: F401
from tests.integration.jobs.test_docker_jobs import docker_settings  # noqa: F401
from tests.integration.labs.conftest import world  # noqa: F401


def tiny_onnx(channels: int = 3, size: int = 8, classes: int = 2) -> bytes:
    """A real ONNX model: input [N, C, S, S] -> logits [N, classes] (flatten, matmul)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(
        np.zeros((channels * size * size, classes), dtype=np.float32), "w"
    )
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "tiny",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["batch", channels, size, size]
            )
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def fake_torch_zip() -> bytes:
    """Bytes shaped like torch.save's zip (never loaded by the server)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
    return buffer.getvalue()


OUTPUTS = {
    "model.onnx": tiny_onnx(),
    "model.pt": fake_torch_zip(),
    "confusion_matrix.json": json.dumps({"accuracy": 0.9, "classes": ["cat", "dog"]}).encode(),
    "notes.txt": b"not a model",
    "broken.onnx": b"garbage\x00\xff\x12",
    "empty.onnx": b"",
    "saved_model/saved_model.pb": b"\x08\x01",
    "saved_model/variables/variables.index": b"idx",
}
POINTS = {"Validation_acc": [(1, 0.5), (2, 0.875)], "Train_loss": [(1, 1.0), (2, 0.25)]}


@pytest.fixture
def people(database: Database) -> dict[str, User]:
    """ana owns the project; rita reads, walt writes; eve is not a member."""
    users = make_users_fast(database, "ana", "rita", "walt", "eve")
    with database.session() as db:
        project = users["ana"].default_project_id
        db.add(Membership(project_id=project, user_id=users["rita"].id, role=Role.READ))
        db.add(Membership(project_id=project, user_id=users["walt"].id, role=Role.WRITE))
    return users


@pytest.fixture
def project(people: dict[str, User]) -> int:
    project_id = people["ana"].default_project_id
    assert project_id is not None
    return project_id


@pytest.fixture
def job(database: Database, settings: Settings, project: int) -> int:
    """A succeeded classification job of the project, trained on dataset 'digits'."""
    return make_job_row(
        database,
        settings,
        project,
        outputs=OUTPUTS,
        points=POINTS,
        params={"framework": "pytorch", "network": "lenet", "image_size": 8},
        datasets=[{"dataset_id": None, "name": "digits", "host_path": "/nowhere"}],
    )


def client_of(app: FastAPI, database: Database, user: User) -> Iterator[Any]:
    headers = auth(access_token_for(app, database, user))
    with TestClient(app) as client:
        client.headers.update(headers)
        yield client


@pytest.fixture
def walt(app: FastAPI, database: Database, people: dict[str, User]) -> Iterator[Any]:
    yield from client_of(app, database, people["walt"])


@pytest.fixture
def ana(app: FastAPI, database: Database, people: dict[str, User]) -> Iterator[Any]:
    yield from client_of(app, database, people["ana"])


@pytest.fixture
def rita(app: FastAPI, database: Database, people: dict[str, User]) -> Iterator[Any]:
    yield from client_of(app, database, people["rita"])


@pytest.fixture
def eve(app: FastAPI, database: Database, people: dict[str, User]) -> Iterator[Any]:
    yield from client_of(app, database, people["eve"])
