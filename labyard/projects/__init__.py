"""Projects, their members and roles, and the one permission check every domain uses."""
