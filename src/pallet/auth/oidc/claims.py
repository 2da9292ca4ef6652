"""Which OIDC tokens a trusted publisher accepts: the claim rules of each CI provider.

Pure logic (no I/O): a publisher is a ``kind`` and its ``rules``; ``mismatches`` names the claims
of a verified token that break them. The rules follow what PyPI checks, so a workflow that
publishes there publishes here:

- GitHub Actions: ``repository`` and ``repository_owner`` (case-insensitive, as GitHub's names
  are), ``repository_owner_id`` once known (a deleted and re-registered owner name keeps its
  name but not its id), ``job_workflow_ref`` naming the workflow file in that repository,
  ``environment`` when one is configured, and never ``pull_request_target`` (it runs with the
  base repository's identity on code from a fork).
- GitLab CI/CD: ``project_path``, ``namespace_path``, ``ci_config_ref_uri`` naming the pipeline
  file, ``environment`` when configured (GitLab's environments are case-sensitive).
- Generic: exact values for named claims, for CI systems with no built-in rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

GITHUB = "github"
GITLAB = "gitlab"
GENERIC = "generic"
KINDS = (GITHUB, GITLAB, GENERIC)

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"

#: Claims every accepted token carries, whatever the provider: ``jti`` makes replay
#: protection possible, the times bound its use.
REQUIRED = ("iss", "aud", "exp", "iat", "jti")
_PROVIDER_REQUIRED = {
    GITHUB: (
        "repository",
        "repository_owner",
        "repository_owner_id",
        "job_workflow_ref",
        "ref",
        "sha",
    ),
    GITLAB: ("sub", "project_path", "namespace_path", "ci_config_ref_uri", "ref_path", "sha"),
    GENERIC: (),
}


class RuleError(ValueError):
    """A publisher's settings that can never match a real token (said when it is added)."""


def _owner_repo(value: str, what: str) -> tuple[str, str]:
    owner, sep, repo = value.strip().strip("/").rpartition("/")
    if not sep or not owner or not repo or " " in value:
        raise RuleError(f"{what} must be OWNER/NAME, not {value!r}")
    return owner, repo


def github_rules(
    repository: str, workflow: str, environment: str | None = None, owner_id: str | None = None
) -> dict[str, Any]:
    owner, repo = _owner_repo(repository, "--github")
    if "/" in owner:
        raise RuleError(f"--github must be OWNER/REPO, not {repository!r}")
    if "/" in workflow or not workflow.endswith((".yml", ".yaml")):
        raise RuleError(f"--workflow is a file name in .github/workflows/, not {workflow!r}")
    return {
        "repository": f"{owner}/{repo}",
        "workflow": workflow,
        "environment": environment or None,
        "owner_id": owner_id or None,
    }


def gitlab_rules(
    project_path: str, workflow_path: str, environment: str | None = None
) -> dict[str, Any]:
    _owner_repo(project_path, "--gitlab")
    if workflow_path.startswith("/") or not workflow_path.endswith((".yml", ".yaml")):
        raise RuleError(
            f"--workflow-path is the pipeline file's path in the project, not {workflow_path!r}"
        )
    return {
        "project_path": project_path.strip().strip("/"),
        "workflow_path": workflow_path,
        "environment": environment or None,
    }


def generic_rules(claims: Mapping[str, str]) -> dict[str, Any]:
    if not claims:
        raise RuleError("a generic publisher needs at least one --claim NAME=VALUE")
    if "sub" not in claims:
        raise RuleError("a generic publisher must fix the 'sub' claim (--claim sub=...)")
    return {"claims": dict(sorted(claims.items()))}


def identity(kind: str, rules: Mapping[str, Any]) -> str:
    """The publisher's canonical text: how it is listed, and what makes it unique."""
    if kind == GITHUB:
        text = f"github:{rules['repository'].lower()}/.github/workflows/{rules['workflow']}"
    elif kind == GITLAB:
        text = f"gitlab:{rules['project_path'].lower()}//{rules['workflow_path']}"
    else:
        text = "generic:" + ",".join(f"{k}={v}" for k, v in rules["claims"].items())
    if rules.get("environment"):
        text += f" environment={rules['environment']}"
    return text


