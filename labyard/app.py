"""create_app(settings): the FastAPI application with its routers, static files and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from labyard import __version__
from labyard.auth import pages as auth_pages
from labyard.auth import router as auth_router
from labyard.auth import service as auth_service
from labyard.config import Settings
from labyard.datasets import lifecycle as datasets_lifecycle
from labyard.datasets import pages as datasets_pages
from labyard.datasets import router as datasets_router
from labyard.datasets import service as datasets_service
from labyard.db import Database
from labyard.deephealth import mount as deephealth_mount
from labyard.flavors import router as flavors_router
from labyard.jobs import lifecycle as jobs_lifecycle
from labyard.jobs import output_dataset as jobs_output_auto
from labyard.jobs import output_dataset_router as jobs_output_dataset
from labyard.jobs import pages as jobs_pages
from labyard.jobs import router as jobs_router
from labyard.jobs import service as jobs_service
from labyard.jobs import views as jobs_views
from labyard.labs import pages as labs_pages
from labyard.labs import router as labs_router
from labyard.labs import service as labs_service
from labyard.labs import submit as labs_submit
from labyard.monitoring import router as monitoring_router
from labyard.monitoring.http import LatencyMiddleware
from labyard.nodes import pages as nodes_pages
from labyard.notifications import events as notifications_events
from labyard.notifications import lifecycle as notifications_lifecycle
from labyard.notifications import pages as notifications_pages
from labyard.notifications import router as notifications_router
from labyard.overview import pages as overview_pages
from labyard.projects import pages as project_pages
from labyard.projects import router as projects_router
from labyard.projects import service as projects_service
from labyard.resources import resource_dir
from labyard.searches import driver as searches_driver
from labyard.searches import pages as searches_pages
from labyard.searches import router as searches_router
from labyard.searches import service as searches_service
from labyard.sessions import lifecycle as sessions_lifecycle
from labyard.sessions import pages as sessions_pages
from labyard.sessions import router as sessions_router
from labyard.sessions import service as sessions_service
from labyard.tensorboard import lifecycle as tensorboard_lifecycle
from labyard.tensorboard import pages as tensorboard_pages
from labyard.tensorboard import router as tensorboard_router
from labyard.tensorboard import service as tensorboard_service
from labyard.web import admin_pages, docs, health
from labyard.web.bodies import BodyGuard
from labyard.web.deps import csrf_protect, form_limits
from labyard.web.errors import install_error_handlers
from labyard.web.headers import SecurityHeadersMiddleware
from labyard.web.render import make_templates
from labyard.weights import inference as weights_inference
from labyard.weights import pages as weights_pages
from labyard.weights import router as weights_router
from labyard.weights import service as weights_service

if TYPE_CHECKING:
    from labyard.jobs.scheduler import SchedulerStep

# Start-up hooks of domains (scheduler, reapers): each gets the app, returns a stopper.
StartHook = Callable[[FastAPI], Callable[[], None]]
# What the scheduler runs each tick for domains above jobs (after following, before dispatch).
SCHEDULER_STEPS: tuple[SchedulerStep, ...] = (
    searches_driver.advance_searches,
    jobs_output_auto.save_pending_outputs,  # mlsteam.yml's output_dataset: (see job_ended)
)
API_MODULES = (
    health,
    auth_router,
    projects_router,
    flavors_router,
    datasets_router,
    labs_router,
    jobs_router,
    jobs_output_dataset,
    weights_router,
    searches_router,
    tensorboard_router,
    sessions_router,
    monitoring_router,
    notifications_router,
)
# Page modules; their NAV_LINKS = [(label, path), ...] become the top navigation, in this order.
PAGE_MODULES = (
    overview_pages,
    project_pages,
    labs_pages,
    datasets_pages,
    jobs_pages,
    weights_pages,
    searches_pages,
    tensorboard_pages,
    sessions_pages,
    nodes_pages,
    auth_pages,
    notifications_pages,
    admin_pages,
    docs,
)


def wire_hooks() -> None:
    """Connect each domain's answers to the hook points of the domains below it.

    Domains depend one way (auth < projects < datasets, flavors < jobs < labs, tensorboard),
    so a lower domain asks through a `labyard.hooks.HookPoint`; nothing connects on import.
    Idempotent; create_app, bootstrap.seed and the CLI call it.
    """
    auth_service.USER_CREATED.connect(projects_service.give_default_project)
    for folders in (
        datasets_service.project_dataset_folders,
        labs_service.project_lab_folders,
        jobs_service.project_job_folders,
        searches_service.project_search_folders,
        weights_service.project_weights_folders,
        tensorboard_service.stop_project_instances,
    ):
        projects_service.PROJECT_FOLDERS.connect(folders)
    projects_service.DELETE_BLOCKERS.connect(jobs_service.project_jobs_active)
    datasets_service.IN_USE_CHECKS.connect(jobs_service.dataset_in_use)
    weights_service.IN_USE_CHECKS.connect(labs_submit.weights_in_use)
    jobs_views.LAB_FINDER.connect(labs_service.lab_refs)
    labs_service.DELETE_BLOCKERS.connect(sessions_service.lab_session_live)
    labs_service.DATASET_CHANGE_NOTES.connect(sessions_service.dataset_change_note)
    jobs_service.RETRY_REFUSALS.connect(sessions_service.session_job_retry)
    jobs_service.JOB_FINISHED.connect(notifications_events.job_ended)
    jobs_service.JOB_FINISHED.connect(weights_inference.upload_job_ended)
    jobs_service.JOB_FINISHED.connect(jobs_output_auto.job_ended)
    searches_driver.SEARCH_FINISHED.connect(notifications_events.search_ended)


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the application; the database must already be migrated (see bootstrap.prepare)."""
    wire_hooks()
    settings = settings or Settings()
    database = database or Database(settings.resolved_database_url)
    start_hooks: list[StartHook] = [
        datasets_lifecycle.start,
        tensorboard_lifecycle.start,
        sessions_lifecycle.start,
        notifications_lifecycle.start,
    ]
    if settings.start_scheduler:
        start_hooks.append(jobs_lifecycle.start)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stoppers = [hook(app) for hook in start_hooks]
        try:
            yield
        finally:
            for stop in reversed(stoppers):
                stop()

    app = FastAPI(
        title="Labyard",
        version=__version__,
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
        form_limits=form_limits(settings),  # type: ignore[arg-type]
        docs_url=None,  # labyard/web/docs.py serves /docs from static/vendor under the CSP
        redoc_url=None,
        openapi_url=docs.OPENAPI_URL,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.scheduler_steps = SCHEDULER_STEPS
    app.state.templates = make_templates()
    app.state.nav = [link for m in PAGE_MODULES for link in getattr(m, "NAV_LINKS", ())]
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyGuard)  # no body is read before the server knows it wants it
    app.add_middleware(LatencyMiddleware)  # outermost: refusals are timed too
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(resource_dir("static"))), name="static")
    for module in (*API_MODULES, *PAGE_MODULES):
        app.include_router(module.router)
        if hasattr(module, "api"):  # a page module's JSON twins, listed in OpenAPI
            app.include_router(module.api)
    # DeepHealth's back-end API for its clients: an app of its own (its error shapes, slashes)
    app.mount("/backend", deephealth_mount.create_deephealth_app(settings, database))
    return app
