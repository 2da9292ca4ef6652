"""Where Upload 2.0 resources live. Clients must only follow the links we hand out; this is the
one place that spells them (documented in docs/upload-2.0.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Links:
    base: str  # scheme://host[:port] with no trailing slash
    root: str  # e.g. "/upload/2.0/"

    def session(self, sid: str) -> str:
        return f"{self.base}{self.root}sessions/{sid}/"

    def publish(self, sid: str) -> str:
        return self.session(sid) + "publish"

    def extend(self, sid: str) -> str:
        return self.session(sid) + "extend"

    def upload(self, sid: str) -> str:
        return self.session(sid) + "files/"

    def file(self, sid: str, fid: str) -> str:
        return f"{self.upload(sid)}{fid}/"

    def file_action(self, sid: str, fid: str, action: str) -> str:
        return self.file(sid, fid) + action

    def stage(self, token: str) -> str:
        return f"{self.base}/stage/{token}/simple/"