def mismatches(
    kind: str, issuer: str, rules: Mapping[str, Any], claims: Mapping[str, Any]
) -> list[str]:
    """The names of the claims that break the rules (empty: the token is this publisher's).

    Names only, never values: the answer goes back to whoever presented the token."""
    missing = [c for c in _PROVIDER_REQUIRED[kind] if not isinstance(claims.get(c), str)]
    if missing:
        return missing
    if kind == GITHUB:
        return _github(rules, claims)
    if kind == GITLAB:
        return _gitlab(issuer, rules, claims)
    return [name for name, value in rules["claims"].items() if str(claims.get(name)) != value]


def _github(rules: Mapping[str, Any], claims: Mapping[str, Any]) -> list[str]:
    bad = []
    repository = rules["repository"].lower()
    owner = repository.split("/", 1)[0]
    if claims["repository"].lower() != repository:
        bad.append("repository")
    if claims["repository_owner"].lower() != owner:
        bad.append("repository_owner")
    if rules.get("owner_id") and claims["repository_owner_id"] != rules["owner_id"]:
        bad.append("repository_owner_id")
    # ``job_workflow_ref``: OWNER/REPO/.github/workflows/FILE@REF, the workflow that runs the
    # job, at the token's own ``ref`` or ``sha``.
    path, at, ref = claims["job_workflow_ref"].partition("@")
    expected = f"{repository}/.github/workflows/{rules['workflow']}"
    if not at or path.lower() != expected.lower() or ref not in (claims["ref"], claims["sha"]):
        bad.append("job_workflow_ref")
    if rules.get("environment") and str(claims.get("environment", "")).lower() != (
        rules["environment"].lower()
    ):
        bad.append("environment")
    if claims.get("event_name") == "pull_request_target":
        bad.append("event_name")
    return bad


def _gitlab(issuer: str, rules: Mapping[str, Any], claims: Mapping[str, Any]) -> list[str]:
    bad = []
    project = rules["project_path"].lower()
    if claims["project_path"].lower() != project:
        bad.append("project_path")
    if claims["namespace_path"].lower() != project.rpartition("/")[0]:
        bad.append("namespace_path")
    kind_of_sub, _, sub_project = claims["sub"].partition(":")
    if kind_of_sub != "project_path" or sub_project.partition(":")[0].lower() != project:
        bad.append("sub")
    # ``ci_config_ref_uri``: HOST/NAMESPACE/PROJECT//PIPELINE-FILE@REF, at the token's own
    # ``ref_path`` or ``sha``.
    uri, at, ref = claims["ci_config_ref_uri"].partition("@")
    expected = f"{urlsplit(issuer).netloc}/{project}//{rules['workflow_path']}"
    if not at or uri.lower() != expected.lower() or ref not in (claims["ref_path"], claims["sha"]):
        bad.append("ci_config_ref_uri")
    if rules.get("environment") and claims.get("environment") != rules["environment"]:
        bad.append("environment")
    return bad


#: The publisher kinds PEP 740 attestations can be verified against (pypi-attestations').
ATTESTING_KINDS = ("GitHub", "GitLab")


def publisher(
    kind: str, issuer: str, rules: Mapping[str, Any], claims: Mapping[str, Any]
) -> dict[str, Any]:
    """The identity recorded on a minted token and the files it uploads: PEP 740's publisher
    object for GitHub and GitLab; for a generic publisher, its issuer and rules (no attestation
    can be verified against it, so it never appears in provenance)."""
    environment = claims.get("environment")
    environment = environment if isinstance(environment, str) and environment else None
    if kind == GITHUB:
        return {
            "kind": "GitHub",
            "repository": claims["repository"],
            "workflow": rules["workflow"],
            "environment": environment,
        }
    if kind == GITLAB:
        return {
            "kind": "GitLab",
            "repository": claims["project_path"],
            "workflow_filepath": rules["workflow_path"],
            "environment": environment,
        }
    return {"kind": "generic", "issuer": issuer, "claims": dict(rules["claims"])}
