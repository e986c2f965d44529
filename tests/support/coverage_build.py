"""A ten-line C program built with gcc --coverage the way scripts/build-exim-coverage.sh builds
Exim: a prefix with bin/, the object folder with its .gcno, coverage-build.json — and a target
spec for it, so harness.coverage can be tested without Exim or a lab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLUSH_ON_EXIT = ROOT / "scripts" / "gcov-flush-on-exit.c"

PROGRAM = """\
#include <sys/wait.h>
#include <unistd.h>
static int twice(int x) { return 2 * x; }
int main(int argc, char **argv) {
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += twice(i);
#ifdef FEATURE_X
    if (argc > 5)
        n = -1;                 /* never */
#endif
    pid_t pid = fork();
    if (pid == 0) {
        n += 100;               /* the child only, which ends with _exit() */
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return n == 6 ? 0 : 1;
}
"""
LOOP_LINE, NEVER_LINE, CHILD_LINE = 7, 10, 14
FEATURE_LINES = {9, 10}  # inside #ifdef FEATURE_X


def have_gcc() -> bool:
    return shutil.which("gcc") is not None and shutil.which("gcov") is not None


@dataclass(frozen=True)
class TinyBuild:
    prefix: Path
    objdir: Path
    binary: Path
    strip: int
    spec_file: Path

    def run(self, counters: Path) -> None:
        env = {**os.environ, "GCOV_PREFIX": str(counters), "GCOV_PREFIX_STRIP": str(self.strip)}
        subprocess.run([str(self.binary)], env=env, check=True, timeout=30)


def make(base: Path, *, flush_on_exit: bool = True) -> TinyBuild:
    prefix = base / "prefix"
    objdir = prefix / "src" / "build-test"
    objdir.mkdir(parents=True)
    (objdir / "prog.c").write_text(PROGRAM)
    bindir = prefix / "bin"
    bindir.mkdir()
    binary = bindir / "prog"

    def cc(*args: str) -> None:
        subprocess.run(["gcc", *args], cwd=objdir, check=True, capture_output=True, timeout=60)

    cc("-O0", "--coverage", "-DFEATURE_X", "-c", "prog.c", "-o", "prog.o")
    link = ["-O0", "--coverage", "-o", str(binary), "prog.o"]
    if flush_on_exit:
        cc("-O0", "-c", str(FLUSH_ON_EXIT), "-o", "flush.o")
        link += ["flush.o", "-Wl,--wrap=_exit"]
    cc(*link)
    strip = len(objdir.parts) - 1  # leading components: /a/b/c has 3
    (prefix / "coverage-build.json").write_text(json.dumps(
        {"objdir": str(objdir), "gcov_prefix_strip": strip, "version": "test", "objects": ["prog"]}))
    spec_file = base / "tiny.yaml"
    spec_file.write_text(
        "name: tiny\nkind: managed\n"
        f"install_check: [{binary}]\n"
        "config: {template: tiny.conf.j2, file: tiny.conf}\n"
        f"start: {{command: [{binary}]}}\n"
        "env:\n"
        "  GCOV_PREFIX: \"${MTACONFORM_GCOV_PREFIX:-/nonexistent}\"\n"
        f"  GCOV_PREFIX_STRIP: \"{strip}\"\n")
    (base / "tiny.conf.j2").write_text("# nothing\n")
    return TinyBuild(prefix, objdir, binary, strip, spec_file)
