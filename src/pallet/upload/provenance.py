"""PEP 740 provenance at upload: attestations verified against the trusted publisher.

A file sent by a token that trusted publishing minted carries that publisher's identity. Its
attestations are then verified as PyPI verifies them, with ``pypi-attestations``: the Sigstore
signature, certificate chain and transparency-log entry, the subject (this filename and sha256),
and that the signing certificate was issued to that same workflow. Only then are they stored with
the publisher and served as provenance (``/integrity/...``). The Sigstore trust root is the one
shipped with the installed ``sigstore`` unless ``sigstore_online`` refreshes it over TUF.

Attestations sent with an ordinary API token have no publisher to be checked against: they keep
the structural checks of ``pallet.core.attestations``, are stored, and are never served as
provenance (nobody vouched for whose they are).
"""

from __future__ import annotations

import logging
from typing import Any

from pallet.auth.oidc.claims import ATTESTING_KINDS
from pallet.auth.tokens import Principal
from pallet.config import Settings
from pallet.core.attestations import invalid_attestations
from pallet.core.problems import Problem

#: PyPI's bounds: one attestation per predicate type, of the two types it knows.
MAX_VERIFIED = 2
PREDICATE_TYPES = frozenset(
    {"https://docs.pypi.org/attestations/publish/v1", "https://slsa.dev/provenance/v1"}
)


def attested_by(
    principal: Principal,
    attestations: list[dict[str, Any]],
    filename: str,
    sha256: str,
    settings: Settings,
) -> dict[str, Any] | None:
    """The publisher the attestations are verified against, or None for an ordinary token."""
    publisher = principal.publisher
    if publisher is None:
        return None
    if publisher.get("kind") not in ATTESTING_KINDS:
        raise invalid_attestations(
            f"a {publisher.get('kind')} trusted publisher has no identity attestations can be "
            "verified against (GitHub and GitLab publishers do)"
        )
    if len(attestations) > MAX_VERIFIED:
        raise invalid_attestations(f"at most {MAX_VERIFIED} attestations per file")
    verify(publisher, attestations, filename, sha256, online=settings.sigstore_online)
    return publisher


def verify(
    publisher: dict[str, Any],
    attestations: list[dict[str, Any]],
    filename: str,
    sha256: str,
    *,
    online: bool = False,
) -> None:
    # pypi-attestations loads sigstore, pydantic and the TUF client: only uploads with
    # attestations from a trusted publisher pay for that, once per process.
    import pydantic
    from pypi_attestations import (
        Attestation,
        AttestationError,
        Distribution,
        GitHubPublisher,
        GitLabPublisher,
    )

    logging.getLogger("sigstore").setLevel(logging.ERROR)  # "offline mode" on every verify
    fields = {k: v for k, v in publisher.items() if k != "kind"}
    identity = (
        GitHubPublisher(**fields) if publisher["kind"] == "GitHub" else GitLabPublisher(**fields)
    )
    seen: set[str] = set()
    for i, raw in enumerate(attestations):
        source = f"attestations/{i}"
        try:
            attestation = Attestation.model_validate(raw)
            predicate_type, _ = attestation.verify(
                identity, Distribution(name=filename, digest=sha256), offline=not online
            )
        except pydantic.ValidationError as exc:
            raise invalid_attestations(f"malformed: {exc.errors()[0]['msg']}", source) from None
        except AttestationError as exc:
            raise invalid_attestations(str(exc), source) from None
        except Exception as exc:  # noqa: BLE001 - sigstore's trust-root refresh (TUF), network
            raise Problem(
                503,
                "sigstore-unavailable",
                "Sigstore trust root unavailable",
                f"The attestations could not be verified now ({type(exc).__name__}); retry.",
                headers={"Retry-After": "60"},
            ) from None
        if predicate_type not in PREDICATE_TYPES:
            raise invalid_attestations(f"unknown predicate type {predicate_type!r}", source)
        if predicate_type in seen:
            raise invalid_attestations(f"two attestations of type {predicate_type!r}", source)
        seen.add(predicate_type)
