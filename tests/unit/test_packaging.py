"""algorithms/ ships as rlfrontier.algorithms: every package folder is listed, no bare 'algorithms'."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _declared_packages() -> set[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["tool"]["setuptools"]["packages"])


def _package_dirs(root: Path, prefix: str) -> set[str]:
    """Dotted names of every folder under root (root included) holding an __init__.py."""
    names = set()
    for init in root.rglob("__init__.py"):
        rel = init.parent.relative_to(root)
        if "__pycache__" in rel.parts:
            continue
        names.add(".".join((prefix, *rel.parts)))
    return names


def test_repo_root_found():
    assert (REPO / "pyproject.toml").is_file()
    assert (REPO / "algorithms" / "__init__.py").is_file()


def test_every_algorithms_package_is_listed():
    found = _package_dirs(REPO / "algorithms", "rlfrontier.algorithms")
    assert "rlfrontier.algorithms.soft_q.torch" in found
    missing = found - _declared_packages()
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_every_rlfrontier_package_is_listed():
    found = _package_dirs(REPO / "rlfrontier", "rlfrontier")
    assert "rlfrontier.envs" in found
    missing = found - _declared_packages()
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_every_listed_package_exists():
    package_dir = {"rlfrontier.algorithms": REPO / "algorithms", "rlfrontier": REPO / "rlfrontier"}
    for name in _declared_packages():
        base = "rlfrontier.algorithms" if name.startswith("rlfrontier.algorithms") else "rlfrontier"
        rest = name[len(base) :].lstrip(".")
        folder = package_dir[base].joinpath(*rest.split(".")) if rest else package_dir[base]
        assert (folder / "__init__.py").is_file(), f"{name} is listed but {folder} is no package"


def test_installed_layout_outside_the_repo(tmp_path):
    # cwd outside the repository, so only what is installed can be imported.
    script = (
        "import importlib.util, json\n"
        "import rlfrontier.algorithms.soft_q as sq\n"
        "import rlfrontier.algorithms.soft_q.torch.soft_q_torch_rl_module as m\n"
        "print(json.dumps({'bare': importlib.util.find_spec('algorithms') is None,\n"
        "                  'config': sq.SoftQConfig.__name__, 'module': m.SoftQTorchRLModule.__name__}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == (
        '{"bare": true, "config": "SoftQConfig", "module": "SoftQTorchRLModule"}'
    )
