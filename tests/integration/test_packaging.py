"""Packaging: the sdist and wheel install in a fresh venv and their commands run; the
Debian package builds, and unpacked into a throw-away root has commands and man pages.

The wheel test needs the package index (it installs the dependencies into the venv).
The .deb test is slow: it runs only with SARRA_SLOW=1 or in CI, and needs debhelper,
dh-python, pybuild-plugin-pyproject, python3-all, python3-setuptools, python3-wheel,
python3-docutils, python3-appdirs and man-db.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.fixtures.require import require_module

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("dd_post", "dd_subscribe", "dd_sara", "dd_log", "dd_watch", "dd_sender", "dd_poll")
COMMANDS += ("check_sarra",)
DEB_TOOLS = ("dpkg-buildpackage", "dh", "man")
MAN_PAGES = ("dd_post.1", "dd_subscribe.1", "dd_log.1", "dd_watch.1", "dd_post.7", "dd_log.7")
MAN_PAGES += ("sarra-options.5", "dd.8", "dd_sara.8", "dd_shovel.8", "dd_admin.8")
MAN_PAGES += ("dd_sender.1", "dd_poll.1")

pytestmark = pytest.mark.integration


def run(argv, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 600)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def user_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SARRA_SYSTEM")}
    env.update(HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / "c"), XDG_CACHE_HOME=str(tmp / "k"))
    return env


def copy_source(dest: Path) -> Path:
    """The tracked and new (not ignored) files of the checkout, as a release would have."""
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    for name in listed.stdout.splitlines():
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> Path:
    require_module("build")
    src = copy_source(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    made = run([sys.executable, "-m", "build", "--outdir", str(out), str(src)])
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    return out


def test_build_makes_an_sdist_and_a_wheel(dists):
    assert len(list(dists.glob("sarra-*.tar.gz"))) == 1
    assert len(list(dists.glob("sarra-*-py3-none-any.whl"))) == 1


def test_wheel_installs_in_a_fresh_venv_and_its_commands_run(dists, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    wheel = next(dists.glob("*.whl"))
    pip = run([str(env_dir / "bin" / "pip"), "install", "-q", str(wheel)])
    assert pip.returncode == 0, pip.stderr[-3000:]
    env = user_env(tmp_path)
    for command in COMMANDS + ("dd",):
        helped = run([str(env_dir / "bin" / command), "--help"], env=env, cwd=tmp_path)
        assert helped.returncode == 0, f"{command}: {helped.stderr}"
        assert "usage:" in helped.stdout
    status = run([str(env_dir / "bin" / "dd"), "status"], env=env, cwd=tmp_path)
    assert status.returncode == 3
    assert "no configurations" in status.stdout


slow = pytest.mark.skipif(
    not (os.environ.get("SARRA_SLOW") == "1" or os.environ.get("CI")),
    reason="slow: set SARRA_SLOW=1 (CI runs it)",
)


@pytest.fixture(scope="module")
def deb_root(tmp_path_factory) -> Path:
    missing = [tool for tool in DEB_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"cannot build the .deb: missing {missing} (see this module's docstring)")
    work = tmp_path_factory.mktemp("deb")
    src = copy_source(work / "sarra")
    # Debian's own python3 and tools, not a virtualenv's or pyenv's.
    env = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    env.pop("PYTHONPATH", None)
    made = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env)
    assert made.returncode == 0, made.stdout[-4000:] + made.stderr[-4000:]
    (deb,) = work.glob("sarra_*_all.deb")
    root = work / "root"
    unpacked = run(["dpkg-deb", "-x", str(deb), str(root)])
    assert unpacked.returncode == 0, unpacked.stderr
    return root


@pytest.mark.slow
@slow
def test_deb_holds_the_commands_and_they_run(deb_root, tmp_path):
    env = user_env(tmp_path)
    env.update(PYTHONPATH=str(deb_root / "usr/lib/python3/dist-packages"))
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    for command in COMMANDS + ("sarra",):
        path = deb_root / "usr/bin" / command
        assert path.is_file(), f"{command} missing from the package"
        helped = run([str(path), "--help"], env=env, cwd=tmp_path)
        assert helped.returncode == 0, f"{command}: {helped.stderr}"
    assert not (deb_root / "usr/bin/dd").exists(), "/usr/bin/dd belongs to coreutils"
    status = run([str(deb_root / "usr/bin/sarra"), "status"], env=env, cwd=tmp_path)
    assert status.returncode == 3


@pytest.mark.slow
@slow
def test_deb_holds_every_man_page_and_dd_subscribe_renders(deb_root):
    man = deb_root / "usr/share/man"
    pages = {p.name for p in man.glob("man?/*.gz")}
    for name in MAN_PAGES:
        assert f"{name}.gz" in pages, f"{name} missing from the package"
    pager = dict(os.environ, MANPAGER="cat", PAGER="cat")
    shown = run(["man", "-l", str(man / "man1/dd_subscribe.1.gz")], env=pager)
    assert shown.returncode == 0, shown.stderr
    assert "dd_subscribe" in shown.stdout and "SYNOPSIS" in shown.stdout


@pytest.mark.slow
@slow
def test_deb_holds_the_service_units_and_examples(deb_root):
    unit = (deb_root / "lib/systemd/system/sarra.service").read_text()
    assert "ExecStart=/usr/bin/sarra start" in unit and "User=sarra" in unit
    assert "SARRA_SYSTEM=1" in unit
    assert (deb_root / "lib/systemd/system/sarra-sanity.timer").is_file()
    metrics = (deb_root / "lib/systemd/system/sarra-metrics.service").read_text()
    assert "ExecStart=/usr/bin/sarra metrics --port " in metrics and "User=sarra" in metrics
    plugin = deb_root / "usr/lib/nagios/plugins/check_sarra"
    assert plugin.is_symlink() and os.readlink(plugin).endswith("bin/check_sarra")
    assert (deb_root / "etc/logrotate.d/sarra").is_file()
    assert (deb_root / "usr/share/doc/sarra/examples/default.conf").is_file()
    assert (deb_root / "usr/share/doc/sarra/examples/grafana-sarra.json").is_file()
