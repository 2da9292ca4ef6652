"""``pallet publish DIST...`` and ``pallet session status|publish|cancel URL``: the Upload 2.0
client on the command line. Human output goes to stdout (stderr with ``--json``, whose summary
owns stdout); errors are one line; the exit code is 0 only if every release succeeded."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

from pallet.config import parse_size


def _credential_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "credentials (flags, then PALLET_* variables, then config, then .netrc)"
    )
    g.add_argument(
        "--repository",
        "-r",
        help="a repository named in ~/.config/pallet/config.toml or [tool.pallet]",
    )
    g.add_argument("--token", "-t", help="API token (env PALLET_TOKEN)")
    g.add_argument("--username", "-u", help="user name (env PALLET_USERNAME)")
    g.add_argument("--password", "-p", help="password (env PALLET_PASSWORD)")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")


def register(sub, common) -> None:  # noqa: ANN001, ARG001 - client commands need no data dir
    p = sub.add_parser(
        "publish",
        help="upload distributions (Upload 2.0, or the legacy API where that is all there is)",
        description="Publish wheels and sdists: one PEP 694 publishing session per release.",
    )
    p.add_argument("dists", nargs="*", metavar="DIST", help="files or globs, e.g. dist/*")
    p.add_argument(
        "--url", help="Upload 2.0 root, legacy upload URL or index base URL (env PALLET_URL)"
    )
    _credential_flags(p)
    p.add_argument(
        "--trusted-publishing",
        choices=["auto", "always", "never"],
        help="exchange the CI job's OIDC identity for an upload token: auto (default) does "
        "when in GitHub Actions or GitLab CI/CD with no other credentials "
        "(env PALLET_TRUSTED_PUBLISHING)",
    )
    p.add_argument("--protocol", choices=["auto", "2.0", "legacy"], default="auto")
    p.add_argument("--mechanism", help="force an upload mechanism (default: the best offered)")
    p.add_argument(
        "--multipart-threshold",
        type=parse_size,
        default="100M",
        help="files this large use multipart parts in parallel when offered (default 100M)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=3,
        help="files uploaded in parallel, over all releases (default 3)",
    )
    p.add_argument(
        "--part-jobs", type=int, default=4, help="parts of one file in parallel (default 4)"
    )
    p.add_argument(
        "--limit-rate",
        type=parse_size,
        default="0",
        help="most bytes per second to send (e.g. 50M)",
    )
    p.add_argument(
        "--stage", action="store_true", help="upload but do not publish: print the stage URL"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the open session of each release"
    )
    p.add_argument("--skip-existing", action="store_true", help="skip files the index already has")
    p.add_argument("--session", metavar="URL", help="add to / publish this open session")
    p.add_argument("--timeout", type=float, default=3600, help="longest wait for server processing")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars, one line per file")
    p.set_defaults(func=run_publish)

    s = sub.add_parser("session", help="status, publish or cancel an Upload 2.0 publishing session")
    s.add_argument("action", choices=["status", "publish", "cancel"])
    s.add_argument("url", metavar="URL", help="the session URL printed by `pallet publish`")
    _credential_flags(s)
    s.add_argument("--timeout", type=float, default=3600)
    s.set_defaults(func=run_session)


def _credentials(args: argparse.Namespace, url: str | None):  # noqa: ANN202
    from pallet.client.credentials import resolve

    return resolve(
        url=url,
        token=args.token,
        username=args.username,
        password=args.password,
        repository_name=args.repository,
        env=os.environ,
        cwd=Path.cwd(),
    )


def _fail(args: argparse.Namespace, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"ok": False, "error": message}))
    return 1


def _human(args: argparse.Namespace) -> IO[str]:
    return sys.stderr if args.json else sys.stdout


def run_publish(args: argparse.Namespace) -> int:
    from pallet.client import ClientError, DistError, collect
    from pallet.client.credentials import ConfigError
    from pallet.client.progress import reporter_for
    from pallet.client.publisher import Options, Publisher
    from pallet.client.results import Interrupted
    from pallet.client.transport import Transport

    if not args.dists and not args.session:
        return _fail(args, "nothing to publish: name distributions (dist/*) or --session URL")
    out = _human(args)
    try:
        creds = _credentials(args, args.url or (args.session if args.session else None))
        releases = collect(args.dists) if args.dists else {}
        creds, minted = _trusted_publishing(args, creds, out)
    except (ConfigError, DistError, ClientError) as exc:
        return _fail(args, str(exc))
    options = Options(
        protocol=args.protocol,
        mechanism=args.mechanism,
        multipart_threshold=args.multipart_threshold,
        jobs=args.jobs,
        part_jobs=args.part_jobs,
        stage=args.stage,
        resume=args.resume,
        skip_existing=args.skip_existing,
        session_url=args.session,
        timeout=args.timeout,
        limit_rate=args.limit_rate,
    )
    reporter = reporter_for(out, quiet=args.quiet or args.json)
    transport = Transport(creds.auth(), on_retry=lambda m: reporter.message(f"retry: {m}"))
    try:
        if not releases:  # --session URL alone: publish what is staged there
            return _session_action(args, transport, "publish", args.session)
        results = Publisher(transport, creds.url, options, reporter).publish(releases)
    except Interrupted as exc:
        return _interrupted(exc.session, out)
    except ClientError as exc:
        return _fail(args, str(exc))
    finally:
        transport.close()
        if minted is not None:
            from pallet.client.trusted_publishing import burn

            warning = burn(minted)
            if warning:
                print(f"warning: {warning}", file=out)
    for result in results:
        _report(result, out)
    if args.json:
        print(
            json.dumps(
                {"ok": all(r.ok for r in results), "releases": [r.to_dict() for r in results]},
                indent=2,
            )
        )
    return 0 if all(r.ok for r in results) else 1


def _trusted_publishing(args: argparse.Namespace, creds: Any, out: IO[str]) -> tuple[Any, Any]:
    """The credentials to upload with, and the minted token to revoke afterwards (or None).

    ``auto`` exchanges only in a CI that issues OIDC tokens and when nothing else was given,
    and falls back to no credentials (with a warning) when the exchange fails; ``always``
    fails instead, and refuses to run beside other credentials."""
    from pallet.client.credentials import ConfigError, Credentials
    from pallet.client.trusted_publishing import TrustedPublishingError, ci_name, mint

    mode = args.trusted_publishing or os.environ.get("PALLET_TRUSTED_PUBLISHING") or "auto"
    if mode not in ("auto", "always", "never"):
        raise ConfigError(f"PALLET_TRUSTED_PUBLISHING must be auto, always or never, not {mode!r}")
    if mode == "always" and creds.password is not None:
        raise ConfigError(
            f"--trusted-publishing always, but credentials came from {creds.source}: "
            "use one or the other"
        )
    wanted = mode == "always" or (
        mode == "auto" and creds.password is None and ci_name(os.environ) is not None
    )
    if not wanted:
        return creds, None
    try:
        minted = mint(creds.url, os.environ)
    except TrustedPublishingError as exc:
        if mode == "always":
            raise
        print(f"warning: {exc}; going on without credentials", file=out)
        return creds, None
    print(f"trusted publishing: minted a 15-minute token as {ci_name(os.environ)}", file=out)
    return Credentials(creds.url, None, minted.token, "trusted publishing"), minted


def _report(result: Any, out: IO[str]) -> None:
    what = f"{result.name} {result.version}"
    counts = {
        s: sum(f.status == s for f in result.files)
        for s in ("uploaded", "already-staged", "exists")
    }
    detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if result.status == "staged":
        print(f"staged {what} ({detail}); nothing is public yet. Try it:", file=out)
        print(
            f"  pip install --extra-index-url {result.stage} '{result.name}=={result.version}'",
            file=out,
        )
        print(f"then `pallet session publish {result.session}` (or `cancel`)", file=out)
    elif result.ok:
        print(f"{result.status} {what} ({detail})", file=out)
    else:
        print(f"error: {what} {result.status}: {result.error}", file=out)
    for notice in result.notices:
        print(f"  {notice}", file=out)


def _interrupted(session: Any, out: IO[str]) -> int:
    if session is None:
        print("interrupted", file=out)
        return 130
    answer = "n"
    if sys.stdin.isatty():
        try:
            answer = (
                input(f"\ninterrupted. Cancel the publishing session {session.url}? [Y/n] ") or "y"
            )
        except (EOFError, KeyboardInterrupt):
            answer = "n"
    if answer.strip().lower().startswith("y"):
        session.cancel()
        print(f"canceled {session.url}; nothing was published", file=out)
    else:
        print(
            f"interrupted; the session stays open: continue with `pallet publish --resume ...`"
            f" or end it with `pallet session cancel {session.url}`",
            file=out,
        )
    return 130


def run_session(args: argparse.Namespace) -> int:
    from pallet.client import ClientError
    from pallet.client.credentials import ConfigError
    from pallet.client.transport import Transport

    try:
        creds = _credentials(args, args.url)
    except ConfigError as exc:
        return _fail(args, str(exc))
    transport = Transport(creds.auth())
    try:
        return _session_action(args, transport, args.action, args.url)
    except ClientError as exc:
        return _fail(args, str(exc))
    finally:
        transport.close()


def _session_action(args: argparse.Namespace, transport: Any, action: str, url: str) -> int:
    from pallet.client import Api, PublishingSession

    session = PublishingSession.attach(Api(transport), url)
    out = _human(args)
    if action == "publish":
        session.publish(args.timeout)
        print(f"published {url} ({len(session.files)} files)", file=out)
    elif action == "cancel":
        session.cancel()
        session.refresh()
        print(f"{session.status} {url}", file=out)
    else:
        print(f"{session.status}  expires {session.body.get('expires-at')}  {url}", file=out)
        if session.stage:
            print(f"  stage: {session.stage}", file=out)
        for name, entry in session.files.items():
            print(f"  {entry.get('status'):<10} {name}", file=out)
        for notice in session.notices:
            print(f"  notice: {notice}", file=out)
    if args.json:
        print(json.dumps({"ok": True, "session": session.body}, indent=2))
    return 0
