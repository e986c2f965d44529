"""Coverage of a target built with gcc --coverage (exim-coverage): counters, summary, report.

`mtaconform coverage run|fuzz|report` (command.py) runs the harness against the target with a
fresh counters folder (gcov.py: GCOV_PREFIX), reads the counters back with gcov's JSON output,
merges them per source file (summary.py), finds feature code by its preprocessor guards
(regions.py) and prints and writes the result (report.py).
"""
