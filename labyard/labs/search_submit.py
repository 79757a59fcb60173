""" "Search": a lab's search settings and param space become a search (searches domain).

The lab's file is read and the request checked (settings over the file's `search:` block,
each param's space over the file's definitions) before the search and its sweep are written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.labs import files, service
from labyard.labs.submit import lab_inputs, weights_named
from labyard.projects.models import Role
from labyard.searches import service as searches_service
from labyard.searches.models import Search
from labyard.searches.space import search_space
from labyard.searchspec import search_settings
from labyard.weights import service as weights_service


def start_search(
    db: Session,
    settings: Settings,
    user: User,
    lab_id: int,
    *,
    overrides: dict[str, Any],
    space: dict[str, Any],
    flavor: str | None = None,
) -> Search:
    """Start a search of the lab (WRITE) on `flavor` (default the lab's) with its datasets."""
    lab = service.get_lab(db, user, lab_id, Role.WRITE)
    mounts = lab_inputs(settings, lab)
    lab = service.lab_for_file_work(db, user, lab_id)
    config = files.read_config(settings, lab)
    param_space = search_space(config, space)
    choices = {name: list(p.choices) for name, p in param_space.items()}
    named = weights_named(config, choices)  # the weights its `type: weights` params choose
    mounts += weights_service.mount_inputs(db, settings, user, lab.project_id, named)
    request = searches_service.SearchRequest(
        settings=search_settings(config.search, overrides),
        space=param_space,
        flavor=flavor or lab.flavor,
        datasets=mounts,
    )
    return searches_service.create_search(
        db,
        user,
        settings=settings,
        project_id=lab.project_id,
        lab_id=lab.id,
        name=lab.name,
        lab_dir=files.lab_root(settings, lab),
        config=config,
        request=request,
    )
