"""Faithful replicas of historical files that ``pip download`` cannot fetch on Python 3.

pip prepares an sdist's metadata before it saves the file, and for these releases that step
cannot run: their ``setup.py`` is Python 2 (``execfile``, ``except E, e:``), or their version is
not PEP 440, so pip never even selects them. Each replica keeps what an index looks at: the
filename, the archive format and layout (one top directory, ``PKG-INFO`` at its root, an
``.egg-info`` directory), and a ``PKG-INFO`` written the way the tools of that era wrote it
(Metadata-Version 1.0 with ``Classifier`` lines, 8-space continuation lines). Module contents are
placeholders of the same kind (Python 2 source where the original was Python 2).

The archives are deterministic (fixed mtimes, owners and gzip header), so the manifest can pin
their sha256 like any other file. One file is synthetic rather than a replica: an unsafe archive
(``zipdup``), which every rule set must refuse.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tarfile
import textwrap
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

# 2009-10-20, 2009-03-17 and 2010-02-25: the releases' own dates, give or take a day.
SETUPTOOLS_MTIME = 1256036400
SIMPLEJSON_MTIME = 1237248000
PYTZ_MTIME = 1267056000


def pkg_info(headers: list[tuple[str, str]]) -> bytes:
    """RFC 822 headers as distutils wrote them: multi-line values indented by 8 spaces."""
    lines = []
    for key, value in headers:
        first, *rest = value.split("\n")
        lines.append(f"{key}: {first}")
        lines += [f"        {line}".rstrip(" ") if line else "        " for line in rest]
    return ("\n".join(lines) + "\n").encode()


def write_sdist(
    path: Path,
    top: str,
    files: dict[str, bytes],
    *,
    mtime: int,
    owner: tuple[int, int, str, str] = (501, 20, "", ""),
) -> Path:
    """A GNU-format tar.gz with directory entries, as ``setup.py sdist`` made them."""
    uid, gid, uname, gname = owner
    directories = {top}
    for name in files:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            directories.add(f"{top}/{'/'.join(parts[:i])}")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        entries: list[tuple[str, bytes | None]] = [(d, None) for d in directories]
        entries += [(f"{top}/{name}", data) for name, data in files.items()]
        for name, data in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.uid, info.gid, info.uname, info.gname = uid, gid, uname, gname
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o755 if name.endswith((".sh", ".exe")) else 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tmp = path.with_name(path.name + ".part")
    with (
        tmp.open("wb") as out,
        gzip.GzipFile(
            filename=path.name.removesuffix(".gz"), mode="wb", fileobj=out, mtime=mtime
        ) as gz,
    ):
        gz.write(raw.getvalue())
    os.replace(tmp, path)
    return path


def _py(source: str) -> bytes:
    return textwrap.dedent(source).lstrip("\n").encode()


# --- setuptools 0.6c11 (2009) -------------------------------------------------------------------

_SETUPTOOLS_DESCRIPTION = """\
===============================
Installing and Using Setuptools
===============================

.. contents:: **Table of Contents**


-------------------------
Installation Instructions
-------------------------

Windows
=======

Install setuptools using the provided ``.exe`` installer.  If you've previously
installed older versions of setuptools, please delete all ``setuptools*.egg``
and ``setuptools.pth`` files from your system's ``site-packages`` directory
(and any other ``sys.path`` directories) FIRST.

If you are upgrading a previous version of setuptools that was installed using
an ``.exe`` installer, please be sure to also *uninstall that older version*
via your system's "Add/Remove Programs" feature, BEFORE installing the newer
version.

Once installation is complete, you will find an ``easy_install.exe`` program in
your Python ``Scripts`` subdirectory.  Be sure to add this directory to your
``PATH`` environment variable, if you haven't already done so.


RPM-Based Systems
=================

Install setuptools using the provided source RPM.  The included ``.spec`` file
assumes you are installing using the default ``python`` executable, and is not
specific to a particular Python version.  The ``easy_install`` executable will
be installed to a system ``bin`` directory such as ``/usr/bin``.

