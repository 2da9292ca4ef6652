"""``GET /openapi.json``: a valid OpenAPI 3.1 document that names exactly the routes the app
registers under the prefixes it covers, served with its media type, private on a private index.
The fuzz tests check every response they provoke against it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from pallet.app import create_app
from pallet.auth.tokens import create_token
from pallet.config import Settings
from pallet.db.migrate import upgrade
from pallet.db.session import write_session
from pallet.openapi import OPENAPI_MEDIA_TYPE, document
from pallet.services import Services

#: Everything under these is described (the upload root is added per app).
COVERED = (
    "/_/upload-api",
    "/_/health",
    "/_/ready",
    "/_/blobs/",
    "/direct/",
    "/legacy",
    "/simple",
    "/pypi/",
    "/_/oidc/",
    "/integrity/",
    "/namespace",
    "/_/proxy/",
)
COVERED_EXACT = {("/", "POST"), ("/openapi.json", "GET")}
METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}  # HEAD rides along with GET


def app_routes(routes: list, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path template, method) of every route, Mounts flattened, converters dropped."""
    for route in routes:
        if isinstance(route, Mount):
            yield from app_routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + route.path)
            for method in route.methods or {"GET"}:
                if method in METHODS:
                    yield path, method


def covered(path: str, method: str, upload_root: str) -> bool:
    return path.startswith((*COVERED, upload_root)) or (path, method) in COVERED_EXACT


def documented(doc: dict) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method.upper() in METHODS
    }


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator:
    made: list[tuple[TestClient, Services]] = []

    def factory(**overrides: object) -> tuple[TestClient, Services]:
        data = tmp_path / f"data{len(made)}"
        overrides.setdefault("allowed_hosts", "testserver")
        settings = Settings(
            data_dir=data, database_url=f"sqlite:///{data}.db", **overrides
        ).resolved()
        services = Services.from_settings(settings)
        upgrade(services.engine)
        client = TestClient(create_app(services=services))
        made.append((client, services))
        return client, services

    yield factory
    for _client, services in made:
        services.close()


@pytest.mark.parametrize("root", ["/upload/2.0/", "/api/v2/upload/"])
def test_document_is_valid_openapi_and_matches_the_routes(make_app, root: str) -> None:  # noqa: ANN001
    client, services = make_app(upload_root=root)
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == OPENAPI_MEDIA_TYPE
    doc = r.json()
    validate(doc)  # OpenAPI 3.1 structure, $refs resolved, path parameters declared
    assert doc["openapi"].startswith("3.1.")
    assert doc["servers"] == [{"url": "http://testserver"}]

    registered = {
        (path, method)
        for path, method in app_routes(client.app.routes)
        if covered(path, method, root)
    }
    described = documented(doc)
    assert registered - described == set(), "routes the document does not describe"
    assert described - registered == set(), "the document describes routes that do not exist"
    # The Upload 2.0 endpoints, their mechanisms' byte routes and the v2 media type are there.
    assert any(p.startswith(root) and p.endswith("/content") for p, _ in described)
    assert any(p.endswith("/parts") for p, _ in described)
    create = doc["paths"][root]["post"]
    assert "application/vnd.pypi.upload.v2+json" in create["requestBody"]["content"]


def test_every_error_is_a_problem_document() -> None:
    doc = document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            responses = op["responses"]
            assert "4XX" in responses, (method, path)
            for status, response in responses.items():
                if status[0] not in "45":
                    continue
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[1]
                    response = doc["components"]["responses"][name]
                content = response["content"]
                assert "application/problem+json" in content, (method, path, status)
                schema = content["application/problem+json"]["schema"]["$ref"]
                name = schema.rsplit("/", 1)[1]
                if name not in ("Problem", "Upload2Problem"):  # a Problem with more members
                    base = doc["components"]["schemas"][name]["allOf"][0]["$ref"]
                    assert base.endswith("/Problem"), (method, path, status)
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}


def test_private_index_asks_for_a_token(make_app) -> None:  # noqa: ANN001
    client, services = make_app(private=True)
    r = client.get("/openapi.json")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    with write_session(services.engine) as s:
        _row, token = create_token(s, services.settings.secret_key, scope="read")
    r = client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json()["paths"]


def test_head_and_base_url(make_app) -> None:  # noqa: ANN001
    client, _ = make_app(base_url="https://pypi.example.org/pallet")
    assert client.head("/openapi.json").status_code == 200
    assert client.get("/openapi.json").json()["servers"] == [
        {"url": "https://pypi.example.org/pallet"}
    ]
