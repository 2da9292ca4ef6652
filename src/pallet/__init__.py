"""Pallet: a self-hosted Python package index speaking PEP 694 Upload 2.0."""

__version__ = "0.1.0"
