"""The lab page's session panel: shown to WRITE members only, Start queues a session on the
chosen flavor and shows its queue position, Stop ends it, and the dataset note is there."""

from __future__ import annotations

from tests.factories import session_client
from tests.integration.sessions.conftest import SessionWorld


def test_the_lab_page_panel_starts_and_stops_a_session(world: SessionWorld) -> None:
    panel = f"/labs/{world.lab_id}/jupyter/panel"
    with session_client(world.app, world.database, world.users["read"]) as reader:
        page = reader.get(f"/labs/{world.lab_id}/files")
        assert page.status_code == 200 and panel not in page.text
        assert reader.get(panel).status_code == 404
    with session_client(world.app, world.database, world.users["write"]) as writer:
        page = writer.get(f"/labs/{world.lab_id}/files")
        assert page.status_code == 200 and f'hx-get="{panel}"' in page.text
        empty = writer.get(panel)
        assert 'data-state="stopped"' in empty.text and ">Start</button>" in empty.text
        assert "takes effect at its next start" in empty.text
        refused = writer.hx("POST", f"/labs/{world.lab_id}/jupyter/start", data={"flavor": "nope"})
        assert refused.status_code == 422 and "No flavor" in refused.text
        started = writer.hx("POST", f"/labs/{world.lab_id}/jupyter/start", data={"flavor": "tiny"})
        assert started.status_code == 200, started.text
        assert 'data-state="queued"' in started.text and "position 1 in the queue" in started.text
        assert "flavor tiny" in started.text and ">Stop</button>" in started.text
        stopped = writer.hx("POST", f"/labs/{world.lab_id}/jupyter/stop")
        assert 'data-state="stopped"' in stopped.text
        assert "Stopped: stopped by write" in stopped.text
        # the JupyterLab page of a stopped session shows the panel, no frame
        jupyter = writer.get(f"/labs/{world.lab_id}/jupyter")
        assert jupyter.status_code == 200 and "session-frame" not in jupyter.text
