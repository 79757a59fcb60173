"""Flavors: listing for everyone, changes for admins."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.db.unique import save_unique
from labyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labyard.flavors.models import Flavor

FLAVOR_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
SLURM_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}$")  # partition, account, QOS
DEFAULT_FLAVORS = (
    ("cpu", 0, 2.0, 4096, "CPU only"),
    ("small", 1, 4.0, 16384, "1 GPU"),
    ("medium", 2, 8.0, 32768, "2 GPUs"),
    ("large", 4, 16.0, 65536, "4 GPUs"),
)


def require_admin(user: User) -> None:
    """Refuse non-admins."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may do this.")


def list_flavors(db: Session) -> list[Flavor]:
    """Every flavor, smallest first."""
    return list(db.scalars(select(Flavor).order_by(Flavor.gpus, Flavor.cpus, Flavor.name)))


def get_flavor_by_name(db: Session, name: str) -> Flavor:
    """The flavor called `name`, or NotFound."""
    flavor = db.scalar(select(Flavor).where(Flavor.name == name))
    if flavor is None:
        raise NotFound(f"No flavor {name!r}.")
    return flavor


def _validate(gpus: int, cpus: float, memory_mb: int) -> None:
    if not 0 <= gpus <= 64:
        raise InvalidInput("GPUs must be between 0 and 64.", field="gpus")
    if not 0 < cpus <= 1024:
        raise InvalidInput("CPUs must be more than 0 and at most 1024.", field="cpus")
    if not 64 <= memory_mb <= 16 * 1024 * 1024:
        raise InvalidInput("Memory must be between 64 MiB and 16 TiB.", field="memory_mb")


def _slurm_options(partition: str, account: str, qos: str) -> dict[str, str]:
    """The flavor's Slurm options, stripped; refused unless each is empty or a Slurm name."""
    options = {"partition": partition.strip(), "account": account.strip(), "qos": qos.strip()}
    for field, value in options.items():
        if value and not SLURM_NAME_RE.match(value):
            raise InvalidInput(
                f"{'QOS' if field == 'qos' else field.capitalize()}: up to 100 letters, "
                "digits, '_', '.' or '-' (empty: the cluster's default).",
                field=field,
            )
    return options


def create_flavor(
    db: Session,
    user: User,
    *,
    name: str,
    gpus: int,
    cpus: float,
    memory_mb: int,
    description: str = "",
    partition: str = "",
    account: str = "",
    qos: str = "",
) -> Flavor:
    """Define a flavor (admin); `partition`, `account` and `qos` are its Slurm options."""
    require_admin(user)
    if not FLAVOR_NAME_RE.match(name):
        raise InvalidInput("Flavor name: 1-32 lowercase letters, digits, '_' or '-'.", field="name")
    _validate(gpus, cpus, memory_mb)
    options = _slurm_options(partition, account, qos)
    taken = Conflict(f"Flavor {name!r} already exists.", field="name")
    if db.scalar(select(Flavor.id).where(Flavor.name == name)) is not None:
        raise taken
    flavor = Flavor(
        name=name,
        gpus=gpus,
        cpus=cpus,
        memory_mb=memory_mb,
        description=description[:500],
        **options,
    )
    save_unique(db, "uq_flavors_name", taken, lambda: db.add(flavor))
    return flavor


def update_flavor(
    db: Session,
    user: User,
    flavor_id: int,
    *,
    gpus: int,
    cpus: float,
    memory_mb: int,
    description: str,
    partition: str = "",
    account: str = "",
    qos: str = "",
) -> Flavor:
    """Change a flavor's sizes and Slurm options (admin); jobs already placed keep what
    they reserved."""
    require_admin(user)
    flavor = db.get(Flavor, flavor_id)
    if flavor is None:
        raise NotFound("No such flavor.")
    _validate(gpus, cpus, memory_mb)
    options = _slurm_options(partition, account, qos)
    flavor.gpus, flavor.cpus, flavor.memory_mb = gpus, cpus, memory_mb
    flavor.description = description[:500]
    flavor.partition, flavor.account, flavor.qos = (
        options["partition"],
        options["account"],
        options["qos"],
    )
    return flavor


def delete_flavor(db: Session, user: User, flavor_id: int) -> None:
    """Delete a flavor (admin)."""
    require_admin(user)
    flavor = db.get(Flavor, flavor_id)
    if flavor is None:
        raise NotFound("No such flavor.")
    db.delete(flavor)


def seed_default_flavors(db: Session) -> None:
    """Create the default flavors when there are none."""
    if db.scalar(select(Flavor.id).limit(1)) is not None:
        return
    for name, gpus, cpus, memory_mb, description in DEFAULT_FLAVORS:
        db.add(
            Flavor(name=name, gpus=gpus, cpus=cpus, memory_mb=memory_mb, description=description)
        )
