"""What ``pallet publish`` checks before sending and what only the index finds afterwards, as
docs/publish.md states it: a broken archive never leaves the machine, while a metadata-rule
problem is found by the server once the bytes are there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dists import core_metadata, make_wheel
from tests.e2e.support import Server, describe, http_get, pallet_command, run

pytestmark = pytest.mark.e2e


def publish(server: Server, env: dict[str, str], *files: Path):  # noqa: ANN201
    cmd = [*pallet_command(), "publish", "--url", f"{server.url}/", "-t", server.token, *files]
    return run(cmd, env=env)


def test_broken_archive_is_refused_before_any_byte(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "cut-short", "1.0")
    wheel.write_bytes(wheel.read_bytes()[:-200])  # truncated: no central directory
    requests_before = len(server.log(None).splitlines())
    result = publish(server, env, wheel)
    assert result.returncode != 0, describe(result)
    assert wheel.name in result.stdout, describe(result)
    assert "opened publishing session" not in result.stdout, describe(result)
    # Nothing but discovery reached the index: no session, no file, no bytes.
    since = server.log(None).splitlines()[requests_before:]
    assert not [line for line in since if '"POST ' in line or '"PUT ' in line], since


def test_name_mismatch_is_refused_before_any_byte(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "says-one", "1.0", metadata=core_metadata("says-other", "1.0"))
    result = publish(server, env, wheel)
    assert result.returncode != 0, describe(result)
    assert "its metadata names project 'says-other'" in result.stdout, describe(result)
    assert "opened publishing session" not in result.stdout, describe(result)


@pytest.mark.parametrize(
    ("name", "extra", "reason"),
    [
        ("bad-requires", "Requires-Dist: foo >>> 1\n", "requires-dist"),
        ("no-license-file", "License-File: LICENSE\n", "License-File"),
    ],
)
def test_metadata_rules_are_the_servers_after_the_bytes(
    server: Server, env: dict[str, str], tmp_path: Path, name: str, extra: str, reason: str
) -> None:
    wheel = make_wheel(
        tmp_path, name, "1.0", metadata=core_metadata(name, "1.0", extra_headers=extra)
    )
    result = publish(server, env, wheel)
    assert result.returncode != 0, describe(result)
    lines = result.stdout.splitlines()
    sent = next(i for i, line in enumerate(lines) if f"{wheel.name}: sent" in line)
    failed = next(i for i, line in enumerate(lines) if f"{wheel.name}: failed: 400" in line)
    assert sent < failed, describe(result)  # the whole file went first
    assert reason in lines[failed], describe(result)
    assert "canceled" in result.stdout, describe(result)
    assert http_get(f"{server.simple_url}{name}/").status == 404
