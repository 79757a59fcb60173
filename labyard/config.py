"""All of Labyard's settings: one pydantic-settings class read from LABYARD_* variables."""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FILE = "secret_key"


class Settings(BaseSettings):
    """Labyard's configuration; every field is also the variable LABYARD_<FIELD>."""

    # secrets stay out of reprs and of validation errors (a short secret key was echoed)
    model_config = SettingsConfigDict(
        env_prefix="LABYARD_", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("labyard")),
        description="Where the database file, datasets, labs, job files and logs live.",
    )
    database_url: str = Field(
        default="",
        repr=False,
        description="SQLAlchemy URL; empty means a SQLite file `labyard.db` in the data dir.",
    )
    secret_key: str = Field(
        default="",
        repr=False,
        description="Signs session cookies; empty means generated once and kept in the data dir.",
    )
    executor: Literal["local", "docker", "slurm"] = Field(
        default="local",
        description="Where jobs run: local processes, Docker containers, or Slurm batch jobs "
        "(the cluster places them; see Running on a Slurm cluster).",
    )
    slurm_bin_dir: str = Field(
        default="",
        description="Folder of the Slurm commands (sbatch, squeue, scontrol, sacct, scancel, "
        "sinfo); empty: found on PATH.",
    )
    slurm_conf: str = Field(
        default="",
        description="The slurm.conf the Slurm commands read (passed as SLURM_CONF); empty: "
        "Slurm's own default (/etc/slurm/slurm.conf or DNS).",
    )
    slurm_partition: str = Field(
        default="",
        description="Partition of jobs whose flavor names none; empty: the cluster's default.",
    )
    slurm_shared_dir: str = Field(
        default="",
        description="Where the Slurm nodes see the data folder (the same files, on a shared "
        "filesystem); empty: at the data folder's own path.",
    )
    slurm_max_pending_per_project: int = Field(
        default=50,
        ge=1,
        description="Most jobs of one project handed to Slurm and still pending there; the "
        "rest wait queued in Labyard, so a large sweep does not flood the cluster.",
    )
    slurm_probe_timeout_seconds: float = Field(
        default=300,
        gt=0,
        description="How long the start-up check waits for its short Slurm job to read the "
        "probe file before it reports the shared folder unusable.",
    )
    admin_password: str = Field(
        default="",
        repr=False,
        description="Password of the first admin on first start (else generated).",
    )
    host: str = Field(default="127.0.0.1", description="Address `labyard serve` listens on.")
    port: int = Field(default=8000, description="Port `labyard serve` listens on.")
    session_hours: int = Field(default=12, description="Lifetime of a login session.")
    access_token_minutes: int = Field(default=60, description="Lifetime of an OAuth2 token.")
    refresh_token_days: int = Field(default=30, description="Lifetime of a refresh token.")
    login_max_failures: int = Field(
        default=5,
        description="Failed logins for one account from one address within the window before "
        "that address is refused for that account; past as many failures from all addresses "
        "together, every attempt on the account waits `login_account_delay_seconds` (the right "
        "password is never refused for the account's sake).",
    )
    login_max_failures_per_address: int = Field(
        default=20, description="Failed logins from one address within the window."
    )
    login_account_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Delay of each login attempt on an account that failed "
        "`login_max_failures` times within the window (slows guessing from many addresses).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDR networks of reverse proxies whose "
        "`X-Forwarded-For` is believed: the client is the rightmost hop that is not one of "
        "them. Empty: the TCP peer is the client (the header is ignored).",
    )
    login_window_seconds: int = Field(default=900, description="Throttling window for logins.")
    deephealth_client_ids: str = Field(
        default="",
        description="Comma-separated `client_id`s of DeepHealth front-ends allowed to log in "
        "at `/backend/auth/token/`; any other id gets `401 invalid_client`. Empty: none.",
    )
    secure_cookies: bool = Field(
        default=False, description="Mark cookies Secure (set true behind HTTPS)."
    )
    start_scheduler: bool = Field(
        default=True, description="Run the job scheduler inside `labyard serve`."
    )
    gpus: str = Field(
        default="",
        description="GPU ids of this node, e.g. `0,1,2,3`; empty means detect (NVML, nvidia-smi).",
    )
    max_grid_size: int = Field(
        default=1000, ge=1, description="Most jobs one sweep (parameter grid) may create."
    )
    stop_grace_seconds: float = Field(
        default=10.0, ge=0, description="Time a stopped job gets after SIGTERM before SIGKILL."
    )
    log_max_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=4096,
        description="Size cap of one job's log file; output beyond it is dropped with a note.",
    )
    docker_network: str = Field(
        default="bridge",
        description="Network mode of job containers: `bridge` (can download), `none` (isolated).",
    )
    docker_image: str = Field(
        default="labyard/runner:latest",
        description="Job image when mlsteam.yml names none (Docker executor).",
    )
    docker_shm_size: str = Field(
        default="2g", description="/dev/shm size of job containers (PyTorch data loaders)."
    )
    docker_pids_limit: int = Field(
        default=4096, ge=64, description="Most processes/threads in one job container."
    )
    docker_uid: int = Field(
        default=64000,
        ge=1,
        description="Uid job containers run as when the server runs as root; it owns the "
        "files of a job's lab/ and output/ folders on the host (not a login account's uid, "
        "so jobs cannot touch a person's files). Not as root, jobs run as the server's user.",
    )
    docker_gid: int = Field(
        default=64000, ge=1, description="Gid job containers run as (with `docker_uid`)."
    )
    job_user: str = Field(
        default="labyard-job",
        description="When the server runs as root, local jobs run as this unprivileged user "
        "(created by `labyard serve` if missing) and cannot read the server's secrets; "
        "empty runs them as the server's user (one trusted user only).",
    )
    job_python: str = Field(
        default="",
        description="The Python local jobs get as `python` (its folder first on PATH), e.g. a "
        "shared environment with CUDA builds; empty means the server's own interpreter.",
    )
    job_output_quota_bytes: int = Field(
        default=100 * 1024**3,
        ge=0,
        description="Disk space one job's output folder may use; a job past it is stopped "
        "with the reason (0: no limit).",
    )
    fair_share_days: float = Field(
        default=7.0,
        gt=0,
        description="Fair share looks back this many days: among queued jobs of one priority, "
        "the project that used the fewest GPU-hours in that window goes first.",
    )
    scheduler_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the scheduler polls jobs and dispatches."
    )
    preemption: bool = Field(
        default=False,
        description="A waiting job may preempt running jobs of lower priority: they get SIGTERM "
        "and the grace period, then go back to the queue as a new attempt that resumes from "
        "its checkpoint (MLSTEAM_RESUME=auto). Off: a job waits for free GPUs.",
    )

    dataset_max_upload_bytes: int = Field(
        default=20 * 1024**3, description="Largest single file one upload may send (bytes)."
    )
    dataset_project_quota_bytes: int = Field(
        default=200 * 1024**3,
        description="Total bytes the datasets of one project may hold, partial uploads included.",
    )
    dataset_upload_expiry_hours: int = Field(
        default=24, description="Unfinished resumable uploads idle this long are removed."
    )
    archive_max_entries: int = Field(
        default=200_000, description="Most entries an archive may have to be extracted."
    )
    archive_max_bytes: int = Field(
        default=50 * 1024**3, description="Most bytes one archive may extract to."
    )
    archive_max_ratio: int = Field(
        default=200, description="Highest uncompressed/compressed size ratio of an archive."
    )
    dataset_workers: int = Field(
        default=2, description="Threads extracting archives in the background."
    )

    weights_upload_max_bytes: int = Field(
        default=200 * 1024**2,
        ge=1024,
        description="Most bytes of images one inference upload (several images, each at most "
        "10 MiB) may send; larger request bodies are refused (413) before they are read.",
    )
    lab_max_upload_bytes: int = Field(
        default=100 * 1024**2, description="Largest file one upload into a lab's code may send."
    )
    lab_max_edit_bytes: int = Field(
        default=1024**2, description="Largest lab file the in-browser editor opens or saves."
    )
    request_max_body_bytes: int = Field(
        default=8 * 1024**2,
        ge=1024,
        description="Largest request body (a form, JSON) of a route that does not stream an "
        "upload; larger ones are refused (413) before they are read.",
    )
    form_max_fields: int = Field(
        default=1000, ge=1, description="Most text fields one form or multipart body may carry."
    )
    form_max_field_bytes: int = Field(
        default=2 * 1024**2,
        ge=1024,
        description="Largest text field of a form (the lab editor's file content is one).",
    )
    upload_max_files: int = Field(
        default=10_000, ge=1, description="Most files one multipart upload request may carry."
    )

    tensorboard_max_instances: int = Field(
        default=8, ge=1, description="Most TensorBoard processes running at once."
    )
    tensorboard_idle_minutes: float = Field(
        default=30,
        gt=0,
        description="A TensorBoard nobody opened for this many minutes is stopped.",
    )
    tensorboard_link_minutes: int = Field(
        default=480,
        ge=1,
        description=(
            "Lifetime of the link a TensorBoard page is framed with (it also ends at logout); "
            "reloading the page makes a fresh one."
        ),
    )

    metrics_token: str = Field(
        default="",
        repr=False,
        description="A bearer token that may read /metrics (Prometheus' scraper); admins may "
        "too. Empty: admins only.",
    )
    public_url: str = Field(
        default="",
        max_length=200,
        description="The address people open Labyard at (e.g. `https://labyard.example.org`), "
        "for links in notifications; empty: the links are paths only.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks reach loopback, link-local and private addresses (checked for "
        "every address the host resolves to at each delivery); off, such a delivery is refused.",
    )
    webhook_timeout_seconds: float = Field(
        default=10, gt=0, le=60, description="Connect and read timeout of one webhook request."
    )
    webhook_max_attempts: int = Field(
        default=6, ge=1, le=20, description="Most attempts of one webhook delivery."
    )
    webhook_retry_base_seconds: float = Field(
        default=120,
        gt=0,
        description="Wait before a failed webhook delivery's second attempt; each later wait "
        "doubles (120 s and 6 attempts span about an hour).",
    )
    notification_poll_seconds: float = Field(
        default=2, gt=0, le=60, description="How often the delivery worker sends what is due."
    )
    notification_log_size: int = Field(
        default=20, ge=1, le=1000, description="Deliveries kept per subscription (its log)."
    )
    smtp_host: str = Field(
        default="", description="SMTP server for e-mail notifications; empty: no e-mail."
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_username: str = Field(default="", description="SMTP login; empty: no login.")
    smtp_password: str = Field(default="", repr=False, description="SMTP password.")
    smtp_from: str = Field(
        default="", description="Sender address of notification e-mails (required for e-mail)."
    )
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the SMTP connection with STARTTLS before logging in."
    )
    session_idle_minutes: float = Field(
        default=60,
        gt=0,
        description="A lab session (JupyterLab) with no activity for this many minutes is "
        "stopped and its GPUs freed; its page warns during the last 10 minutes.",
    )

    live_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        le=5,
        description="How often a job page's live stream looks for new log lines and metrics.",
    )
    live_db_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="How often a job page's live stream reads new metric points and the "
        "job's state from the database (the log file is tailed every live_poll_seconds).",
    )
    live_list_poll_seconds: float = Field(
        default=1.0, gt=0, le=30, description="How often a jobs list's live stream re-reads rows."
    )
    chart_max_points: int = Field(
        default=2000,
        ge=10,
        le=100_000,
        description="Most points per metric series a job page's charts load (downsampled).",
    )
    log_tail_lines: int = Field(
        default=2000, ge=10, le=100_000, description="Log lines a job page shows when it opens."
    )
    jobs_per_page: int = Field(
        default=50, ge=5, le=500, description="Rows per page of the jobs lists."
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("LABYARD_SECRET_KEY must be at least 32 characters (or left unset)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"LABYARD_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network"
                ) from None
        return value

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks of `trusted_proxies`, parsed."""
        parts = (part.strip() for part in self.trusted_proxies.split(","))
        return tuple(ipaddress.ip_network(part, strict=False) for part in parts if part)

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL in use: the setting, else the SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'labyard.db'}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The secret key: the setting, else one generated on first use and kept in the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(8)}")
            # created 0600 (never world-readable, whatever the umask), then linked into place
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
            try:
                os.link(tmp, path)  # atomic: the first process to start wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()
