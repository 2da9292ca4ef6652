"""Checks of served HTML: well-formed (every element closed, in order) and every form control
labelled. Used by the web UI's in-process tests and by the browser tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID_ELEMENTS = frozenset("area base br col embed hr img input link meta source track wbr".split())
FOREIGN_ROOTS = frozenset({"svg", "math"})  # inside them, <x/> closes x (SVG, MathML)


def _at(pos: tuple[int, int]) -> str:
    return f"line {pos[0]}, col {pos[1] + 1}"


def _fail(what: str, problems: list[str]) -> None:
    if problems:
        raise AssertionError(what + ":\n" + "\n".join(f"  - {p}" for p in problems))


class _WellFormed(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, tuple[int, int]]] = []
        self.problems: list[str] = []
        self.seen: dict[str, list[tuple[int, int]]] = {}
        self.doctype: tuple[int, int] | None = None
        self.any_element = False
        self.title = ""

    def handle_decl(self, decl: str) -> None:
        pos = self.getpos()
        if not re.fullmatch(r"doctype\s+html", decl.strip(), re.IGNORECASE):
            self.problems.append(f"{_at(pos)}: <!{decl}> is not <!DOCTYPE html>")
        elif self.doctype is not None:
            self.problems.append(f"{_at(pos)}: a second <!DOCTYPE html>")
        elif self.any_element:
            self.problems.append(f"{_at(pos)}: <!DOCTYPE html> after the first element")
        self.doctype = self.doctype or pos

    def _start(self, tag: str, closed: bool) -> None:
        pos = self.getpos()
        self.any_element = True
        self.seen.setdefault(tag, []).append(pos)
        parent = self.open[-1][0] if self.open else None
        if tag == "html":
            if parent is not None:
                self.problems.append(f"{_at(pos)}: <html> inside <{parent}>")
        elif parent is None:
            self.problems.append(f"{_at(pos)}: <{tag}> outside <html>")
        elif tag in ("head", "body"):
            if parent != "html":
                self.problems.append(f"{_at(pos)}: <{tag}> inside <{parent}>, not in <html>")
            if tag == "head" and "body" in self.seen:
                self.problems.append(f"{_at(pos)}: <head> after <body>")
        elif parent == "html":
            self.problems.append(f"{_at(pos)}: <{tag}> outside <head> and <body>")
        elif tag == "title" and parent != "head":
            self.problems.append(f"{_at(pos)}: <title> inside <{parent}>, not in <head>")
        if not closed and tag not in VOID_ELEMENTS:
            self.open.append((tag, pos))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        foreign = tag in FOREIGN_ROOTS or any(t in FOREIGN_ROOTS for t, _ in self.open)
        if tag not in VOID_ELEMENTS and not foreign:
            self.problems.append(
                f"{_at(self.getpos())}: <{tag}/> does not close <{tag}> in HTML (only void and "
                f"SVG/MathML elements self-close): write <{tag}></{tag}>"
            )
        self._start(tag, closed=True)

    def handle_endtag(self, tag: str) -> None:
        pos = self.getpos()
        if tag in VOID_ELEMENTS:
            self.problems.append(f"{_at(pos)}: stray </{tag}>: <{tag}> is a void element")
        elif not self.open:
            self.problems.append(f"{_at(pos)}: stray </{tag}>: no element is open")
        elif self.open[-1][0] == tag:
            self.open.pop()
        elif any(t == tag for t, _ in self.open):
            while self.open[-1][0] != tag:
                inner, inner_pos = self.open.pop()
                self.problems.append(
                    f"<{inner}> opened at {_at(inner_pos)} is not closed (before </{tag}> at "
                    f"{_at(pos)})"
                )
            self.open.pop()
        else:
            inner, inner_pos = self.open[-1]
            self.problems.append(
                f"{_at(pos)}: stray </{tag}>: no <{tag}> is open (the innermost open element "
                f"is <{inner}> from {_at(inner_pos)})"
            )

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1][0] == "title":
            self.title += data

    def finish(self) -> list[str]:
        self.close()
        for tag, pos in reversed(self.open):
            self.problems.append(
                f"<{tag}> opened at {_at(pos)} is not closed (by the end of the document)"
            )
        if self.doctype is None:
            self.problems.append("no <!DOCTYPE html>")
        for tag in ("html", "head", "body", "title"):
            where = self.seen.get(tag, [])
            if not where:
                self.problems.append(f"no <{tag}>")
            elif len(where) > 1:
                self.problems.append(
                    f"{len(where)} <{tag}> elements (at {'; '.join(map(_at, where))})"
                )
        if "title" in self.seen and not self.title.strip():
            self.problems.append("<title> is empty")
        return self.problems


def assert_well_formed(html: str) -> None:
    """Check that ``html`` is a well-formed HTML5 document: ``<!DOCTYPE html>`` first; one
    ``<html>`` holding one ``<head>`` (with one non-empty ``<title>``) then one ``<body>``; every
    non-void element closed explicitly and in order (no optional end tags left out); no stray end
    tags; ``<x/>`` only for void and SVG/MathML elements. Raises AssertionError listing every
    problem with its line and column."""
    parser = _WellFormed()
    parser.feed(html)
    _fail("HTML is not well-formed", parser.finish())


EXEMPT_INPUT_TYPES = frozenset({"hidden", "submit", "button", "image", "reset"})
LABELLED_CONTROLS = frozenset({"input", "select", "textarea"})


@dataclass
class _Label:
    for_id: str | None
    pos: tuple[int, int]
    text: str = ""


@dataclass
class _Control:
    tag: str
    attrs: dict[str, str]
    pos: tuple[int, int]
    enclosing: list[_Label] = field(default_factory=list)

    def describe(self) -> str:
        shown = " ".join(
            f'{k}="{self.attrs[k]}"' for k in ("type", "name", "id") if k in self.attrs
        )
        return f"<{self.tag}{' ' + shown if shown else ''}> at {_at(self.pos)}"


class _Labels(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.labels: list[_Label] = []
        self.open_labels: list[_Label] = []
        self.controls: list[_Control] = []
        self.ids: set[str] = set()
        self.in_control = 0  # inside <select>/<textarea>: their text labels nothing

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: (v or "") for k, v in attrs}
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "label":
            label = _Label(values.get("for"), self.getpos())
            self.labels.append(label)
            self.open_labels.append(label)
        elif tag == "img" and values.get("alt"):
            for label in self.open_labels:
                label.text += values["alt"]
        if tag in LABELLED_CONTROLS:
            if tag != "input" or values.get("type", "text").lower() not in EXEMPT_INPUT_TYPES:
                self.controls.append(_Control(tag, values, self.getpos(), list(self.open_labels)))
            if tag != "input":
                self.in_control += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("label", "select", "textarea"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.open_labels:
            self.open_labels.pop()
        elif tag in ("select", "textarea") and self.in_control:
            self.in_control -= 1

    def handle_data(self, data: str) -> None:
        if not self.in_control:
            for label in self.open_labels:
                label.text += data

    def problems(self) -> list[str]:
        self.close()
        found: list[str] = []
        for control in self.controls:
            if control.attrs.get("aria-label", "").strip():
                continue
            refs = control.attrs.get("aria-labelledby", "").split()
            missing = [ref for ref in refs if ref not in self.ids]
            if refs and not missing:
                continue
            own_id = control.attrs.get("id")
            candidates = [
                label for label in control.enclosing if label.for_id in (None, own_id)
            ] + [label for label in self.labels if own_id and label.for_id == own_id]
            if any(label.text.strip() for label in candidates):
                continue
            why = "no <label for=id>, no enclosing <label>, no aria-label or aria-labelledby"
            if missing:
                why = f"aria-labelledby refers to missing id(s) {', '.join(missing)}"
            elif candidates:
                why = "its <label> (at " + "; ".join(_at(c.pos) for c in candidates)
                why += ") has no text"
            found.append(f"{control.describe()} has no label: {why}")
        return found


def assert_labelled(html: str) -> None:
    """Check that every form control of ``html`` (a document or a fragment) has an accessible
    label: ``<input>`` (except type hidden, submit, button, image and reset, which name
    themselves), ``<select>`` and ``<textarea>``. A label is a ``<label for="its id">`` or an
    enclosing ``<label>`` (without another ``for``) with text, a non-empty ``aria-label``, or an
    ``aria-labelledby`` whose ids all exist. Raises AssertionError listing every unlabelled
    control with its line and column."""
    parser = _Labels()
    parser.feed(html)
    _fail("form controls without a label", parser.problems())
