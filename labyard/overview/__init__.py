"""The overview pages: the home page (my jobs, the queue, recent failures, every GPU and who
holds it) and a project's overview. They read several domains, so they sit above them all,
like the composition root; no domain imports this package."""
