"""The flavors table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from labyard.db import Base, utcnow


class Flavor(Base):
    """A hardware size: whole GPUs, CPU cores and memory reserved for one job."""

    __tablename__ = "flavors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    gpus: Mapped[int] = mapped_column(default=0)
    cpus: Mapped[float] = mapped_column(default=1.0)
    memory_mb: Mapped[int] = mapped_column(default=2048)
    description: Mapped[str] = mapped_column(String(500), default="")
    # Slurm options of the flavor (empty: the cluster's defaults)
    partition: Mapped[str] = mapped_column(String(100), default="")
    account: Mapped[str] = mapped_column(String(100), default="")
    qos: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
