#!/usr/bin/env python3
"""Runs the Python interop tests (unittest) and writes a JSON result list.

Usage: run.py [--json FILE]; exit status 1 when a test fails or errors.
"""
import argparse
import json
import pathlib
import sys
import unittest

HERE = pathlib.Path(__file__).resolve().parent


class Recorder(unittest.TextTestResult):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.records = []
        self.failed_subtests = set()

    def _add(self, test, status, detail=""):
        self.records.append({"name": test._testMethodName, "status": status, "detail": detail})

    def addSuccess(self, test):
        super().addSuccess(test)
        if test.id() not in self.failed_subtests:
            self._add(test, "pass")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._add(test, "fail", self._exc_info_to_string(err, test).splitlines()[-1])

    def addError(self, test, err):
        super().addError(test, err)
        self._add(test, "fail", self._exc_info_to_string(err, test).splitlines()[-1])

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.failed_subtests.add(test.id())
            self._add(test, "fail", f"{subtest._subDescription()}: "
                      + self._exc_info_to_string(err, test).splitlines()[-1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._add(test, "skipped", reason)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--json")
    a = p.parse_args()
    sys.path.insert(0, str(HERE))
    suite = unittest.defaultTestLoader.discover(str(HERE), pattern="test_*.py")
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Recorder, stream=sys.stdout)
    result = runner.run(suite)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({"tests": result.records}, indent=2))
    sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)


if __name__ == "__main__":
    main()
