"""Users, password hashing, sessions, CSRF, API tokens and login throttling."""
