"""``pallet serve`` imports what its configuration uses, and nothing else (issue 12, idle memory).

Each check runs a fresh interpreter and reads its ``sys.modules``: the parent of ``--workers N``,
which must stay small, and a worker on the embedded default (SQLite, local folder) built the
way ``pallet serve`` builds it, after it has answered a few requests. Nothing here is timed or
measured in bytes: a module that comes back is a regression whatever it weighs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from pallet.config import Settings
from pallet.db.engine import make_engine
from pallet.db.migrate import upgrade

#: Never in a worker of the embedded default: S3, migrations, the client, README rendering, the
#: PostgreSQL dialect.
NOT_IN_A_WORKER = (
    "alembic",
    "boto3",
    "botocore",
    "docutils",
    "httpx",
    "mako",
    "pallet.client",
    "pallet.db.migrate",
    "pallet.storage.s3",
    "psycopg",
    "pygments",
    "readme_renderer",
    "rich",
    "s3transfer",
    "sqlalchemy.dialects.postgresql",
)
#: Never in the parent of ``--workers N``: everything a worker loads for itself.
NOT_IN_THE_PARENT = (
    *NOT_IN_A_WORKER,
    "anyio",
    "asyncio",
    "pallet.app",
    "prometheus_client",
    "sqlalchemy",
    "ssl",
    "starlette",
    "uvicorn",
    "uvloop",
)

_WORKER = """
import json, os, socket, sys, threading, urllib.request
from pallet.config import Settings

settings = Settings.from_env(data_dir=sys.argv[1]).resolved()
os.environ.update(settings.to_env())
import uvicorn
from pallet.cli.serve import _uvicorn_options

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
server = uvicorn.Server(uvicorn.Config(**_uvicorn_options(settings)))
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
answers = []

def client():
    try:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        for path in ("/simple/", "/simple/nothing-here/", "/_/health", "/_/metrics"):
            try:
                answers.append(opener.open(f"http://127.0.0.1:{port}{path}", timeout=30).status)
            except urllib.error.HTTPError as err:
                answers.append(err.code)
    finally:
        server.should_exit = True

threading.Thread(target=client, daemon=True).start()
server.run(sockets=[sock])
print(json.dumps({"answers": answers, "modules": sorted(sys.modules)}))
"""

_PARENT = """
import json, sys
from pallet.cli import main
from pallet.cli import supervisor

def instead_of_workers(self):
    print(json.dumps(sorted(sys.modules)))
    return 0

supervisor.Supervisor.run = instead_of_workers
sys.exit(main(sys.argv[1:]))
"""


def _probe(code: str, *args: str) -> Any:
    """Run ``code`` in a fresh interpreter; what it printed last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _loaded(names: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))


def test_a_worker_of_the_embedded_default_imports_only_what_it_uses(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = make_engine(Settings.from_env(data_dir=data).resolved().database_url)
    upgrade(engine)  # here, not in the probe: migrating is not a worker's job
    engine.dispose()
    out = _probe(_WORKER, str(data))
    assert out["answers"] == [200, 404, 200, 200]
    assert _loaded(out["modules"], NOT_IN_A_WORKER) == []
    assert "sqlalchemy.dialects.sqlite" in out["modules"]  # the probe did reach the database


def test_the_parent_of_workers_imports_neither_the_app_nor_the_web_stack(tmp_path: Path) -> None:
    """Migrations ran (in a child) and the socket is bound; the parent is about to fork."""
    data = tmp_path / "data"
    args = ["serve", "--data-dir", str(data), "--workers", "2", "--port", "0"]
    modules = _probe(_PARENT, *args)
    assert "pallet.cli.supervisor" in modules
    assert _loaded(modules, NOT_IN_THE_PARENT) == []
    assert (data / "pallet.db").is_file()  # the child did migrate
