"""A --coverage build of a target, its counters folders, and gcov to read them.

scripts/build-exim-coverage.sh installs the build under a prefix (the binary in PREFIX/bin) and
describes it in PREFIX/coverage-build.json: the object folder (with the .gcno notes files), the
objects that make up the binary, and GCOV_PREFIX_STRIP. Every process of the target writes its
counters (.gcda) to $GCOV_PREFIX/<object path below the object folder>.gcda, merging with what is
there (libgcov locks the file), so one folder collects a whole run, parallel workers included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..targets.spec import TargetSpec

INFO_FILE = "coverage-build.json"
PREFIX_VARIABLE = "MTACONFORM_GCOV_PREFIX"  # what a coverage target's GCOV_PREFIX is taken from


class CoverageError(RuntimeError):
    """The target has no usable coverage build, or its counters cannot be read."""


class UnusableTarget(CoverageError):
    """The target is not a coverage build, or that build is missing or broken (exit status 2)."""


class BuildMissing(UnusableTarget):
    """The coverage build has not been made."""


@dataclass(frozen=True)
class Build:
    prefix: Path
    objdir: Path
    source_root: Path  # the sources as the report names them (relative paths start here)
    strip: int
    objects: tuple[str, ...]  # "smtp_in", "transports/smtp", ...: object paths below objdir
    version: str = ""

    @classmethod
    def load(cls, prefix: Path) -> Build:
        info = prefix / INFO_FILE
        try:
            data = json.loads(info.read_text())
            objdir = Path(data["objdir"])
            return cls(prefix=prefix, objdir=objdir, source_root=_source_root(objdir),
                       strip=int(data["gcov_prefix_strip"]), objects=tuple(data["objects"]),
                       version=str(data.get("version", "")))
        except FileNotFoundError:
            raise BuildMissing(f"{info} does not exist") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UnusableTarget(f"{info}: unreadable ({exc}); rebuild with --force") from None


def _source_root(objdir: Path) -> Path:
    """Exim's build folder holds symbolic links to ../src/*.c: name files from src/."""
    return objdir.parent / "src" if (objdir.parent / "src").is_dir() else objdir


def build_for(spec: TargetSpec) -> Build:
    """The coverage build a target spec runs: its binary is PREFIX/bin/NAME (install_check)."""
    if not spec.install_check:
        raise UnusableTarget(f"target {spec.name} is not a coverage build (no install_check binary)")
    gcov_prefix = spec.env.get("GCOV_PREFIX", "")
    if PREFIX_VARIABLE not in gcov_prefix:
        raise UnusableTarget(f"target {spec.name} does not take GCOV_PREFIX from ${{{PREFIX_VARIABLE}}} "
                            "(its spec's env); use exim-coverage or a copy of its spec")
    build = Build.load(Path(spec.install_check[0]).parent.parent)
    if spec.env.get("GCOV_PREFIX_STRIP") != str(build.strip):
        raise UnusableTarget(f"{spec.source}: env GCOV_PREFIX_STRIP is {spec.env.get('GCOV_PREFIX_STRIP')!r}, "
                            f"but the build at {build.prefix} needs {build.strip}")
    return build


def prepare_counters(build: Build, folder: Path, owner: str | None) -> None:
    """An empty counters file per object, owned by the MTA's user and writable by all: its root
    processes, its unprivileged ones and any other user a transport runs as then add to the same
    files. (libgcov treats an empty file as new; a file or folder it had to create itself would
    belong to the first process that wrote, with that process's umask.)"""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for obj in build.objects:
        gcda = folder / f"{obj}.gcda"
        gcda.parent.mkdir(parents=True, exist_ok=True)
        gcda.parent.chmod(0o755)
        gcda.write_bytes(b"")
        gcda.chmod(0o666)
    if owner:
        for path in [folder, *folder.rglob("*")]:
            shutil.chown(path, owner, owner)


def new_counters_folder(build: Build, owner: str | None) -> Path:
    """A fresh, zeroed counters folder that the MTA's user can reach (not the user's --out
    folder, which may sit below a home directory it cannot enter)."""
    folder = Path(tempfile.mkdtemp(prefix="mtaconform-gcov-", dir="/var/tmp"))
    prepare_counters(build, folder, owner)
    return folder


def reset_counters(folder: Path) -> None:
    """Zero a counters folder in place, keeping each file's owner."""
    for gcda in folder.rglob("*.gcda"):
        with open(gcda, "r+b") as fh:
            fh.truncate(0)


def counted_objects(build: Build, folder: Path) -> list[str]:
    return [obj for obj in build.objects
            if (folder / f"{obj}.gcda").is_file() and (folder / f"{obj}.gcda").stat().st_size > 0]


def read_counters(build: Build, folder: Path, gcov: str = "gcov") -> list[dict[str, Any]]:
    """gcov's JSON document for each object of the build; objects without counters count as
    never run. gcov needs the notes and counters side by side: both are copied to a scratch
    folder first, so the build folder stays as the build left it."""
    if shutil.which(gcov) is None:
        raise CoverageError(f"{gcov} is not installed (Debian package gcc)")
    with tempfile.TemporaryDirectory(prefix="mtaconform-gcov-read-") as tmp:
        stage = Path(tmp)
        inputs = []
        for obj in build.objects:
            gcno = build.objdir / f"{obj}.gcno"
            if not gcno.is_file():
                raise CoverageError(f"{gcno} is missing: rebuild with scripts/build-exim-coverage.sh --force")
            (stage / obj).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(gcno, stage / f"{obj}.gcno")
            gcda = folder / f"{obj}.gcda"
            if gcda.is_file() and gcda.stat().st_size > 0:
                shutil.copyfile(gcda, stage / f"{obj}.gcda")
            inputs.append(f"{obj}.gcda")
        proc = subprocess.run([gcov, "--json-format", "--stdout", "--branch-probabilities", *inputs],
                              cwd=stage, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise CoverageError(f"gcov exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return list(_documents(proc.stdout))


def _documents(text: str) -> Iterator[dict[str, Any]]:
    """`gcov --json-format --stdout` prints one JSON document per line, one per input."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise CoverageError(f"gcov output line {number}: not JSON ({exc})") from None


def resolver(build: Build) -> Callable[[str, str], str | None]:
    """Name each file gcov reports relative to the build's sources; drop those outside them."""
    root = build.source_root.resolve()
    cache: dict[tuple[str, str], str | None] = {}

    def resolve(cwd: str, name: str) -> str | None:
        key = (cwd, name)
        if key not in cache:
            path = Path(os.path.realpath(Path(cwd) / name))
            try:
                cache[key] = path.relative_to(root).as_posix()
            except ValueError:
                cache[key] = None
        return cache[key]

    return resolve
