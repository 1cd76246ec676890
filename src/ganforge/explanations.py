"""An event's explanation in the reader's language: the doctor keeps, beside the text it wrote
in the language of training, the English template and its values, so `ganforge doctor RUN
--lang es` and the report say it again in Spanish for a run trained in English."""

from __future__ import annotations

from ganforge.i18n import _

SAID = "said"  # evidence key: the explanation's English template and values (explained())


def explained(template: str, **values) -> dict:
    """Evidence fields for an explanation: its text in the language of the moment, and the
    English `template` (marked with N_ where it is written) with its `values`, so that a reader
    in another language gets it in theirs (explanation())."""
    return {
        "explanation": _(template).format(**values),
        SAID: {"template": template, "values": values},
    }


def explanation(evidence: object) -> str:
    """An event's explanation in the current language: said again from its template where the
    event has one (events written before templates were kept: the text as written)."""
    if not isinstance(evidence, dict):
        return ""
    said = evidence.get(SAID)
    if isinstance(said, dict) and isinstance(said.get("template"), str):
        values = said.get("values")
        try:
            return _(said["template"]).format(**(values if isinstance(values, dict) else {}))
        except (KeyError, IndexError, ValueError, TypeError):  # a hand-edited or odd line
            pass
    text = evidence.get("explanation", "")
    return text if isinstance(text, str) else str(text)
