#!/usr/bin/python3
"""Sums up the Surefire reports of every module after `mvn verify` and decides the test run.

    scripts/test-summary.py [--label TEXT] [MODULE_DIR ...]   (default: every module with reports)

Prints, per module, how many tests passed, failed and were skipped; every failure with its first
message line; every skip with its reason, grouped. Exits 1 when any test failed or errored, or
when a module expected to have tests has none; with CI=true also when a test skipped for want of
something scripts/setup.sh installs or of a ../shared fixture (skip messages starting with
"needs scripts/setup.sh:" or "needs ../shared:", see testkit's Prereq): CI has both, so the
oracle and fixture tests must run there, not skip. Ends with the plain closing line
"tests: N passed, N failed, N skipped".
"""
import argparse
import collections
import glob
import os
import sys
import xml.etree.ElementTree as ET

SETUP = "needs scripts/setup.sh:"
SHARED = "needs ../shared:"
MODULES = ["testkit", "data-prep", "trainer", "spark-jobs", "launcher"]
# modules whose test trees are not empty: a report-less one means its tests did not run
EXPECT_TESTS = ["data-prep", "trainer", "spark-jobs", "launcher"]


def first_line(text):
    text = (text or "").strip()
    return text.splitlines()[0][:300] if text else ""


def skip_reason(elem):
    """The reason a test skipped: JUnit's abort() leaves it in the text, assumeTrue() in
    the message attribute, behind an exception name or "Assumption failed: "."""
    reason = first_line(elem.get("message")) or first_line(elem.text)
    for prefix in ("org.opentest4j.TestAbortedException: ", "Assumption failed: "):
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
    return reason or "(no reason given)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="tests")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--counts-out", help="also write 'passed failed skipped' to this file")
    ap.add_argument("--total", nargs="+", metavar="COUNTS_FILE",
                    help="only print the closing line summed over earlier --counts-out files")
    ap.add_argument("modules", nargs="*")
    args = ap.parse_args()
    if args.total:
        t = [0, 0, 0]
        for f in args.total:
            for i, v in enumerate(open(f).read().split()):
                t[i] += int(v)
        print(f"{args.label}: {t[0]} passed, {t[1]} failed, {t[2]} skipped")
        return 0
    modules = args.modules or MODULES
    ci = os.environ.get("CI", "").lower() == "true"

    totals = collections.Counter()
    failures, skips, problems = [], collections.defaultdict(list), []
    for m in modules:
        reports = sorted(glob.glob(os.path.join(args.root, m, "target", "surefire-reports", "TEST-*.xml")))
        if not reports:
            if m in EXPECT_TESTS:
                problems.append(f"{m}: no test reports (did its tests run?)")
            continue
        c = collections.Counter()
        for path in reports:
            suite = ET.parse(path).getroot()
            for case in suite.iter("testcase"):
                name = f"{case.get('classname')}.{case.get('name')}"
                bad = case.find("failure")
                if bad is None:
                    bad = case.find("error")
                skipped = case.find("skipped")
                if bad is not None:
                    c["failed"] += 1
                    failures.append(f"{m}: {name}: {first_line(bad.get('message') or bad.text)}")
                elif skipped is not None:
                    c["skipped"] += 1
                    skips[skip_reason(skipped)].append(f"{m}: {name}")
                else:
                    c["passed"] += 1
        totals.update(c)
        print(f"{args.label}: {m}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")

    for f in failures:
        print(f"{args.label}: FAILED {f}")
    setup_skips = 0
    for reason, cases in sorted(skips.items()):
        if reason.startswith(SETUP) or reason.startswith(SHARED):
            setup_skips += len(cases)
        print(f"{args.label}: skipped {len(cases)} ({reason}): {', '.join(cases[:4])}{' ...' if len(cases) > 4 else ''}")
    for p in problems:
        print(f"{args.label}: {p}")
    ok = not failures and not problems
    if ci and setup_skips:
        print(f"{args.label}: {setup_skips} test(s) skipped for want of what scripts/setup.sh installs"
              " or of ../shared; with CI=true the oracle and fixture tests must run")
        ok = False
    print(f"{args.label}: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    if args.counts_out:
        with open(args.counts_out, "w") as f:
            f.write(f"{totals['passed']} {totals['failed'] + len(problems)} {totals['skipped']}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
