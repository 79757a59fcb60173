"""The overview tests use the job pages' people (ana owns, rita reads, otto is outside)."""

from tests.integration.jobpages.conftest import clients, people

__all__ = ["clients", "people"]