If you wish to install to a location other than the default Python
installation's default ``site-packages`` directory (and ``$prefix/bin`` for
scripts), please use the ``.egg``-based installation approach described in the
following section.


Cygwin, Mac OS X, Linux, Other
==============================

1. Download the appropriate egg for your version of Python (e.g.
   ``setuptools-0.6c11-py2.4.egg``).  Do NOT rename it.

2. Run it as if it were a shell script, e.g. ``sh setuptools-0.6c11-py2.4.egg``.
   Setuptools will install itself using the matching version of Python (e.g.
   ``python2.4``), and will place the ``easy_install`` executable in the
   default location for installing Python scripts (as determined by the
   standard distutils configuration files, or by the Python installation).
"""

_SETUPTOOLS_HEADERS = [
    ("Metadata-Version", "1.0"),
    ("Name", "setuptools"),
    ("Version", "0.6c11"),
    ("Summary", "Download, build, install, upgrade, and uninstall Python packages -- easily!"),
    ("Home-page", "http://peak.telecommunity.com/DevCenter/setuptools"),
    ("Author", "Phillip J. Eby"),
    ("Author-email", "distutils-sig@python.org"),
    ("License", "PSF or ZPL"),
    ("Description", _SETUPTOOLS_DESCRIPTION),
    ("Keywords", "CPAN PyPI distutils eggs package management"),
    ("Platform", "UNKNOWN"),
    ("Classifier", "Development Status :: 3 - Alpha"),
    ("Classifier", "Intended Audience :: Developers"),
    ("Classifier", "License :: OSI Approved :: Python Software Foundation License"),
    ("Classifier", "License :: OSI Approved :: Zope Public License"),
    ("Classifier", "Operating System :: OS Independent"),
    ("Classifier", "Programming Language :: Python"),
    ("Classifier", "Topic :: Software Development :: Libraries :: Python Modules"),
    ("Classifier", "Topic :: System :: Archiving :: Packaging"),
    ("Classifier", "Topic :: System :: Systems Administration"),
    ("Classifier", "Topic :: Utilities"),
]

_SETUPTOOLS_COMMANDS = (
    "alias bdist_egg bdist_rpm bdist_wininst build_ext build_py develop easy_install egg_info "
    "install install_egg_info install_lib install_scripts register rotate saveopts sdist setopt "
    "test upload"
).split()


def setuptools_0_6c11(directory: Path) -> Path:
    """``setuptools-0.6c11.tar.gz``: its setup.py calls ``execfile``, so no Python 3 can prepare
    its metadata; the version ``0.6c11`` normalises to ``0.6rc11``."""
    info = pkg_info(_SETUPTOOLS_HEADERS)
    module = _py('''
        """Placeholder for the Python 2 module of setuptools 0.6c11."""
        print "setuptools 0.6c11 is Python 2 only"
    ''')
    files: dict[str, bytes] = {
        "PKG-INFO": info,
        "setup.py": _py('''
            #!/usr/bin/env python
            """Distutils setup file, used to install or test 'setuptools'"""

            from distutils.util import convert_path

            d = {}
            execfile(convert_path('setuptools/command/__init__.py'), d)

            SETUP_COMMANDS = d['__all__']
            VERSION = "0.6c11"

            from setuptools import setup, find_packages
            setup(
                name="setuptools",
                version=VERSION,
                description="Download, build, install, upgrade, and uninstall Python "
                            "packages -- easily!",
                author="Phillip J. Eby",
                author_email="distutils-sig@python.org",
                license="PSF or ZPL",
                keywords="CPAN PyPI distutils eggs package management",
                url="http://peak.telecommunity.com/DevCenter/setuptools",
                test_suite='setuptools.tests',
                packages=find_packages(),
                py_modules=['pkg_resources', 'easy_install', 'site'],
                zip_safe=(sys.version>="2.5"),
            )
        '''),
        "setup.cfg": b"[egg_info]\ntag_build = \ntag_date = 0\ntag_svn_revision = 0\n\n"
        b"[aliases]\nrelease = egg_info -RDb ''\n",
        "README.txt": _SETUPTOOLS_DESCRIPTION.encode(),
        "EasyInstall.txt": b"============\nEasy Install\n============\n",
        "pkg_resources.txt": b"=============================================================\n"
        b"Package Discovery and Resource Access using ``pkg_resources``\n"
        b"=============================================================\n",
        "setuptools.txt": b"==================================================\n"
        b"Building and Distributing Packages with Setuptools\n"
        b"==================================================\n",
        "api_tests.txt": b"Pluggable Distributions of Python Software\n",
        "easy_install.py": _py('''
            """Run the EasyInstall command"""

            if __name__ == '__main__':
                from setuptools.command.easy_install import main
                main()
        '''),
        "pkg_resources.py": module,
        "site.py": module,
        "ez_setup.py": module,
        "launcher.c": b"/* Setuptools Script Launcher for Windows */\n",
        "release.sh": b"#!/bin/sh\n# tag and release setuptools\n",
        "version": b"0.6c11\n",
        "version.sh": b"#!/bin/sh\nexport VERSION=0.6c11\n",
        "setuptools/__init__.py": module,
        "setuptools/cli.exe": b"MZ" + bytes(62),
        "setuptools/gui.exe": b"MZ" + bytes(62),
        "setuptools/command/__init__.py": _py(f"""
            __all__ = [
                {", ".join(repr(c) for c in _SETUPTOOLS_COMMANDS)}
            ]

            import sys
            if sys.version>='2.5':
                # In Python 2.5 and above, distutils includes its own upload command
                __all__.remove('upload')
        """),
        "setuptools/tests/__init__.py": module,
        "setuptools/tests/doctest.py": module,
        "setuptools/tests/test_packageindex.py": module,
        "setuptools/tests/test_resources.py": module,
        "setuptools.egg-info/PKG-INFO": info,
        "setuptools.egg-info/dependency_links.txt": b"\n",
        "setuptools.egg-info/top_level.txt": b"easy_install\npkg_resources\nsetuptools\nsite\n",
        "setuptools.egg-info/zip-safe": b"\n",
        "setuptools.egg-info/entry_points.txt": _py("""
            [distutils.commands]
            bdist_egg = setuptools.command.bdist_egg:bdist_egg
            develop = setuptools.command.develop:develop
            easy_install = setuptools.command.easy_install:easy_install
            egg_info = setuptools.command.egg_info:egg_info

            [console_scripts]
            easy_install = setuptools.command.easy_install:main
            easy_install-2.6 = setuptools.command.easy_install:main
        """),
    }
    for module_name in ("archive_util", "depends", "dist", "extension", "package_index", "sandbox"):
        files[f"setuptools/{module_name}.py"] = module
    for command in _SETUPTOOLS_COMMANDS:
        files[f"setuptools/command/{command}.py"] = module
    files["setuptools.egg-info/SOURCES.txt"] = "".join(
        f"{name}\n" for name in sorted(files) if not name.startswith("setuptools.egg-info/")
    ).encode()
    return write_sdist(
        directory / "setuptools-0.6c11.tar.gz",
        "setuptools-0.6c11",
        files,
        mtime=SETUPTOOLS_MTIME,
    )


# --- simplejson 2.0.9 (2009) --------------------------------------------------------------------

_SIMPLEJSON_DESCRIPTION = """
simplejson is a simple, fast, complete, correct and extensible
JSON <http://json.org> encoder and decoder for Python 2.4+.  It is
pure Python code with no dependencies, but includes an optional C
extension for a serious speed boost.

