"""The Parameters tab's search mode: "Start search" (included by labs/pages.py).

The form's settings go over the file's `search:` block, each param's range (`range.<name>.min`,
`.max`, `.log`) or values (`param.<name>`, as in grid mode) over the file's, through
labyard.labs.search_submit.start_search, the function POST /api/v1/labs/{id}/searches calls.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import FormData

from labyard.errors import InvalidInput
from labyard.labs import search_submit
from labyard.labs.lab_pages import chosen_params
from labyard.labs.params import SEARCH_FIELDS
from labyard.searchspec import SEARCH_KEYS
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)
RANGE_PREFIX = "range."
ERROR_ANCHOR = "space."  # a param's error goes after the form's <output name="space.<name>">


def form_overrides(form: FormData) -> dict[str, Any]:
    """The settings the form sent (an empty one keeps the file's)."""
    return {k: v for k in SEARCH_FIELDS if isinstance(v := form.get(k), str)}


def form_space(form: FormData) -> dict[str, Any]:
    """Each param's values (as in grid mode), a range where the form sent one."""
    space: dict[str, Any] = dict(chosen_params(form))
    for key in form:
        if key.startswith(RANGE_PREFIX) and key.endswith(".min"):
            name = key[len(RANGE_PREFIX) : -len(".min")]
            space[name] = {
                "min": form.get(key),
                "max": form.get(f"{RANGE_PREFIX}{name}.max"),
                "log": "true" if form.get(f"{RANGE_PREFIX}{name}.log") else "false",
            }
    return space


@router.post("/labs/{lab_id}/searches")
async def start_search(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Start a search from the form and open its page; an error names its field."""
    form = await request.form()
    space = form_space(form)
    try:
        search = await run_in_threadpool(
            search_submit.start_search,
            db,
            settings,
            user,
            lab_id,
            overrides=form_overrides(form),
            space=space,
        )
    except InvalidInput as exc:
        if exc.field is None or exc.field in SEARCH_KEYS:
            raise
        raise InvalidInput(exc.message, field=ERROR_ANCHOR + exc.field) from exc
    return Response(status_code=204, headers={"HX-Redirect": f"/searches/{search.id}"})
