"""harness.coverage.summary and .regions: gcov JSON merged per file, feature code by its guards."""

from __future__ import annotations

from typing import Any

import pytest

from harness.coverage.regions import guarded_lines
from harness.coverage.summary import FileCounts, GcovFormatError, Ratio, merge, total


def line(n: int, count: int, *branches: int) -> dict[str, Any]:
    return {"line_number": n, "count": count,
            "branches": [{"count": c, "fallthrough": False, "throw": False} for c in branches]}


def doc(cwd: str, *files: dict[str, Any]) -> dict[str, Any]:
    return {"format_version": "1", "current_working_directory": cwd, "files": list(files)}


def resolve(cwd: str, name: str) -> str | None:
    return None if name.startswith("/usr/") else name.removeprefix("../")


def test_ratio() -> None:
    assert Ratio(1, 3).percent == 33.3 and Ratio(0, 0).percent is None
    assert Ratio(1, 3) + Ratio(2, 5) == Ratio(3, 8)
    assert str(Ratio(1, 4)) == " 25.0% (1/4)" and str(Ratio(0, 0)).strip().startswith("n/a")


def test_merge_sums_a_header_seen_by_two_objects_and_drops_system_files() -> None:
    a = doc("/b", {"file": "a.c", "lines": [line(1, 2, 1, 0), line(2, 0)],
                   "functions": [{"name": "f", "start_line": 1, "end_line": 2, "execution_count": 2}]},
            {"file": "h.h", "lines": [line(10, 0, 0, 0)], "functions": []},
            {"file": "/usr/include/stdio.h", "lines": [line(5, 9)], "functions": []})
    b = doc("/b/sub", {"file": "../h.h", "lines": [line(10, 3, 3, 0), line(11, 0)], "functions": []})
    files = merge([a, b], resolve)
    assert sorted(files) == ["a.c", "h.h"]
    assert files["h.h"].lines == {10: 3, 11: 0}  # one file, counts summed, lines united
    assert files["h.h"].branches == {(10, 0): 3, (10, 1): 0}
    assert files["a.c"].line_ratio() == Ratio(1, 2) and files["a.c"].branch_ratio() == Ratio(1, 2)
    assert files["a.c"].function_ratio() == Ratio(1, 1)
    lines, branches, functions = total(files.values())
    assert (lines, branches, functions) == (Ratio(2, 4), Ratio(2, 4), Ratio(1, 1))
    # A subset of lines (a feature's region): lines without code are ignored.
    assert files["h.h"].line_ratio({10, 99}) == Ratio(1, 1) and files["h.h"].branch_ratio({11}) == Ratio(0, 0)


@pytest.mark.parametrize("bad", [{"no": "files"}, doc("/", {"file": "a.c", "lines": [{"count": 1}]}),
                                 doc("/", {"file": "a.c", "lines": [line(1, 1)],
                                           "functions": [{"name": "f"}]})])
def test_unexpected_gcov_json_is_one_error_type(bad: dict[str, Any]) -> None:
    with pytest.raises(GcovFormatError):
        merge([bad], resolve)


def test_file_counts_add_is_cumulative() -> None:
    f = FileCounts("x.c")
    f.add({"lines": [line(3, 1)], "functions": []})
    f.add({"lines": [line(3, 4)], "functions": []})
    assert f.lines == {3: 5}


SOURCE = """\
int a;                          /* 1 */
#ifndef DISABLE_PRDR
int prdr1;                      /* 3 */
# ifdef OTHER
int prdr2;                      /* 5 */
# endif
#else
int prdr_off;                   /* 8 */
#endif
#if defined(SUPPORT_PROXY) \\
    || defined(SUPPORT_SOCKS)
int proxy;                      /* 12 */
#elif defined(X)
int proxy_else;                 /* 14 */
#endif
#if defined(X)
int x;                          /* 17 */
#elif defined(SUPPORT_PROXY)
int proxy_elif;                 /* 19 */
#endif
#if !defined(DISABLE_TLS) && !defined(DISABLE_OCSP)
int ocsp;                       /* 22 */
#endif
#ifdef SUPPORT_PROXY
#else
int no_proxy;                   /* 26 */
# ifndef DISABLE_PRDR
int prdr_without_proxy;         /* 28 */
# endif
#endif
int b;                          /* 31 */
"""


def test_guarded_lines_take_the_branches_compiled_with_the_feature_on() -> None:
    # Directive lines are not code; #else of a guard is the feature-off code.
    assert guarded_lines(SOURCE, ["!DISABLE_PRDR"]) == {3, 5, 28}
    assert guarded_lines(SOURCE, ["DISABLE_PRDR"]) == {8}
    # A condition continued on the next line; an #elif not naming the feature follows its false.
    assert guarded_lines(SOURCE, ["SUPPORT_SOCKS"]) == {12}
    assert guarded_lines(SOURCE, ["SUPPORT_PROXY"]) == {12, 19}
    assert guarded_lines(SOURCE, ["!SUPPORT_PROXY"]) == {14, 26, 28}  # 17: a branch on X alone
    assert guarded_lines(SOURCE, ["!DISABLE_OCSP"]) == {22}
    assert guarded_lines(SOURCE, ["NOWHERE"]) == set()
    assert guarded_lines(SOURCE, ["PRDR"]) == set()  # whole names only
    assert guarded_lines("#else\nx;\n#endif\n#endif\n", ["X"]) == set()  # unbalanced: no crash
