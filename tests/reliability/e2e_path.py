# SPDX-License-Identifier: LGPL-2.1-or-later
"""Puts tests/e2e on sys.path so the reliability tests share its helpers."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "e2e"))
import e2elib  # noqa: E402,F401
