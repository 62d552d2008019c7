"""Which folders are installed: the repository root is the `sessionhub` package, so its
layer folders are found here and installed as `sessionhub.<folder>`.

Data folders (fonts, GraphiQL assets, migrations) are found as namespace packages, so
their files ship as package data wherever a folder moves; tests/, bench/ and docs/ are
not layers and stay out. Everything else about the build is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

LAYERS = ("adapters", "auth", "domain", "realtime", "resolvers", "schema", "server", "storage")


class BuildPy(build_py):
    """Leaves this file out of the root package, whose folder it shares."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "sessionhub" and m[1] == "setup")]


found = find_namespace_packages(
    include=[pattern for layer in LAYERS for pattern in (layer, f"{layer}.*")],
    exclude=["*.__pycache__"],
)
setup(
    packages=["sessionhub", *(f"sessionhub.{package}" for package in found)],
    cmdclass={"build_py": BuildPy},
)
