"""PEP 694 Upload 2.0: publishing sessions, file-upload sessions, publish, stage previews."""
