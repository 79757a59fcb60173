"""DeepHealth's back-end REST API under /backend/, mapped onto Labyard's projects, templates,
datasets and jobs (docs: the README's "DeepHealth clients")."""
