"""`pip install 'polyvision[edge]'` into a fresh virtual environment gives a working
`polyvision-edge` and none of the server side's heavy packages.

The install is the one a box beside the cameras runs: the working tree, the `[edge]` extra,
pip's build isolation and dependencies from the package index (pip's cache allowed), with
`-C wheel.cmake=false`: scikit-build-core then skips CMake, so the wheel has no native module
(the edge agent does not use it, and this proves it) and the box needs no C++ or CUDA
toolchain. About 15 s here; compiling the native module as well would take three to six times
longer (`make install` builds it for the rest of the suite).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.edge.media import write_mp4

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

MUST_BE_ABSENT = (
    "onnxruntime",
    "cv2",
    "chdb",
    "fastapi",
    "starlette",
    "uvicorn",
    "scipy",
    "tensorrt",
    "temporalio",
    "sqlalchemy",
    "pyarrow",
)
"""What the API and the workers need and an edge box must not carry."""

INSTALL_TIMEOUT_S = 240


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def _index_unreachable() -> str | None:
    """Why the package index cannot be reached, or None when it answers."""
    url = f"{_index_url()}/pip/"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            response.read(1)
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a shell whose only Python is ``venv``'s."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(
    args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _explain(completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {completed.returncode}\n--- stdout\n{completed.stdout[-4000:]}"
        f"\n--- stderr\n{completed.stderr[-4000:]}"
    )


@pytest.fixture(scope="module")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with ``polyvision[edge]`` installed from the working tree."""
    unreachable = _index_unreachable()
    if unreachable is not None:
        pytest.skip(f"the package index is unreachable, cannot install: {unreachable}")
    root = tmp_path_factory.mktemp("edge-install")
    venv = root / "venv"
    env = _clean_env(venv)
    created = _run([sys.executable, "-m", "venv", str(venv)], env=env, cwd=root)
    assert created.returncode == 0, _explain(created)
    installed = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--config-settings",
            "wheel.cmake=false",
            # Nothing of this build lands in the working tree's `build/`.
            "--config-settings",
            f"build-dir={root / 'build'}",
            f"{REPO}[edge]",
        ],
        env=env,
        cwd=root,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert installed.returncode == 0, _explain(installed)
    return venv


def _venv_python(venv: Path, code: str, *, cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd is outside the working tree: `python -c` puts it first on sys.path, and the tree's
    # own `edge/` and `polyvision/` must not stand in for the installed ones.
    return _run(
        [str(venv / "bin" / "python"), "-c", textwrap.dedent(code)],
        env=_clean_env(venv),
        cwd=cwd,
    )


def test_polyvision_edge_runs(edge_venv: Path, tmp_path: Path) -> None:
    env = _clean_env(edge_venv)
    script = edge_venv / "bin" / "polyvision-edge"
    helped = _run([str(script), "--help"], env=env, cwd=tmp_path)
    assert helped.returncode == 0, _explain(helped)
    for command in ("provision", "upload", "watch", "status"):
        assert command in helped.stdout
    status = _run(
        [str(script), "--state-dir", str(tmp_path / "state"), "status", "--json"],
        env=env,
        cwd=tmp_path,
    )
    assert status.returncode == 0, _explain(status)
    assert json.loads(status.stdout) == []


def test_the_server_command_says_which_extra_it_needs(edge_venv: Path, tmp_path: Path) -> None:
    # Every extra installs `polyvision`; on an edge box it explains itself in one line.
    ran = _run(
        [str(edge_venv / "bin" / "polyvision"), "--help"], env=_clean_env(edge_venv), cwd=tmp_path
    )
    assert ran.returncode == 2, _explain(ran)
    assert "Traceback" not in ran.stderr
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith("polyvision: this installation lacks the package")
    assert "polyvision[stack]" in line


def test_the_heavy_packages_are_not_installed(edge_venv: Path, tmp_path: Path) -> None:
    probed = _venv_python(
        edge_venv,
        f"""
        import importlib.util, json
        print(json.dumps({{name: importlib.util.find_spec(name) is not None
                          for name in {list(MUST_BE_ABSENT)!r}}}))
        """,
        cwd=tmp_path,
    )
    assert probed.returncode == 0, _explain(probed)
    present = sorted(name for name, found in json.loads(probed.stdout).items() if found)
    assert present == [], f"an edge install must not carry {present}"


def test_the_edge_agent_imports_from_the_install(edge_venv: Path, tmp_path: Path) -> None:
    imported = _venv_python(
        edge_venv,
        """
        import json
        import edge.cli, edge.client, edge.keys, edge.spool, edge.uploader, edge.watch
        import polyvision.device_tokens
        print(json.dumps([edge.cli.__file__, polyvision.device_tokens.__file__]))
        """,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, _explain(imported)
    site = (edge_venv / "lib").resolve()
    for module_file in json.loads(imported.stdout):
        assert Path(module_file).resolve().is_relative_to(site), module_file
    assert not list(site.glob("python*/site-packages/native/_native*.so")), "built natively"


def test_the_edge_install_counts_frames(edge_venv: Path, tmp_path: Path) -> None:
    """PyAV is in `[edge]` for this: the upload protocol sends each side's frame count."""
    recording = write_mp4(tmp_path / "clip_left.mp4", 7)
    counted = _venv_python(
        edge_venv,
        f"""
        from pathlib import Path
        from edge.uploader import count_frames
        print(count_frames(Path({str(recording)!r})))
        """,
        cwd=tmp_path,
    )
    assert counted.returncode == 0, _explain(counted)
    assert int(counted.stdout) == 7
