"""Show that the killed-workers variant fails when acking comes before the rename.

Run from the repository root: ``python tests/flow/faults/prove_ack_order.py``.  It runs
``test_ack_order.py`` with ``--runxfail`` (so the expected failure is reported as the
failure it is) and prints the end of pytest's output: the counts table of the broken
run and the assertion naming the lost files.  Exit status 0 when the variant failed,
as it must.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def main() -> int:
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:logging", "--runxfail",
        "tests/flow/faults/test_ack_order.py",
    ]  # fmt: skip
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [
        line
        for line in p.stdout.splitlines()
        if line.startswith(("==", "   ", "E ", "FAILED", "PASSED"))
        or " failed" in line
        or " passed" in line
    ]
    print("\n".join(lines[-60:]))
    if p.returncode == 0:
        print("UNEXPECTED: the variant passed against the ack-first copy")
        return 1
    print("as required: the killed-workers variant FAILS when acking comes before the rename")
    return 0


if __name__ == "__main__":
    sys.exit(main())
