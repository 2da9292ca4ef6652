"""The state a fuzz run starts from, so near-valid requests reach deep code: a published release,
an open publishing session with a pending file for each mechanism (the http-post-bytes one has
received its bytes), live signed upload URLs, and tokens of every kind."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from pallet.auth.tokens import create_token
from pallet.db.models import FileUploadSession, UploadSession
from pallet.db.session import read_session, write_session
from pallet.services import Services
from tests.api.uploads import upload
from tests.dists import make_sdist, make_wheel
from tests.fuzz.harness import basic

V2 = "application/vnd.pypi.upload.v2+json"
META = {"api-version": "2.0"}
PROJECT = "fuzzpkg"


@dataclass
class Dist:
    path: Path
    data: bytes

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @classmethod
    def of(cls, path: Path) -> Dist:
        return cls(path, path.read_bytes())


@dataclass
class World:
    client: TestClient
    services: Services
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)
    published: list[Dist] = field(default_factory=list)
    upload_root: str = "/upload/2.0/"
    # the open publishing session
    version: str = ""
    sid: str = ""
    stage_token: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # mechanism -> file body
    dists: dict[str, Dist] = field(default_factory=dict)  # mechanism -> its dist
    _minor: int = 0

    # --- setup -----------------------------------------------------------------------------------

    def setup(self) -> World:
        with write_session(self.services.engine) as s:
            for name, scope, projects in (
                ("upload", "upload", None),
                ("read", "read", None),
                ("import", "import", None),
                ("other", "upload", ["other-project"]),
            ):
                self.tokens[name] = create_token(
                    s, self.services.settings.secret_key, scope=scope, projects=projects
                )[1]
        for dist in (self.wheel("1.0"), self.sdist("1.0")):
            r = upload(self.client, dist.path, self.tokens["upload"], name=PROJECT, version="1.0")
            assert r.status_code == 200, r.text
            self.published.append(dist)
        self.open_session()
        return self

    def wheel(self, version: str, tag: str = "py3-none-any") -> Dist:
        d = self.tmp / secrets.token_hex(4)
        d.mkdir(parents=True)
        return Dist.of(make_wheel(d, PROJECT, version, tag=tag))

    def sdist(self, version: str) -> Dist:
        d = self.tmp / secrets.token_hex(4)
        d.mkdir(parents=True)
        return Dist.of(make_sdist(d, PROJECT, version))

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['upload']}"}

    def v2(self, method: str, url: str, body: Any = None) -> Any:
        headers = {**self.auth, "Content-Type": V2, "Accept": V2}
        content = None if body is None else json.dumps({"meta": META, **body})
        return self.client.request(method, url, headers=headers, content=content)

    def open_session(self) -> None:
        """A fresh open session (next version) with a pending file per mechanism."""
        self._minor += 1
        self.version = f"2.{self._minor}"
        r = self.v2("POST", self.upload_root, {"name": PROJECT, "version": self.version})
        assert r.status_code == 201, r.text
        session = r.json()
        self.sid = session["links"]["session"].rstrip("/").rsplit("/", 1)[1]
        self.stage_token = session["session-token"]
        self.dists = {
            "http-post-bytes": self.wheel(self.version),
            "vnd-pallet-presigned-put": self.sdist(self.version),
            "vnd-pallet-s3multipart-presigned": self.wheel(self.version, "py2.py3-none-any"),
        }
        self.files = {}
        for mechanism, dist in self.dists.items():
            r = self.v2(
                "POST",
                session["links"]["upload"],
                {
                    "filename": dist.name,
                    "size": len(dist.data),
                    "hashes": {"sha256": dist.sha256},
                    "mechanism": mechanism,
                },
            )
            assert r.status_code == 202, r.text
            self.files[mechanism] = r.json()
        posted = self.client.post(
            self.files["http-post-bytes"]["mechanism"]["file_url"],
            content=self.dists["http-post-bytes"].data,
            headers={**self.auth, "Content-Type": "application/octet-stream"},
        )
        assert posted.status_code == 204, posted.text

    def fid(self, mechanism: str) -> str:
        return self.files[mechanism]["links"]["file-upload-session"].rstrip("/").rsplit("/", 1)[1]

    def session_path(self) -> str:
        return f"{self.upload_root}sessions/{self.sid}/"

    def file_path(self, mechanism: str) -> str:
        return f"{self.session_path()}files/{self.fid(mechanism)}/"

    def ensure_open(self) -> None:
        """Reopen when the session or one of its files has left its starting state (a fuzzed
        request published, canceled, completed or deleted it)."""
        with read_session(self.services.engine) as s:
            session = s.execute(
                select(UploadSession.status).where(UploadSession.id == self.sid)
            ).scalar_one()
            files = s.execute(
                select(FileUploadSession.status).where(FileUploadSession.session_id == self.sid)
            ).scalars()
            fine = session == "open" and all(f == "pending" for f in files)
        if not fine:
            self.open_session()

    def refresh_urls(self) -> None:
        """Signed URLs are issued fresh on every GET of the file session."""
        for mechanism in ("vnd-pallet-presigned-put", "vnd-pallet-s3multipart-presigned"):
            r = self.v2("GET", self.file_path(mechanism))
            if r.status_code == 200:
                self.files[mechanism] = r.json()

    # --- values for path parameters --------------------------------------------------------------

    def real_values(self) -> dict[str, list[str]]:
        """Valid values of every path parameter kind, as this world holds them."""
        published = self.published[0]
        return {
            "sid": [self.sid],
            "fid": [self.fid(m) for m in self.files],
            # weighted towards the project that exists, so that its pages are reached
            "project": [PROJECT, PROJECT, PROJECT, "FuzzPkg", "fuzz_pkg", "other-project"],
            "version": ["1.0", "1.0.0", self.version, "9.9"],
            "sha256": [published.sha256, "0" * 64],
            "filename": [published.name, published.name + ".metadata", "x.whl"],
            "token": [self.stage_token, secrets.token_urlsafe(24)],
            "key": [
                f"staging/{self.sid}/{self.fid('vnd-pallet-presigned-put')}",
                "direct/" + "0" * 64,
            ],
        }

    def auth_headers(self) -> dict[str, dict[str, str] | None]:
        t = self.tokens
        return {
            "none": None,
            "bearer": {"Authorization": f"Bearer {t['upload']}"},
            "basic": {"Authorization": basic(t["upload"])},
            "read": {"Authorization": f"Bearer {t['read']}"},
            "import": {"Authorization": basic(t["import"])},
            "other-project": {"Authorization": f"Bearer {t['other']}"},
        }


def hostile_auth(token: str) -> list[str]:
    """Authorization values that are not a valid credential in as many shapes as possible."""
    token_id = token.split("_")[1]
    return [
        "Bearer ",
        "Bearer pallet_",
        f"Bearer pallet_{token_id}_wrong",
        f"Bearer pallet_{'0' * 16}_{'x' * 40}",
        f"Bearer {token}x",
        "Bearer " + "a" * 10_000,
        "Basic !!!",
        "Basic " + "QQ==" * 3,
        basic(token, user=""),
        basic(""),
        basic("pallet_" + "\x00" * 16 + "_x"),
        basic(f"pallet_{token_id}_\x00"),
        basic("pallet_" + "é" * 16 + "_x"),
        basic("\udcff"),
        "Digest username=x",
        "bearer " + token,
        "BASIC " + basic(token).split(" ", 1)[1],
    ]
