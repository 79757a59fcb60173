"""The `labyard` command's user side: a client of the JSON API (/api/v1) over HTTP.

It imports nothing of the server (no database, no settings): `config` keeps the login and
the state of unfinished uploads in the user's config folder, `http` talks to the API,
`output` prints tables or the API's JSON, and one module per group holds the commands.
"""
