"""What every backend distribution of a web service must be: an entry point in
the ``imagen`` group, a cheap import (``imagen --help`` loads the plugin but not
requests or attrs; listing backends registers the type without requests), and a
wheel that carries its data files and no tests.

A distribution's tests subclass ``DistributionChecks`` as ``TestDistribution``
and fill in the class attributes; pytest runs the checks for each."""

from __future__ import annotations

import zipfile
from importlib.metadata import distribution
from pathlib import Path
from typing import ClassVar

import pytest

from tests.helpers import build_wheels, cli_imports

ROOT = Path(__file__).resolve().parents[1]


class DistributionChecks:
    distribution: ClassVar[str]  # imagen-fal
    entry_point: ClassVar[str]  # fal: the name it registers, and its backend type
    data_files: ClassVar[tuple[str, ...]]  # families.json, ...: inside the package
    version: ClassVar[str] = "0.1.0"

    @property
    def package(self) -> str:
        return self.distribution.replace("-", "_")

    def imported(self, *args: str) -> set[str]:
        return cli_imports(*args, plugins=self.distribution)[0]

    def test_the_entry_point_is_registered(self):
        dist = distribution(self.distribution)
        (entry,) = [e for e in dist.entry_points if e.group == "imagen"]
        assert (entry.name, entry.value) == (self.entry_point, self.package)
        assert dist.version == self.version
        assert set(dist.requires or []) >= {f"imagen-core=={self.version}", "requests>=2.31"}

    def test_help_imports_the_plugin_but_not_requests(self):
        modules = self.imported("--help")
        assert self.package in modules
        assert not modules & {"requests", "urllib3", "attrs"}

    def test_listing_backends_registers_the_type_without_requests(self):
        # Registration builds the config class (attrs) but never the HTTP client.
        modules = self.imported("backends")
        assert self.package in modules and "requests" not in modules

    @pytest.mark.slow
    def test_the_wheel_carries_the_data_files(self, tmp_path):
        build_wheels(tmp_path, ROOT / "plugins" / self.distribution)
        (wheel,) = tmp_path.glob(f"{self.package}-{self.version}-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            entry_points = next(n for n in names if n.endswith("entry_points.txt"))
            registered = f"[imagen]\n{self.entry_point} = {self.package}"
            assert registered in archive.read(entry_points).decode()
        files = {f"{self.package}/{name}" for name in (*self.data_files, "py.typed", "backend.py")}
        assert files <= names
        assert not [n for n in names if n.startswith("tests/")]
