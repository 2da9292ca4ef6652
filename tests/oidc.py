"""A stand-in OIDC issuer on 127.0.0.1 for trusted-publishing tests.

It plays both sides a CI runner offers: the issuer (``/.well-known/openid-configuration`` and its
JWKS, what the index fetches) and GitHub Actions' ID-token endpoint (what ``uv publish`` and
``pallet publish`` call with ``ACTIONS_ID_TOKEN_REQUEST_URL``/``_TOKEN``). Tokens are RS256 JWTs
signed with a key made for the test run; ``claims`` builds the claim sets GitHub and GitLab send.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

REQUEST_TOKEN = "runner-request-token"  # noqa: S105 - what the runner's env var carries


def github_claims(
    repository: str = "acme/widgets",
    workflow: str = "release.yml",
    *,
    ref: str = "refs/tags/v1.0",
    environment: str | None = None,
    event_name: str = "push",
    owner_id: str = "4242",
) -> dict[str, Any]:
    owner = repository.split("/")[0]
    claims = {
        "sub": f"repo:{repository}:ref:{ref}",
        "repository": repository,
        "repository_owner": owner,
        "repository_owner_id": owner_id,
        "repository_id": "9001",
        "job_workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
        "workflow_ref": f"{repository}/.github/workflows/{workflow}@{ref}",
        "ref": ref,
        "sha": "08802efe1f8e5fec4ad842d6b8ce97656092ee72",
        "event_name": event_name,
        "actor": "octocat",
        "run_id": "1",
    }
    if environment:
        claims["environment"] = environment
    return claims


def gitlab_claims(
    project_path: str = "acme/widgets",
    workflow_path: str = ".gitlab-ci.yml",
    *,
    host: str,
    ref_path: str = "refs/heads/main",
    environment: str | None = None,
) -> dict[str, Any]:
    claims = {
        "sub": f"project_path:{project_path}:ref_type:branch:ref:main",
        "project_path": project_path,
        "namespace_path": project_path.rpartition("/")[0],
        "ci_config_ref_uri": f"{host}/{project_path}//{workflow_path}@{ref_path}",
        "ref_path": ref_path,
        "sha": "08802efe1f8e5fec4ad842d6b8ce97656092ee72",
    }
    if environment:
        claims["environment"] = environment
    return claims


class Issuer:
    """Started by ``start()``; ``issuer`` is its URL, ``sign()`` makes tokens."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(4)
        #: What the ID-token endpoint signs next (GitHub's claims, with ``aud`` from the query).
        self.next_claims: Callable[[], dict[str, Any]] = github_claims
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def issuer(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_request_url(self) -> str:
        return f"{self.issuer}/token?api-version=2.0"

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        audience: str | None = "pallet",
        lifetime: int = 300,
        issued: float | None = None,
        issuer: str | None = None,
        key: Any = None,
        kid: str | None = None,
        algorithm: str = "RS256",
    ) -> str:
        now = int(time.time() if issued is None else issued)
        payload = {
            "iss": issuer or self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(16),
            **claims,
        }
        if audience is not None:
            payload["aud"] = audience
        return jwt.encode(
            payload, key or self.key, algorithm=algorithm, headers={"kid": kid or self.kid}
        )

    def start(self) -> Issuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urllib.parse.urlsplit(self.path)
                issuer.requests.append(url.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.issuer, "jwks_uri": f"{issuer.issuer}/jwks"})
                elif url.path == "/jwks":
                    self._json(issuer.jwks())
                elif url.path == "/token":
                    if self.headers.get("Authorization", "").lower() != f"bearer {REQUEST_TOKEN}":
                        self._json({"message": "bad request token"}, 401)
                        return
                    query = urllib.parse.parse_qs(url.query)
                    audience = query.get("audience", [None])[0]
                    self._json({"value": issuer.sign(issuer.next_claims(), audience=audience)})
                else:
                    self._json({"message": "not found"}, 404)

            def _json(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def github_env(self) -> dict[str, str]:
        """The variables a GitHub Actions runner sets for a job with ``id-token: write``."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.token_request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        }
