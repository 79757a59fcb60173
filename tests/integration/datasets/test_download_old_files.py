"""A folder downloads as a whole zip whatever its files' times: tar keeps an entry's mtime
(1970 by default, or any year), and zip cannot write a time before 1980 or after 2107; such a
download used to break off mid-stream with a truncated zip."""

from __future__ import annotations

import io
import tarfile
import zipfile

from tests.factories import WebClient
from tests.integration.datasets.conftest import Team, upload, wait_task


def test_a_folder_of_1970_and_2200_files_downloads_whole(api: WebClient, team: Team) -> None:
    future = tarfile.TarInfo("old/future.txt")
    future.size, future.mtime = 6, 7_258_118_400  # 2200-01-01
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("old/epoch.txt"), io.BytesIO(b""))  # mtime 0: 1970
        tar.addfile(future, io.BytesIO(b"future"))
    assert upload(api, team.writer, team.dataset_id, "t.tar.gz", data.getvalue()).status_code == 201
    task = api.post(
        f"/api/v1/datasets/{team.dataset_id}/extract",
        json={"path": "t.tar.gz"},
        headers=team.writer,
    )
    assert wait_task(api, team.writer, task.json()["id"])["status"] == "done"

    response = api.get(
        f"/api/v1/datasets/{team.dataset_id}/download", params={"path": "old"}, headers=team.reader
    )

    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as downloaded:
        assert downloaded.testzip() is None
        assert sorted(downloaded.namelist()) == ["epoch.txt", "future.txt"]
        assert downloaded.read("future.txt") == b"future"
        assert downloaded.getinfo("epoch.txt").date_time[0] == 1980
