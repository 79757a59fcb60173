"""Benchmark of inference jobs (a script, not a test).

    python -m tests.bench inference [--images 20000] [--size 32]

images/s of an inference job (POST /api/v1/weights/{id}/inference's service call, run by
the scheduler with the local executor: the classification template's predict.py over a
dataset of digit PNGs, writing predictions.csv) against model.onnx run directly with
onnxruntime on the same images in the same process (PIL decode + resize included, batches
of 128, as predict.py reads them). Reports the job's run (started -> finished) and end to
end (submit -> succeeded, the scheduler's ticks and Python + torch start included).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from labyard.auth.models import User
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.db import Database
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from labyard.seed.digits import write_digits_dataset
from labyard.weights import inference, register
from tests.factories import make_job_row, make_users_fast

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab_templates" / "classification"))
sys.dont_write_bytecode = True

import torch  # noqa: E402
from cls import data, export, models  # noqa: E402

CLASSES = [str(d) for d in range(10)]


def setup(root: Path) -> tuple[Settings, Database, int]:
    settings = Settings(
        data_dir=root / "data", secret_key="x" * 40, start_scheduler=False, executor="local"
    )
    migrate(settings)
    database = Database(settings.resolved_database_url)
    seed(settings, database)
    return settings, database, make_users_fast(database, "ana")["ana"].id


def write_model(folder: Path, size: int) -> dict[str, bytes]:
    """model.pt + model.onnx of a LeNet on 1 x size x size images, 10 classes."""
    torch.manual_seed(0)
    model = models.Classifier(models.build_network("lenet", 1, 10, size), [0.5], [0.25]).eval()
    meta = export.model_meta(
        network="lenet", in_channels=1, classes=CLASSES, image_size=size,
        mean=[0.5], std=[0.25], args={},
    )  # fmt: skip
    export.save_model(folder / "model.pt", model, meta)
    export.export_onnx(model, folder / "model.onnx", 1, size)
    (folder / "confusion_matrix.json").write_text(json.dumps({"classes": CLASSES}))
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def fill(folder: Path, source: Path, count: int) -> None:
    """`count` PNGs under folder/<class>/, copied round-robin from the digits dataset."""
    images = sorted(source.rglob("*.png"))
    for i in range(count):
        image = images[i % len(images)]
        target = folder / image.parent.name / f"{i}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, target)


def onnx_rate(onnx_file: Path, root: Path, size: int) -> float:
    """images/s of onnxruntime on every image under root (decode included)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    paths = data.list_images(root)
    for i in range(0, len(paths), 128):
        x = (data.load_batch(paths[i : i + 128], 1, size).float() / 255.0).numpy()
        np.asarray(session.run(None, {"input": x})[0]).argmax(1)
    return len(paths) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings, database, user_id = setup(root)
        write_digits_dataset(root / "digits")
        (root / "model").mkdir()
        outputs = write_model(root / "model", args.size)
        with database.session() as db:
            project = db.get(User, user_id).default_project_id  # type: ignore[union-attr]
        assert project is not None
        job = make_job_row(database, settings, project, outputs=outputs)
        db = database.sessionmaker()
        try:
            user = db.get(User, user_id)
            assert user is not None
            weights = register.register_weights(db, settings, user=user, job_id=job, name="w")
            ds = datasets_service.create_dataset(
                db, settings, user=user, name="bench", project_id=project
            )
            db.commit()
            weights_id, ds_id = weights.id, ds.id
            folder = datasets_service.dataset_dir(settings, ds)
        finally:
            db.close()
        fill(folder, root / "digits", args.images)
        direct = onnx_rate(root / "model" / "model.onnx", folder, args.size)
        start = time.perf_counter()
        db = database.sessionmaker()
        try:
            user = db.get(User, user_id)
            assert user is not None
            job_id = inference.submit_inference(
                db, settings, user=user, weights_id=weights_id, dataset_id=ds_id
            ).id
            db.commit()
        finally:
            db.close()
        scheduler = Scheduler(
            settings, database, inventory=Inventory(gpus=(), cpus=4, memory_mb=8192)
        )
        while True:
            scheduler.tick()
            with database.session() as db:
                row = db.get(Job, job_id)
                assert row is not None
                if row.status in FINAL_STATUSES:
                    status, run = row.status, (row.finished_at - row.started_at).total_seconds()  # type: ignore[operator]
                    break
            time.sleep(0.05)
        end_to_end = time.perf_counter() - start
        assert status == "succeeded", status
        lines = (
            settings.data_dir / "jobs" / str(job_id) / "output" / "predictions.csv"
        ).read_text()
        assert len(lines.splitlines()) == args.images + 1
        direct_again = onnx_rate(root / "model" / "model.onnx", folder, args.size)
        base = max(direct, direct_again)
        print(f"{args.images} images {args.size}x{args.size}, LeNet, CPU")
        job_rate, e2e_rate = args.images / run, args.images / end_to_end
        print(f"onnxruntime directly:       {base:9.0f} images/s")
        print(f"inference job (run):        {job_rate:9.0f} images/s  ratio {job_rate / base:.2f}")
        print(f"inference job (end to end): {e2e_rate:9.0f} images/s  ratio {e2e_rate / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
