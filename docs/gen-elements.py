#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the element reference (docs/elements.md) from what
gst-inspect-1.0 says of each element, so the two never disagree.

  gen-elements.py OUTPUT        write the reference
  gen-elements.py --check FILE  exit 1 when FILE is not what would be written
"""

import subprocess
import sys

ELEMENTS = ["kafkasink", "kafkasrc", "souphttpserversink"]


def inspect(name):
    r = subprocess.run(["gst-inspect-1.0", "--no-colors", name], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True,
                       env=dict(__import__("os").environ, GST_INSPECT_NO_COLORS="1",
                                PAGER="cat"))
    if r.returncode != 0:
        return None
    return r.stdout


def section(text, title):
    """The lines of gst-inspect's block starting with @title."""
    lines = text.splitlines()
    out, inside = [], False
    for line in lines:
        if line.startswith(title):
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        if inside:
            out.append(line)
    return out


def render():
    parts = ["# Element reference\n",
             "Generated from `gst-inspect-1.0` by `docs/gen-elements.py`; the `unit` test",
             "suite fails when this file and the built elements disagree. Regenerate with",
             "`GST_PLUGIN_PATH=build/gst docs/gen-elements.py docs/elements.md`.\n"]
    for name in ELEMENTS:
        text = inspect(name)
        if text is None:
            continue
        details = section(text, "Factory Details:")
        desc = {}
        for line in details:
            k, _, v = line.strip().partition(" ")
            desc[k.strip()] = v.strip()
        parts.append("## %s\n" % name)
        long_name = next((l.strip()[len("Long-name"):].strip() for l in details
                          if l.strip().startswith("Long-name")), name)
        description = next((l.strip()[len("Description"):].strip() for l in details
                            if l.strip().startswith("Description")), "")
        parts.append("**%s**: %s\n" % (long_name, description))
        for title in ("Pad Templates:", "URI handling capabilities:", "Element Properties:",
                      "Element Signals:", "Element Actions:"):
            block = section(text, title)
            if not block:
                continue
            parts.append("### %s\n" % title.rstrip(":"))
            parts.append("```")
            parts.extend(l.rstrip() for l in block)
            parts.append("```\n")
    return "\n".join(parts).rstrip() + "\n"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        with open(sys.argv[2]) as f:
            committed = f.read()
        fresh = render()
        if committed != fresh:
            sys.stderr.write("%s is out of date with the built elements; regenerate it:\n"
                             "  docs/gen-elements.py docs/elements.md\n" % sys.argv[2])
            import difflib
            sys.stderr.writelines(difflib.unified_diff(committed.splitlines(True),
                                                       fresh.splitlines(True), "committed",
                                                       "built"))
            sys.exit(1)
        return
    with open(sys.argv[1], "w") as f:
        f.write(render())


if __name__ == "__main__":
    main()
