"""Print the GPU check's short table from the files that run.sh wrote."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(out: Path) -> int:
    print("\n=== QuantGPU GPU check ===")
    print((out / "device.txt").read_text().strip())
    xml = out / "gpu-tests.xml"
    if xml.exists():
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        total, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        print(f"gpu tests: {total - failures - errors - skipped} passed, {failures + errors} failed, {skipped} skipped")
    print("benchmarks (median seconds):")
    for line in (out / "benchmarks.log").read_text().splitlines():
        if line.startswith("==") or "median" in line.lower() or line.strip().startswith("|"):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
