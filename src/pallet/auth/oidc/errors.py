"""The one shape of a refused token request: PyPI's, as an RFC 9457 problem.

uv prints the body; twine and pypa's publish action read ``message`` and each ``errors`` item's
``code`` and ``description``. So the problem carries those members beside ``type``/``title``,
and ``code`` is PyPI's where PyPI has one (``invalid-payload``, ``invalid-token``,
``invalid-publisher``, ``invalid-pending-publisher``, ``invalid-reuse-token``)."""

from __future__ import annotations

from pallet.core.problems import Problem


def refused(
    code: str, description: str, status: int = 422, headers: dict[str, str] | None = None
) -> Problem:
    return Problem(
        status,
        f"oidc-{code}",
        "Token request failed",
        description,
        headers=headers or {},
        extra={
            "message": "Token request failed",
            # ``source``/``message`` as in every Pallet problem; ``code``/``description`` for
            # PyPI's clients.
            "errors": [
                {
                    "source": "token",
                    "message": description,
                    "code": code,
                    "description": description,
                }
            ],
        },
    )
