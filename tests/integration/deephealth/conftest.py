"""Fixtures of the DeepHealth API tests: the app with a registered client id, a user with a
DeepHealth token, and a cheap lab script that prints progress the way the templates do."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.app import create_app
from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.labs import files as lab_files
from labyard.labs.models import Lab
from tests.factories import PASSWORD, make_users_fast

CLIENT_ID = "dh-frontend-test-client"
# A stand-in for train.py: the template's params as flags, its metric and progress lines,
# then it waits to be stopped (so the test can poll a running job and stop it).
TINY_TRAIN = """\
import argparse, os, time
parser = argparse.ArgumentParser()
for name in ("network", "num_epoch", "batch_size", "lr", "image_size", "weights"):
    parser.add_argument("--" + name)
args = parser.parse_args()
print("Reading dataset", sorted(os.listdir(os.environ["MLSTEAM_INPUT_DIR"])), flush=True)
if args.weights:
    mounted = os.path.join(os.environ["MLSTEAM_WEIGHTS_DIR"], args.weights)
    print("Weights", sorted(os.listdir(mounted)), flush=True)
print("ARGS", args.network, args.num_epoch, args.batch_size, args.lr, args.image_size, flush=True)
if args.network == "resnet18":  # the tests' failing run
    print("Reading failed: no such image", flush=True)
    raise SystemExit(3)
with open(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "model.onnx"), "wb") as fh:
    fh.write(b"not really a model")
epochs, batches = int(args.num_epoch), 4
for batch in range(1, batches + 1):
    print(f"Train step={batch} loss={1.0 / batch:.4f} acc={batch / 10:.2f}", flush=True)
    print(f"Progress epoch=1/{epochs} step={batch}/{batches}", flush=True)
while True:
    time.sleep(0.05)
"""
TINY_CONFIG = f"""\
command: {shlex.quote(sys.executable)} tiny_train.py
params:
  network: [lenet]
  num_epoch: 10
  batch_size: 64
  lr: 0.05
  image_size: 32
params_definition:
  network: {{options: [lenet, resnet18, resnet50, vgg16, vgg16_bn, mobilenet_v2]}}
"""
# A lab that fine-tunes declares a `type: weights` param (its value names registered weights).
WEIGHTS_PARAM = "  weights: {type: weights}\n"


@dataclass
class DeepHealthWorld:
    """The app, a plain HTTP client, and two users of it."""

    app: FastAPI
    database: Database
    settings: Settings
    http: TestClient
    owner: User
    other: User

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        """Log in as DeepHealth's front-end does; the bearer header of the token."""
        response = self.http.post(
            "/backend/auth/token/",
            data={
                "grant_type": "password",
                "username": username,
                "password": password,
                "client_id": CLIENT_ID,
            },
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def make_cheap(self, lab_id: int, *, weights: str = "") -> None:
        """Replace the lab's training code with the tiny stand-in (declaring a `weights`
        param whose value is `weights`, when given)."""
        with self.database.session() as db:
            lab = db.get(Lab, lab_id)
            assert lab is not None
            root = lab_files.lab_root(self.settings, lab)
        (root / "tiny_train.py").write_text(TINY_TRAIN)
        config = TINY_CONFIG
        if weights:
            config = config.replace(
                "params_definition:\n",
                f"  weights: [{weights}]\nparams_definition:\n{WEIGHTS_PARAM}",
            )
        (root / "mlsteam.yml").write_text(config)

    def count(self, model: type[Any]) -> int:
        """Rows of a table."""
        with self.database.session() as db:
            return db.query(model).count()


@pytest.fixture
def dh_app(settings: Settings, database: Database) -> FastAPI:
    """The app with one registered DeepHealth client."""
    registered = settings.model_copy(update={"deephealth_client_ids": f" other-id ,{CLIENT_ID}"})
    return create_app(registered, database=database)


@pytest.fixture
def dh(dh_app: FastAPI, database: Database) -> Iterator[DeepHealthWorld]:
    """The DeepHealth tests' starting point."""
    users = make_users_fast(database, "dhtest", "stranger")
    with TestClient(dh_app) as http:
        yield DeepHealthWorld(
            dh_app, database, dh_app.state.settings, http, users["dhtest"], users["stranger"]
        )
