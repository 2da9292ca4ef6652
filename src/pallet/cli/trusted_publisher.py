"""``pallet trusted-publisher add|list|remove``: which CI identities may mint upload tokens.

pallet trusted-publisher add PROJECT --github OWNER/REPO --workflow release.yml [--environment pypi]
pallet trusted-publisher add PROJECT --gitlab GROUP/PROJECT --workflow-path .gitlab-ci.yml
pallet trusted-publisher add PROJECT --issuer URL --claim sub=... [--claim NAME=VALUE ...]
"""

from __future__ import annotations

import argparse

from pallet.cli.common import existing_index


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser("trusted-publisher", help="CI identities that publish without a secret")
    tsub = p.add_subparsers(dest="tp_command", required=True)
    a = tsub.add_parser(
        "add",
        help="trust a CI workflow to publish PROJECT (which need not exist yet)",
        description="Exactly one of --github, --gitlab or --claim (a generic issuer).",
    )
    common(a)
    a.add_argument("project")
    who = a.add_mutually_exclusive_group(required=True)
    who.add_argument("--github", metavar="OWNER/REPO", help="a GitHub Actions workflow")
    who.add_argument("--gitlab", metavar="NAMESPACE/PROJECT", help="a GitLab CI/CD pipeline")
    who.add_argument(
        "--claim",
        action="append",
        metavar="NAME=VALUE",
        help="a generic issuer: a claim the token must carry exactly (repeatable; sub required)",
    )
    a.add_argument("--workflow", help="GitHub: the workflow file in .github/workflows/")
    a.add_argument("--workflow-path", help="GitLab: the pipeline file (.gitlab-ci.yml)")
    a.add_argument("--environment", help="only jobs running in this deployment environment")
    a.add_argument(
        "--owner-id",
        help="GitHub: the owner's numeric id (else pinned from the first token exchanged)",
    )
    a.add_argument(
        "--issuer",
        help="the OIDC issuer (default: GitHub's or gitlab.com; GitHub Enterprise, "
        "self-managed GitLab and generic issuers name theirs)",
    )
    a.set_defaults(func=run_add)
    ls = tsub.add_parser("list", help="list trusted publishers")
    common(ls)
    ls.add_argument("project", nargs="?")
    ls.set_defaults(func=run_list)
    rm = tsub.add_parser("remove", help="remove a trusted publisher by id")
    common(rm)
    rm.add_argument("publisher_id", type=int)
    rm.set_defaults(func=run_remove)


def _kind_and_rules(args: argparse.Namespace) -> tuple[str, str, dict]:
    from pallet.auth.oidc import claims

    if args.github:
        if not args.workflow or args.workflow_path:
            raise claims.RuleError("--github takes --workflow FILE.yml")
        rules = claims.github_rules(args.github, args.workflow, args.environment, args.owner_id)
        return claims.GITHUB, args.issuer or claims.GITHUB_ISSUER, rules
    if args.gitlab:
        if not args.workflow_path or args.workflow or args.owner_id:
            raise claims.RuleError("--gitlab takes --workflow-path PATH")
        rules = claims.gitlab_rules(args.gitlab, args.workflow_path, args.environment)
        return claims.GITLAB, args.issuer or claims.GITLAB_ISSUER, rules
    if not args.issuer:
        raise claims.RuleError("a generic publisher (--claim) needs --issuer")
    if args.workflow or args.workflow_path or args.environment or args.owner_id:
        raise claims.RuleError("a generic publisher takes --claim rules only")
    pairs = {}
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise claims.RuleError(f"--claim takes NAME=VALUE, not {item!r}")
        pairs[name] = value
    return claims.GENERIC, args.issuer, claims.generic_rules(pairs)


def run_add(args: argparse.Namespace) -> int:
    from pallet.auth.oidc import claims, publishers
    from pallet.db.session import write_session

    try:
        kind, issuer, rules = _kind_and_rules(args)
    except claims.RuleError as exc:
        raise SystemExit(f"error: {exc}") from None
    _settings, engine = existing_index(args)
    try:
        with write_session(engine, durable=True) as s:
            row, new = publishers.add(s, args.project, kind, issuer, rules)
            line = _line(row)
    except claims.RuleError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(("added " if new else "already there: ") + line)
    return 0


def _line(row) -> str:  # noqa: ANN001
    state = "  (pending: the first token minted creates the project)" if row.pending else ""
    return f"{row.id}  {row.project}  {row.identity}  issuer={row.issuer}{state}"


def run_list(args: argparse.Namespace) -> int:
    from pallet.auth.oidc import publishers
    from pallet.db.session import read_session

    _settings, engine = existing_index(args)
    with read_session(engine) as s:
        for row in publishers.listed(s, args.project):
            print(_line(row))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from pallet.auth.oidc import publishers
    from pallet.db.session import write_session

    _settings, engine = existing_index(args)
    with write_session(engine, durable=True) as s:
        row = publishers.remove(s, args.publisher_id)
    if row is None:
        print(f"no trusted publisher with id {args.publisher_id}")
        return 1
    print(f"removed {args.publisher_id} ({row.project}  {row.identity})")
    return 0