simplejson was formerly known as simple_json, but changed its name to
comply with PEP 8 module naming guidelines.

The encoder may be subclassed to provide serialization in any kind of
situation, without any special support by the objects to be serialized
(somewhat like pickle).

The decoder can handle incoming JSON strings of any specified encoding
(UTF-8 by default).
"""

_SIMPLEJSON_HEADERS = [
    ("Metadata-Version", "1.0"),
    ("Name", "simplejson"),
    ("Version", "2.0.9"),
    ("Summary", "Simple, fast, extensible JSON encoder/decoder for Python"),
    ("Home-page", "http://undefined.org/python/#simplejson"),
    ("Author", "Bob Ippolito"),
    ("Author-email", "bob@redivi.com"),
    ("License", "MIT License"),
    ("Description", _SIMPLEJSON_DESCRIPTION),
    ("Platform", "any"),
    ("Classifier", "Intended Audience :: Developers"),
    ("Classifier", "License :: OSI Approved :: MIT License"),
    ("Classifier", "Programming Language :: Python"),
    ("Classifier", "Topic :: Software Development :: Libraries :: Python Modules"),
]


def simplejson_2_0_9(directory: Path) -> Path:
    """``simplejson-2.0.9.tar.gz``: its setup.py has ``except DistutilsPlatformError, x:``."""
    info = pkg_info(_SIMPLEJSON_HEADERS)
    module = _py('''
        """Placeholder for the Python 2 module of simplejson 2.0.9."""
        try:
            from simplejson._speedups import make_scanner as c_make_scanner
        except ImportError, e:
            c_make_scanner = None
    ''')
    files = {
        "PKG-INFO": info,
        "setup.py": _py("""
            #!/usr/bin/env python

            import ez_setup
            ez_setup.use_setuptools()

            import sys
            from setuptools import setup, Extension, Command
            from distutils.command.build_ext import build_ext
            from distutils.errors import CCompilerError, DistutilsExecError, \\
                DistutilsPlatformError

            IS_PYPY = hasattr(sys, 'pypy_translation_info')
            VERSION = '2.0.9'
            DESCRIPTION = "Simple, fast, extensible JSON encoder/decoder for Python"

            class BuildFailed(Exception):
                pass

            class ve_build_ext(build_ext):
                # This class allows C extension building to fail.

                def run(self):
                    try:
                        build_ext.run(self)
                    except DistutilsPlatformError, x:
                        raise BuildFailed()

            setup(
                name="simplejson",
                version=VERSION,
                description=DESCRIPTION,
                author="Bob Ippolito",
                author_email="bob@redivi.com",
                url="http://undefined.org/python/#simplejson",
                license="MIT License",
                packages=['simplejson', 'simplejson.tests'],
                platforms=['any'],
                cmdclass={'build_ext': ve_build_ext},
                ext_modules=[Extension("simplejson._speedups", ["simplejson/_speedups.c"])],
            )
        """),
        "setup.cfg": b"[egg_info]\ntag_build = \ntag_date = 0\ntag_svn_revision = 0\n\n",
        "ez_setup.py": module,
        "conf.py": b"# simplejson documentation build configuration file\n",
        "index.rst": b":mod:`simplejson` --- JSON encoder and decoder\n"
        b"==============================================\n",
        "scripts/make_docs.py": module,
        "simplejson/__init__.py": module,
        "simplejson/_speedups.c": b'#include "Python.h"\n#include "structmember.h"\n',
        "simplejson/decoder.py": module,
        "simplejson/encoder.py": module,
        "simplejson/scanner.py": module,
        "simplejson/tool.py": module,
        "simplejson.egg-info/PKG-INFO": info,
        "simplejson.egg-info/dependency_links.txt": b"\n",
        "simplejson.egg-info/not-zip-safe": b"\n",
        "simplejson.egg-info/top_level.txt": b"simplejson\n",
    }
    for test in (
        "__init__",
        "test_check_circular",
        "test_decode",
        "test_default",
        "test_dump",
        "test_encode_basestring_ascii",
        "test_fail",
        "test_float",
        "test_indent",
        "test_pass1",
        "test_recursion",
        "test_scanstring",
        "test_separators",
        "test_unicode",
    ):
        files[f"simplejson/tests/{test}.py"] = module
    files["simplejson.egg-info/SOURCES.txt"] = "".join(
        f"{name}\n" for name in sorted(files) if not name.startswith("simplejson.egg-info/")
    ).encode()
    return write_sdist(
        directory / "simplejson-2.0.9.tar.gz", "simplejson-2.0.9", files, mtime=SIMPLEJSON_MTIME
    )


# --- pytz 2010h (2010) --------------------------------------------------------------------------

_PYTZ_DESCRIPTION = """\
pytz - World Timezone Definitions for Python
============================================

