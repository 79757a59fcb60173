"""Operating an installation: `labyard backup DIR` and `labyard restore DIR`.

A backup folder holds the database snapshot (`database.sqlite`, made with SQLite's online
backup API, or `database.pgdump`, pg_dump's custom format), `files/` (the data folder less
what is rebuilt or runtime-only, see labyard.ops.tree) and `manifest.json`, written last: a
folder without a manifest is an incomplete backup and restore refuses it.
"""
