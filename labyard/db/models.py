"""Import every domain's models so `Base.metadata` knows all tables (Alembic, tests)."""

from labyard.auth import models as auth_models
from labyard.datasets import models as dataset_models
from labyard.deephealth import models as deephealth_models
from labyard.flavors import models as flavor_models
from labyard.jobs import models as job_models
from labyard.labs import models as lab_models
from labyard.notifications import models as notification_models
from labyard.projects import models as project_models
from labyard.searches import models as search_models
from labyard.sessions import models as session_models
from labyard.tensorboard import models as tensorboard_models
from labyard.weights import models as weights_models

__all__ = [
    "auth_models",
    "dataset_models",
    "deephealth_models",
    "flavor_models",
    "job_models",
    "lab_models",
    "notification_models",
    "project_models",
    "search_models",
    "session_models",
    "tensorboard_models",
    "weights_models",
]
