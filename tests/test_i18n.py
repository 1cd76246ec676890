"""The words a student reads in Spanish: every marked message has its Spanish entry, the
shipped .mo is the .po compiled, translations keep their placeholders, and `--lang` (or the
locale) switches the doctor's words during training and in `ganforge doctor`."""

from __future__ import annotations

import gettext
import importlib.util
import json
import math
import string
from collections import Counter
from pathlib import Path

import pytest

from ganforge import TrainConfig, i18n
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.report.html import build_report
from ganforge.training.doctor import detectors as dx
from tiny import tiny_flags

ROOT = Path(__file__).resolve().parents[1]


def catalogue_tool():
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "tools" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def spanish():
    i18n.set_language("es")
    yield
    i18n.set_language("en")


@pytest.fixture(scope="module")
def tool():
    return catalogue_tool()


def test_every_marked_message_has_a_spanish_entry(tool):
    source = tool.source_catalog()
    assert len([m for m in source if m.id]) > 40  # the doctor's words are marked
    assert tool.missing(tool.read_catalog("es"), source) == []


def test_a_message_without_its_spanish_entry_is_found(tool):
    source, catalog = tool.source_catalog(), tool.read_catalog("es")
    some = next(m.id for m in source if m.id)
    catalog.delete(some)
    assert tool.missing(catalog, source) == [some]
    catalog.add(some, "", flags=["fuzzy"])
    assert tool.missing(catalog, source) == [some]  # an empty or fuzzy entry is no translation


def test_the_shipped_mo_is_the_po_compiled(tool):
    shipped = ROOT / "src" / "ganforge" / "locale" / "es" / "LC_MESSAGES" / "ganforge.mo"
    with shipped.open("rb") as handle:
        loaded = gettext.GNUTranslations(handle)
    po = {m.id: m.string for m in tool.read_catalog("es") if m.id}
    for message, translation in po.items():
        assert loaded.gettext(message) == translation, message


def fields(template: str) -> Counter:
    return Counter(
        (name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None
    )


def test_translations_keep_every_placeholder_and_its_format(tool):
    for message in tool.read_catalog("es"):
        if message.id:
            assert fields(message.string) == fields(message.id), message.id


@pytest.mark.parametrize(
    "environment, language",
    [
        ({"GANFORGE_LANG": "es", "LANG": "en_GB.UTF-8"}, "es"),
        ({"LANG": "es_ES.UTF-8"}, "es"),
        ({"LANGUAGE": "es:en", "LANG": "C.UTF-8"}, "es"),
        ({"LC_ALL": "es_AR.UTF-8", "LANG": "en_US.UTF-8"}, "es"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),  # no French catalogue: English
        ({}, "en"),
    ],
)
def test_the_language_comes_from_the_environment(environment, language):
    assert i18n.language_from_environment(environment) == language


def test_an_unknown_language_is_refused_with_its_source():
    with pytest.raises(GanforgeError, match="GANFORGE_LANG: en or es, not 'de'"):
        i18n.language_from_environment({"GANFORGE_LANG": "de"})
    with pytest.raises(GanforgeError, match="--lang: en or es, not 'xx'"):
        i18n.set_language("xx")


def test_the_doctor_speaks_spanish_and_back(spanish):
    detector = dx.Exploding(TrainConfig())
    found = detector.examine({"step": 5, "loss_d": math.nan})
    assert found["explanation"] == "loss_d vale nan: el entrenamiento ha divergido."
    i18n.set_language("en")
    found = detector.examine({"step": 6, "loss_d": math.inf})
    assert found["explanation"] == "loss_d is inf: training has diverged."


def test_numbers_are_formatted_inside_the_spanish_sentence(spanish):
    detector = dx.DOverpowering(TrainConfig(doctor_warmup=0, doctor_patience=1))
    found = detector.examine({"step": 1, "d_accuracy": 0.995})
    assert found["explanation"].startswith("D ha acertado con el 99,5% de las imágenes")
    assert "durante 1 registros" in found["explanation"]


def test_spanish_writes_decimal_commas_but_keeps_the_values_of_flags(spanish):
    assert i18n._("step {step:,}").format(step=1500) == "paso 1.500"
    assert i18n._("{n:.1f} min").format(n=2.25) == "2,2 min"
    cause = i18n._("--lr-d {lr_d:g} is above --lr-g {lr_g:g}: D learns faster than G")
    text = cause.format(lr_d=0.001, lr_g=0.0002)
    assert "--lr-d 0.001" in text and "--lr-g 0.0002" in text  # typed back as they are
    i18n.set_language("en")
    assert i18n._("step {step:,}").format(step=1500) == "step 1,500"


def test_train_with_lang_es_writes_spanish_events(tmp_path, capsys):
    out = tmp_path / "run"
    flags = tiny_flags(str(out), steps=20, log_every=5, **{"lr-g": 50.0, "lr-d": 50.0})
    assert main([*flags, "--doctor-warmup", "0", "--lang", "es"]) == 0
    err = capsys.readouterr().err
    assert "ganforge doctor: paso 5: exploding:" in err and "Prueba: --" in err
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert "veces su valor inicial" in events[0]["evidence"]["explanation"]
    assert main(["doctor", str(out), "--lang", "es"]) == 0
    text = capsys.readouterr().out
    assert "Qué pasó" in text and "- exploding en el paso 5" in text
    assert "los pesos o los gradientes crecieron" in text
    assert main(["doctor", str(out), "--lang", "en"]) == 0
    assert "What happened" in capsys.readouterr().out
    i18n.set_language("en")


def test_an_unknown_lang_flag_is_one_line_before_any_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*tiny_flags(str(out)), "--lang", "xx"]) == 2
    assert capsys.readouterr().err.strip() == "ganforge: error: --lang: en or es, not 'xx'"
    assert not out.exists()


def test_no_message_is_hidden_inside_an_f_string():
    """Babel cannot see `_()` inside an f-string's braces (Python 3.11 tokenises the whole
    f-string as one string), so such a message would never reach the catalogue."""
    hidden = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "src" / "ganforge").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "{_(" in line
    ]
    assert hidden == []


def test_the_report_in_spanish(tiny_train, spanish):
    run = tiny_train(steps=12, eval_every=6, eval_n=64)
    page = build_report(run).read_text(encoding="utf-8")
    assert '<html lang="es">' in page
    for text in (
        "Resumen",
        "Paso 12 de 12.",
        "Curvas de entrenamiento",
        "Pérdidas",
        "Mejor checkpoint",
    ):
        assert text in page, text
    for english in ("Training curves", "Summary", "Losses", "No events were recorded"):
        assert english not in page, english
