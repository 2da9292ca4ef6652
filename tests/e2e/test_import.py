"""Historical files: ``pallet import`` as a subprocess into a live server's index, the ``import``
token scope on the legacy API and on Upload 2.0, and installs of what got in with real pip and
uv. The shapes are those older tools wrote (non-normalised names, ``.zip`` sdists, Metadata 1.0
with classifiers, Metadata 2.0 wheels); the real-world corpus suite runs real files."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.dists import make_sdist, make_wheel
from tests.e2e.support import (
    BIN,
    Server,
    client_env,
    describe,
    listed,
    make_venv,
    pallet_command,
    run,
)

pytestmark = pytest.mark.e2e


def pkg_info(name: str, version: str, metadata_version: str = "1.0") -> str:
    return (
        f"Metadata-Version: {metadata_version}\nName: {name}\nVersion: {version}\n"
        "Summary: from an older tool\nClassifier: Programming Language :: Python\n\n"
    )


def zip_sdist(directory: Path, name: str, version: str) -> Path:
    path = directory / f"{name}-{version}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}-{version}/PKG-INFO", pkg_info(name, version))
        zf.writestr(f"{name}-{version}/setup.py", "from distutils.core import setup\n")
    return path


def historical(directory: Path) -> dict[str, Path]:
    """One file per shape PyPI once served but refuses for new uploads, plus two it never
    should: a non-PEP 440 version and an archive that escapes its directory."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "dotted-wheel": make_wheel(
            directory,
            "Acme.Dotted",
            "1.0",
            filename="Acme.Dotted-1.0-py3-none-any.whl",
            metadata=pkg_info("Acme.Dotted", "1.0", "2.0"),
        ),
        "old-sdist": make_sdist(
            directory,
            "Acme_Old",
            "0.5",
            filename="Acme_Old-0.5.tar.gz",
            top="Acme_Old-0.5",
            metadata=pkg_info("Acme_Old", "0.5"),
        ),
        "zip-sdist": zip_sdist(directory, "acme_zip", "0.9"),
        "non-pep440": make_sdist(
            directory,
            "acme_tz",
            "2010h",
            filename="acme_tz-2010h.tar.gz",
            metadata=pkg_info("acme_tz", "2010h"),
        ),
    }
    escape = make_wheel(directory, "acme_escape", "1.0")
    buffer = io.BytesIO(escape.read_bytes())
    with zipfile.ZipFile(buffer, "a") as zf:
        zf.writestr("../../escape.py", b"boom")
    escape.write_bytes(buffer.getvalue())
    files["escape"] = escape
    return files


def import_json(server: Server, *paths: Path) -> tuple[int, dict]:
    result = server.cli("import", *map(str, paths), "--json", timeout=120)
    return result.returncode, json.loads(result.stdout)


def test_import_cli_takes_historical_files_and_refuses_the_unsafe(
    server: Server, tmp_path: Path
) -> None:
    files = historical(tmp_path / "mirror")
    code, first = import_json(server, tmp_path / "mirror")
    by_name = {f["filename"]: f for f in first["files"]}
    assert code == 1, first  # something was refused
    accepted = ("dotted-wheel", "old-sdist", "zip-sdist")
    assert [by_name[files[k].name]["status"] for k in accepted] == ["imported"] * 3
    assert "PEP 440" in by_name[files["non-pep440"].name]["reason"]
    assert "escape" in by_name[files["escape"].name]["reason"]
    assert (first["imported"], first["present"], first["refused"]) == (3, 0, 2)

    code, again = import_json(server, tmp_path / "mirror", files["zip-sdist"])
    assert (again["imported"], again["present"], again["refused"]) == (0, 3, 2), again

    # Served under the normalised project names, with the bytes' sha256, on the next request.
    for key, project in (("dotted-wheel", "acme-dotted"), ("old-sdist", "acme-old")):
        digest = hashlib.sha256(files[key].read_bytes()).hexdigest()
        assert listed(server, project) == {files[key].name: digest}
    assert files["zip-sdist"].name in listed(server, "acme-zip")


@pytest.mark.slow
def test_imported_non_normalised_wheel_installs_with_pip_and_uv(
    server: Server, tmp_path: Path
) -> None:
    wheel = make_wheel(
        tmp_path, "Acme.Install", "2.0", filename="Acme.Install-2.0-py3-none-any.whl"
    )
    code, result = import_json(server, wheel)
    assert code == 0 and result["imported"] == 1, result
    env = client_env(tmp_path)
    python = make_venv(tmp_path / "venv", env, pip=True)
    pip = run(
        [python, "-m", "pip", "install", "--index-url", server.simple_url, "acme.install==2.0"],
        env=env,
    )
    assert pip.returncode == 0, describe(pip)
    uv_target = tmp_path / "uv-target"
    uv = run(
        [BIN / "uv", "pip", "install", "--index-url", server.simple_url, "--target", uv_target,
         "--python", python, "Acme.Install==2.0"],
        env=env,
    )
    assert uv.returncode == 0, describe(uv)
    assert (uv_target / "acme_install").is_dir()


def publish(server: Server, token: str, *args: str | Path) -> tuple[int, str]:
    env = client_env(server.data_dir.parent / "client")
    cmd = [*pallet_command(), "publish", "--url", server.url, "--token", token, *map(str, args)]
    result = run(cmd, env=env, timeout=120)
    return result.returncode, result.stdout


@pytest.mark.parametrize("protocol", ["legacy", "2.0"])
def test_import_scope_applies_the_import_rules_to_uploads(
    server: Server, tmp_path: Path, protocol: str
) -> None:
    tag = protocol.replace(".", "")
    name = f"Acme.Scoped{tag}"
    wheel = make_wheel(tmp_path, name, "1.0", filename=f"{name}-1.0-py3-none-any.whl")
    sdist = zip_sdist(tmp_path, f"acme_scoped_zip{tag}", "1.0")
    args = ("--protocol", protocol)
    for dist in (wheel, sdist):
        code, out = publish(server, server.token, *args, dist)
        assert code != 0 and "import rules" in out, out  # the ordinary token: PyPI's rules
    importer = server.create_token("--scope", "import")
    for dist in (wheel, sdist):
        code, out = publish(server, importer, *args, dist)
        assert code == 0, out
    assert wheel.name in listed(server, name)
    assert sdist.name in listed(server, sdist.name.rsplit("-", 1)[0])
