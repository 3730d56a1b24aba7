"""An XML start tag's attributes, read by regular expression.

The workbook pre-scans (`workbook_package`, `ods_styles`) look at tags in bounded steps
before any XML parser sees the file, so a hostile file cannot make them build a tree.
"""

from __future__ import annotations

import html
import re

_ATTRIBUTE = re.compile(rb"([\w:.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def tag_attributes(text: bytes) -> dict[str, str]:
    """`name -> value` for the attributes in a start tag's text (after its name)."""
    return {
        key.decode("utf-8", "replace"): html.unescape(
            (double if double or not single else single).decode("utf-8", "replace")
        )
        for key, double, single in _ATTRIBUTE.findall(text)
    }
