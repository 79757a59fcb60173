"""The tensorboard JSON API: open (or reuse), list, get, stop."""

from __future__ import annotations

from fastapi import APIRouter

from labyard.tensorboard import service
from labyard.tensorboard.models import TensorBoardInstance
from labyard.tensorboard.schemas import TensorBoardOpen, TensorBoardOut
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["tensorboard"])


@router.post("/tensorboards", response_model=TensorBoardOut)
def open_tensorboard(
    body: TensorBoardOpen, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> TensorBoardOut:
    """Start, or reuse, the TensorBoard for some jobs, a sweep or a log dir (READ)."""
    instance: TensorBoardInstance
    if body.job_ids is not None:
        instance = service.open_for_jobs(db, settings, user, body.job_ids)
    elif body.sweep_id is not None:
        instance = service.open_for_sweep(db, settings, user, body.sweep_id)
    else:
        assert body.logdir is not None
        instance = service.open_for_logdir(
            db,
            settings,
            user,
            source=body.logdir.source,
            source_id=body.logdir.source_id,
            path=body.logdir.path,
        )
    return TensorBoardOut.of(instance)


@router.get("/tensorboards", response_model=list[TensorBoardOut])
def list_tensorboards(user: CurrentUser, db: SessionDep) -> list[TensorBoardOut]:
    """The running TensorBoards I can see."""
    return [TensorBoardOut.of(i) for i in service.list_instances(db, user)]


@router.get("/tensorboards/{instance_id}", response_model=TensorBoardOut)
def get_tensorboard(
    instance_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> TensorBoardOut:
    """One TensorBoard; `status` becomes `running` once it answers."""
    return TensorBoardOut.of(service.readiness(db, settings, user, instance_id).instance)


@router.post("/tensorboards/{instance_id}/stop", response_model=TensorBoardOut)
def stop_tensorboard(instance_id: int, user: CurrentUser, db: SessionDep) -> TensorBoardOut:
    """Stop a TensorBoard (its starter, WRITE members, admins)."""
    return TensorBoardOut.of(service.stop_instance(db, user, instance_id))
