"""Tests of the Pulumi program (issue 3). The program's package lives in pulumi/, which is not
installed: put it on the import path for every module of this folder."""

import sys
from pathlib import Path

_PROGRAM = str(Path(__file__).resolve().parents[2] / "pulumi")
if _PROGRAM not in sys.path:
    sys.path.insert(0, _PROGRAM)
