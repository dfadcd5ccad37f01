"""The wheel built from the repository works outside it (issue 9): packaged recipes, `ncollapse
demo` finds its recipes, `ncollapse train <recipe name>` trains.

The wheel goes into a fresh virtual environment without pip or dependencies; a ``.pth`` file puts
this interpreter's site-packages (torch, numpy, ... and pip) after the venv's own, so the check is
fast and offline. The package under test is the venv's copy (asserted), never the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env, timeout=120):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\nstdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-2000:]}"
    return r.stdout


def _build_tools_missing() -> str | None:
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[dev]')"
    if int(setuptools.__version__.split(".")[0]) < 77:
        return f"setuptools {setuptools.__version__} < 77 cannot read the project's license field"
    return None


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    missing = _build_tools_missing()
    if missing:
        pytest.skip(f"cannot build the wheel offline: {missing}")
    tmp = tmp_path_factory.mktemp("wheel")
    # build from a copy so that the checkout gets no build/ or egg-info folders
    src = tmp / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", str(tmp / "dist"), str(src)], tmp, env)  # fmt: skip
    wheels = list((tmp / "dist").glob("ncollapse-*.whl"))
    assert len(wheels) == 1
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    vpy = venv / "bin" / "python"
    site = Path(_run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp, env).strip())  # fmt: skip
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_reuse_deps.pth").write_text("\n".join(sorted(here)) + "\n")
    # --ignore-installed: never touch the ncollapse this interpreter may have installed
    _run([str(vpy), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
          "--disable-pip-version-check", str(wheels[0])], tmp, env)  # fmt: skip
    work = tmp / "elsewhere"
    work.mkdir()
    return venv, work, env


def test_wheel_ships_recipes_and_runs_outside_the_repo(venv):
    venv, work, env = venv
    vpy, cli = str(venv / "bin" / "python"), str(venv / "bin" / "ncollapse")
    where = _run([vpy, "-c", "import ncollapse, ncollapse.recipes as r; print(ncollapse.__file__); "
                  "print(len(r.recipe_names()))"], work, env).split()  # fmt: skip
    assert where[0].startswith(str(venv)), where  # the installed copy, not the checkout
    assert int(where[1]) >= 9
    assert "fmnist_lt_ce" in _run([cli, "train", "--list"], work, env)
    assert "demo" in _run([cli, "demo", "--help"], work, env)
    cfg_dir = _run([vpy, "-c", "from ncollapse.commands.demo import _config_dir; "
                    "print(_config_dir(None))"], work, env).strip()  # fmt: skip
    assert cfg_dir.startswith(str(venv)) and not (work / "configs").exists()
    out = _run([cli, "train", "digits_lt_ce", "train.epochs=1", "train.progress=false",
                "run.tensorboard=false", "run.out_dir=runs", "--json"], work, env)  # fmt: skip
    summary = json.loads(out)
    assert summary["epoch"] == 0 and 0 <= summary["test_acc"] <= 1
    run_dir = Path(summary["run_dir"])
    if not run_dir.is_absolute():
        run_dir = work / run_dir
    assert (run_dir / "metrics.jsonl").is_file() and run_dir.name.startswith("digits_lt_ce")
