"""What the pages and the API share: dependencies, CSRF, rendering, errors, headers."""
