"""Notifications: webhooks and e-mail when a job, sweep or search ends (issue 17)."""
