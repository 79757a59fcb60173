"""Ship the top-level folders (pages, static, migrations, lab templates, runner) inside the wheel.

The repository keeps them at the top, as DESIGN.md lays out; the wheel carries them under
`labyard/` so an installed `labyard` finds them (see labyard/resources.py).

setuptools builds in a temporary folder, never in the checkout: `pip install .` leaves no
build/ or labyard.egg-info/ behind (pip builds in the source tree since 21.3).
"""

import atexit
import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = ("templates", "static", "lab_templates", "migrations", "runner")
SKIP = {"__pycache__", ".pytest_cache"}


class BuildWithResources(build_py):
    """build_py that also copies the bundled folders into the package."""

    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        for name in BUNDLED:
            for src in (root / name).rglob("*"):
                relative = src.relative_to(root)
                if src.is_dir() or SKIP & set(relative.parts) or src.suffix in (".pyc", ".whl"):
                    continue
                dest = Path(self.build_lib) / "labyard" / relative
                self.mkpath(str(dest.parent))
                self.copy_file(str(src), str(dest))


OUT = Path(tempfile.mkdtemp(prefix="labyard-build-"))
atexit.register(shutil.rmtree, OUT, ignore_errors=True)
setup(
    cmdclass={"build_py": BuildWithResources},
    options={"build": {"build_base": str(OUT / "build")}, "egg_info": {"egg_base": str(OUT)}},
)