:Author: Stuart Bishop <stuart@stuartbishop.net>

Introduction
~~~~~~~~~~~~

pytz brings the Olson tz database into Python. This library allows
accurate and cross platform timezone calculations using Python 2.3
or higher. It also solves the issue of ambiguous times at the end
of daylight savings, which you can read more about in the Python
Library Reference (``datetime.tzinfo``).

Almost all of the Olson timezones are supported.
"""

_PYTZ_HEADERS = [
    ("Metadata-Version", "1.0"),
    ("Name", "pytz"),
    ("Version", "2010h"),
    ("Summary", "World timezone definitions, modern and historical"),
    ("Home-page", "http://pytz.sourceforge.net"),
    ("Author", "Stuart Bishop"),
    ("Author-email", "stuart@stuartbishop.net"),
    ("License", "MIT"),
    ("Download-URL", "http://pytz.sourceforge.net"),
    ("Description", _PYTZ_DESCRIPTION),
    ("Keywords", "timezone,tzinfo,datetime,olson,time"),
    ("Platform", "Independant"),
    ("Classifier", "Development Status :: 6 - Mature"),
    ("Classifier", "Intended Audience :: Developers"),
    ("Classifier", "License :: OSI Approved :: MIT License"),
    ("Classifier", "Natural Language :: English"),
    ("Classifier", "Operating System :: OS Independent"),
    ("Classifier", "Programming Language :: Python"),
    ("Classifier", "Topic :: Software Development :: Libraries :: Python Modules"),
]


def _tzif(abbreviation: str = "UTC") -> bytes:
    """A minimal TZif version 1 file: no transitions, one local time type."""
    counts = (0, 0, 0, 0, 1, len(abbreviation) + 1)  # isut, isstd, leap, time, type, char
    return (
        b"TZif"
        + bytes(16)
        + b"".join(c.to_bytes(4, "big") for c in counts)
        + (0).to_bytes(4, "big", signed=True)
        + b"\x00\x00"
        + abbreviation.encode()
        + b"\x00"
    )


def pytz_2010h(directory: Path) -> Path:
    """``pytz-2010h.tar.gz``: ``2010h`` is not a PEP 440 version, so pip cannot select it."""
    info = pkg_info(_PYTZ_HEADERS)
    module = _py('''
        """Placeholder for the Python 2 module of pytz 2010h."""
        OLSON_VERSION = '2010h'
        VERSION = OLSON_VERSION
    ''')
    files: dict[str, bytes] = {
        "PKG-INFO": info,
        "CHANGES.txt": b"2010h\n    - Olson database 2010h\n",
        "LICENSE.txt": b"Copyright (c) 2003-2009 Stuart Bishop <stuart@stuartbishop.net>\n",
        "MANIFEST.in": b"include *.txt setup.py\nrecursive-include pytz *.py\n"
        b"graft pytz/zoneinfo\n",
        "README.txt": _PYTZ_DESCRIPTION.encode(),
        "setup.cfg": b"[egg_info]\ntag_build = \ntag_date = 0\ntag_svn_revision = 0\n\n",
        "setup.py": _py("""
            '''
            pytz setup script
            '''

            import pytz, sys, os, os.path

            try:
                from setuptools import setup
            except ImportError:
                from distutils.core import setup

            me = 'Stuart Bishop'
            memail = 'stuart@stuartbishop.net'
            packages = ['pytz']
            resources = ['zone.tab', 'locales/pytz.pot']
            for dirpath, dirnames, filenames in os.walk(os.path.join('pytz', 'zoneinfo')):
                # remove the 'pytz' part of the path
                basepath = dirpath.split(os.path.sep, 1)[1]
                resources.extend([os.path.join(basepath, filename)
                                 for filename in filenames])
            package_data = {'pytz': resources}

            assert len(resources) > 10, 'zoneinfo files not found!'

            setup (
                name='pytz',
                version=pytz.VERSION,
                zip_safe=True,
                description='World timezone definitions, modern and historical',
                author=me,
                author_email=memail,
                maintainer=me,
                maintainer_email=memail,
                url='http://pytz.sourceforge.net',
                license='MIT',
                keywords=['timezone','tzinfo', 'datetime', 'olson', 'time'],
                packages=packages,
                package_data=package_data,
                download_url='http://pytz.sourceforge.net',
                platforms=['Independant'],
            )
        """),
        "pytz/__init__.py": module,
        "pytz/reference.py": module,
        "pytz/tzfile.py": module,
        "pytz/tzinfo.py": module,
        "pytz/tests/test_docs.py": module,
        "pytz/tests/test_tzinfo.py": module,
        "pytz/locales/pytz.pot": b'msgid ""\nmsgstr ""\n',
        "pytz/zoneinfo/zone.tab": b"# TZ zone descriptions\nNL\t+5222+00454\tEurope/Amsterdam\n",
        "pytz.egg-info/PKG-INFO": info,
        "pytz.egg-info/dependency_links.txt": b"\n",
        "pytz.egg-info/top_level.txt": b"pytz\n",
        "pytz.egg-info/zip-safe": b"\n",
    }
    for zone in (
        "UTC",
        "GMT",
        "Europe/Amsterdam",
        "Europe/London",
        "America/New_York",
        "America/Los_Angeles",
        "Asia/Tokyo",
        "Australia/Sydney",
        "Pacific/Auckland",
        "Africa/Johannesburg",
    ):
        files[f"pytz/zoneinfo/{zone}"] = _tzif("GMT" if zone == "GMT" else "UTC")
    files["pytz.egg-info/SOURCES.txt"] = "".join(
        f"{name}\n" for name in sorted(files) if not name.startswith("pytz.egg-info/")
    ).encode()
    return write_sdist(directory / "pytz-2010h.tar.gz", "pytz-2010h", files, mtime=PYTZ_MTIME)


# --- synthetic: an unsafe archive ---------------------------------------------------------------


def zipdup_1_0(directory: Path) -> Path:
    """``zipdup-1.0-py3-none-any.whl``, synthetic: ``zipdup/__init__.py`` is stored twice with
    different bytes. Installers that stream local headers and those that read the central
    directory install different code (the parser differential PyPI refuses as "Duplicate
    filename"). Refused by every rule set."""
    stamp = (2025, 1, 1, 0, 0, 0)

    def record_line(name: str, data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"{name},sha256={digest},{len(data)}"

    benign = b'"""zipdup: the copy a central-directory reader installs."""\n'
    other = b'"""zipdup: the copy a streaming reader installs."""\nimport os  # noqa\n'
    metadata = b"Metadata-Version: 2.4\nName: zipdup\nVersion: 1.0\nSummary: two copies\n"
    wheel = b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members = [
        ("zipdup/__init__.py", other),
        ("zipdup/__init__.py", benign),
        ("zipdup-1.0.dist-info/METADATA", metadata),
        ("zipdup-1.0.dist-info/WHEEL", wheel),
    ]
    record = "".join(f"{record_line(n, d)}\n" for n, d in members[1:])
    record += "zipdup-1.0.dist-info/RECORD,,\n"
    members.append(("zipdup-1.0.dist-info/RECORD", record.encode()))
    path = directory / "zipdup-1.0-py3-none-any.whl"
    tmp = path.with_name(path.name + ".part")
    with warnings.catch_warnings(), zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": the point of this file
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    os.replace(tmp, path)
    return path


REPLICAS: dict[str, Callable[[Path], Path]] = {
    "setuptools-0.6c11.tar.gz": setuptools_0_6c11,
    "simplejson-2.0.9.tar.gz": simplejson_2_0_9,
    "pytz-2010h.tar.gz": pytz_2010h,
    "zipdup-1.0-py3-none-any.whl": zipdup_1_0,
}


def build(filename: str, directory: Path) -> Path:
    """Write the replica called ``filename`` into ``directory``."""
    try:
        builder = REPLICAS[filename]
    except KeyError:
        raise KeyError(f"no replica builder for {filename}") from None
    directory.mkdir(parents=True, exist_ok=True)
    return builder(directory)
