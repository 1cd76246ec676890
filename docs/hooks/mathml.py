"""MkDocs hook: formulas written in LaTeX become MathML when the site is built.

pymdownx.arithmatex (generic mode) keeps `$...$` and `$$...$$` apart from Markdown as
`<span class="arithmatex">\\(...\\)</span>` and `<div class="arithmatex">\\[...\\]</div>`; this
hook converts each one with latex2mathml into MathML, which browsers draw natively. The site so
needs no MathJax and loads nothing from outside when it is read offline. A formula
latex2mathml cannot convert stops the build, naming the page.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

BLOCK = re.compile(r'<div class="arithmatex">\s*\\\[(?P<tex>.*?)\\\]\s*</div>', re.DOTALL)
INLINE = re.compile(r'<span class="arithmatex">\\\((?P<tex>.*?)\\\)</span>', re.DOTALL)


def on_page_content(content: str, page, config, files) -> str:
    def mathml(match: re.Match, display: str) -> str:
        tex = html.unescape(match["tex"]).strip()
        try:
            return convert(tex, display=display)
        except Exception as exc:  # latex2mathml raises its own, unrelated exception types
            raise ValueError(f"{page.file.src_path}: cannot convert the formula {tex!r}") from exc

    content = BLOCK.sub(
        lambda match: f'<div class="formula">{mathml(match, "block")}</div>', content
    )
    return INLINE.sub(lambda match: mathml(match, "inline"), content)
