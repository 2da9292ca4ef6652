"""Trusted publishing: CI systems exchange their OIDC identity for a short-lived upload token.

``claims`` (the rules per provider, pure), ``keys`` (issuers' signing keys), ``exchange`` (verify
and mint), ``publishers`` (configuring them), ``routes`` (``/_/oidc/...``)."""
