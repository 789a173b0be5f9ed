#!/usr/bin/env python3
"""Counts GoogleTest cases from meson's JUnit log, so the closing line of
tools/test counts every test case, not every test binary.

Usage: count_unit.py BUILD_DIR  ->  prints "PASSED FAILED SKIPPED"

A suite that meson saw fail but that reported no failing case (it crashed,
or its EAL would not start) counts as one more failure."""
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

build = Path(sys.argv[1])
root = ET.parse(build / "meson-logs" / "testlog.junit.xml").getroot()
passed = failed = skipped = 0
for suite in root.iter("testsuite"):
    cases = list(suite.iter("testcase"))
    suite_failed = 0
    for case in cases:
        if case.find("failure") is not None or case.find("error") is not None:
            suite_failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    # meson writes a suite whose binary failed outright as a single case
    # carrying the failure, so it is counted above.
    failed += suite_failed
print(passed, failed, skipped)
