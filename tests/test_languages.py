"""Languages: the catalogue is complete and compiled, every string of every language fits its
place on a 480x320 screen with both text engines, a French screen really carries its accents,
and classify / cases export speak the language while JSON stays English."""

from __future__ import annotations

import csv
import gettext
import json
import string
from pathlib import Path

import cv2
import numpy as np
import pytest

from device import i18n
from device.core.quality import GUIDANCE
from device.core.verdict import CANNOT_JUDGE, likelihood
from device.i18n import _
from device.live.fonts import FreeTypeFace, OpenCVFace, Typesetter, ascii_only, dejavu_folder
from device.live.screen import SLOTS, STATUS, Renderer
from tests.conftest import require, run_cli

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("opencv", "freetype")  # OpenCV 5's fonts; FreeType (Pillow) where OpenCV is 4.x


def catalogue(lang: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id}


def fields_of(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


# --- the catalogue ---------------------------------------------------------------------------


def test_every_marked_string_is_translated_in_every_language_and_compiled():
    """The code's _()/N_() strings (extracted by Babel, as `pybabel extract` does) are the
    template's, and each language has all of them, non-empty, with the same {fields}; the
    committed .mo files say what the .po files say."""
    from babel.messages.extract import extract_from_dir

    code = {m[2] for m in extract_from_dir(str(ROOT / "device"))}
    with (i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot").open("rb") as f:
        from babel.messages.pofile import read_po

        template = {m.id for m in read_po(f) if m.id}
    assert code == template, "run the pybabel steps in docs/languages.md"
    for lang in set(i18n.LANGUAGES) - {"en"}:
        po = catalogue(lang)
        assert set(po) == template, lang
        for msgid, text in po.items():
            assert text.strip(), f"{lang}: {msgid!r} untranslated"
            assert fields_of(text) == fields_of(msgid), f"{lang}: {msgid!r} -> {text!r}"
        mo = i18n.LOCALE_DIR / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo"
        with mo.open("rb") as f:
            compiled = gettext.GNUTranslations(f)
        stale = [m for m, t in po.items() if compiled.gettext(m) != t]
        assert not stale, f"{lang}: .mo older than .po for {stale[:3]}: pybabel compile"


def test_an_unknown_language_is_a_one_line_error():
    proc = run_cli("device.cli", "run", "--language", "xx", ok=False)
    assert proc.returncode == 2 and "'xx' is not one of ['en', 'fr', 'pt', 'sw']" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(Exception, match="one of en, fr, pt, sw"):
        i18n.use("de")


# --- fitting the 480x320 screen ----------------------------------------------------------------


def screen_texts():
    """(slot, text) for everything the screen can show, with the longest values a field takes."""
    yield "headline", likelihood("mpox", True)
    yield "headline", likelihood("mpox", False)
    for g in (*GUIDANCE.values(), CANNOT_JUDGE):
        yield "headline", _(g)
    yield "subline", _("no result on this frame")
    yield "status", _("DEMO: generated frames, not a patient")
    yield "status", _("no camera - retrying")
    yield "status", _("no camera - retrying in {seconds} s").format(seconds="10")
    yield "hint", _("Fill the square with the lesion")
    yield "disclaimer", _("Screening aid - not a diagnosis")
    for signed in (_("signed"), _("unsigned")):
        yield (
            "footer",
            f"30.0 fps  99.9 ms  micrompoxnet-binary 1.0.0 {signed}  " + _("heat-map off (h)"),
        )
    for problem in ("No space left on device", "Read-only file system"):
        yield "notice", _("Case NOT saved: {why}").format(why=problem)
    yield "notice", _("FROZEN - f to resume")
    yield "notice", _("Disk nearly full: case NOT saved - export and purge cases")
    yield "notice", _("Cases cannot be saved")
    yield "notice", _("{problem}: case NOT saved").format(problem=_("Cases cannot be saved"))
    yield (
        "notice",
        _("Saved case {number} - {count} cases, {free} GB free").format(
            number=99999, count=99999, free="999.9"
        ),
    )


PRINTED_ONLY = {  # classify's text lines and the export's CSV header: not on the screen
    "(likeliest: {label})",
    "P({cls})={prob} (threshold {threshold})",
    "WARNING: {warning}",
    "no verdict, cannot judge: not a skin-lesion photo (OOD score {score} > limit {limit})",
    "no verdict, cannot judge: not a skin-lesion photo (skin-coloured {skin} of the square < "
    "{least})",
    "no verdict, poor quality ({problem}): {guidance}",
    "skipped, {why}",
    "tiny image ({size} px): a result means little",
    # `cases report`'s text and its reliability plot
    "{n} cases with a lab result ({pos} positive, {neg} negative) of {cases} saved; "
    "{inconclusive} inconclusive, {none} without a result yet",
    "Too few results to say: {pos} positives and {neg} negatives (at least {least} of each).",
    "sensitivity",
    "specificity",
    "PPV",
    "NPV",
    "cannot judge: {rate}",
    "poor quality: {rate}",
    "Kit said / lab result: positive, negative",
    "By model version",
    "By skin tone",
    "P(mpox) shown",
    "share with a positive result",
    "Reliability at this clinic ({n} results)",
}


def test_the_fit_list_covers_every_message():
    """A new message must be placed here (a screen slot or printed only), so it is fit-tested."""
    from device.cases.export import HEADERS

    shown = {m for m in catalogue("fr") if any(_(m).split("{")[0] in t for _s, t in screen_texts())}
    covered = shown | PRINTED_ONLY | set(HEADERS.values())
    assert set(catalogue("fr")) - covered == set()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
def test_every_string_fits_its_place_at_480x320(engine, lang):
    require(engine != "freetype" or dejavu_folder() is not None, "fonts-dejavu-core not installed")
    require(engine != "opencv" or hasattr(cv2, "FontFace"), "OpenCV 5 not installed")
    i18n.use(lang)
    renderer = Renderer(480, 320, font=engine)
    assert renderer.type.face.name == engine
    too_long = {
        text: renderer.overflow(slot, text)
        for slot, text in screen_texts()
        if renderer.overflow(slot, text)
    }
    assert not too_long, f"{lang} ({engine}): pixels over the slot: {too_long}"
    # and the check can fail: a string as long as two headlines does not fit
    assert renderer.overflow("headline", likelihood("mpox", False) * 3) > 0


# --- the glyphs on a real screen -----------------------------------------------------------------


def own_rendering(engine: str, text: str, px: int, org: tuple[int, int], size) -> np.ndarray:
    """The font's own rendering of `text` (baseline's left end at `org`, on a black canvas of
    `size`), straight from OpenCV 5 or Pillow rather than through the kit: a mask."""
    if engine == "opencv":
        img = np.zeros(size, np.uint8)
        cv2.putText(img, text, org, 255, cv2.FontFace("sans"), px, 700)
        return img > 127
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(dejavu_folder() / "DejaVuSans-Bold.ttf"), px)
    img = Image.new("L", size[::-1])
    ImageDraw.Draw(img).text(org, text, fill=255, font=font, anchor="ls")
    return np.asarray(img) > 127


def best_shift(drawn: np.ndarray, ref: np.ndarray, reach: int = 2) -> np.ndarray:
    """`ref` moved by the shift (within `reach` px) that best matches `drawn`."""
    shifts = [(dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)]
    moved = [np.roll(ref, s, axis=(0, 1)) for s in shifts]
    return max(moved, key=lambda m: (m & drawn).sum() / (m | drawn).sum())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_french_screen_carries_its_accents(engine, tmp_path):
    """The real daemon on demo:// frames in French, frames written by the file display: the
    guidance line's drawn pixels match the font's own rendering of the French string, and the
    pixels that only its accents have (é, not e) are on the screen."""
    require(engine != "freetype" or dejavu_folder() is not None, "fonts-dejavu-core not installed")
    require(engine != "opencv" or hasattr(cv2, "FontFace"), "OpenCV 5 not installed")
    from device.config import from_flags
    from device.live.daemon import Daemon

    cfg = from_flags(
        display=f"file://{tmp_path}/screen",
        source="demo://",
        screen_width=480,
        screen_height=320,
        language="fr",
        font=engine,
        max_frames=2,
        log_dir=str(tmp_path / "logs"),
        state_dir=str(tmp_path / "state"),
    )
    assert Daemon(cfg).run() == 0
    screen = cv2.imread(str(sorted((tmp_path / "screen").glob("*.png"))[-1]))
    text = "Pas d'avis : pas une lésion cutanée"
    assert _(CANNOT_JUDGE) == text  # the demo's drawn skin is not like a training photo
    band = screen[:40]  # the headline (at 480x320 a layout unit is one pixel)
    drawn = np.abs(band.astype(int) - STATUS).max(axis=2) < 60  # guidance is drawn in STATUS
    drawn[:, :14] = False  # the status bar at the left edge
    px, org = Typesetter(engine).px(SLOTS["headline"].scale), (18, 27)
    ref = best_shift(drawn, own_rendering(engine, text, px, org, band.shape[:2]))
    plain = best_shift(drawn, own_rendering(engine, ascii_only(text), px, org, band.shape[:2]))
    assert (ref & drawn).sum() / (ref | drawn).sum() > 0.75
    accents = ref & ~plain  # what "é" has and "e" has not
    assert accents.sum() > 10
    assert (accents & drawn).sum() / accents.sum() > 0.6
    # the measure can fail: an ASCII screen has none of those pixels
    assert (accents & plain).sum() / accents.sum() < 0.2


def test_without_a_unicode_engine_accents_are_dropped_not_question_marks(monkeypatch, caplog):
    """A broken install (no OpenCV 5, no DejaVu): Hershey, ASCII, and it says so in the log."""
    from device.live import fonts

    monkeypatch.setattr(fonts, "FONT_DIRS", ())
    typesetter = Typesetter("freetype")
    assert typesetter.face.name == "hershey" and "fonts-dejavu-core" in caplog.text
    assert ascii_only("Résultat sensibilité ção") == "Resultat sensibilite cao"
    drawn = typesetter.render("lésion", 22, False).alpha
    assert drawn.shape == typesetter.render("lesion", 22, False).alpha.shape


def test_labels_are_laid_out_once():
    """The frame loop draws the same strings every frame: the layout is cached."""
    typesetter = Typesetter("auto")
    canvas = np.zeros((60, 300, 3), np.uint8)
    for _i in range(50):
        typesetter.draw(canvas, "Plus de lumière", (5, 40), 22, STATUS, True)
    info = typesetter.render.cache_info()
    assert info.misses == 1 and info.hits == 49
    assert (canvas == STATUS).all(axis=2).any()


def test_both_faces_render_every_language():
    require(dejavu_folder() is not None, "fonts-dejavu-core not installed")
    faces = [FreeTypeFace(dejavu_folder())] + ([OpenCVFace()] if hasattr(cv2, "FontFace") else [])
    for face in faces:
        for lang in i18n.LANGUAGES:
            i18n.use(lang)
            g = face.render(_(CANNOT_JUDGE), 22, True)
            assert g.alpha.max() == 255 and 0 < g.ascent < g.alpha.shape[0]


# --- printed output ------------------------------------------------------------------------------


def test_classify_speaks_the_language_and_json_stays_english(bundle, msid, tmp_path):
    photos = [sorted((msid / c).glob("*.png"))[0] for c in ("mpox", "normal")]
    french = run_cli("device.cli", "classify", "--bundle", bundle, "--language", "fr", *photos)
    lines = french.stdout.splitlines()
    assert len(lines) == 2
    assert all("Mpox probable" in x or "Mpox peu probable" in x or "pas d'avis" in x for x in lines)
    assert "seuil" in french.stdout or "pas d'avis" in french.stdout
    rows = [
        json.loads(x)
        for x in run_cli(
            "device.cli", "classify", "--bundle", bundle, "--language", "sw", "--json", *photos
        ).stdout.splitlines()
    ]
    english = [
        json.loads(x)
        for x in run_cli(
            "device.cli", "classify", "--bundle", bundle, "--json", *photos
        ).stdout.splitlines()
    ]
    for r in rows + english:
        r.pop("latency_ms", None)
    assert rows == english


def test_cases_export_header_on_request_in_the_language_and_re_export_reads_it_back(tmp_path):
    from device.cases.export import HEADERS, export
    from device.cases.store import Case, CaseStore

    with CaseStore(tmp_path / "state") as store:
        for i in range(2):
            case = Case("2026-12-01T10:00:00.000+00:00", "Mpox probable", "ok", 0.9, 1.0, "{}",
                        "b", "1", "0" * 64)  # fmt: skip
            store.save(case, b"frame%d" % i, b"view%d" % i)
        stick = tmp_path / "stick"
        stick.mkdir()
        i18n.use("fr")
        export(store, stick, translated_header=True)
        header = next(csv.reader((stick / "mpox-screen-cases" / "cases.csv").open()))
        assert header[:3] == ["Kit", "Enregistré le (UTC)", "Affiché à l'écran"]
        assert len(header) == len(HEADERS)
        i18n.use("en")
        again = export(store, stick)  # the French file is read back: no row twice
    assert again.cases == 2 and again.new_images == 0
    rows = list(csv.DictReader((stick / "mpox-screen-cases" / "cases.csv").open()))
    assert len(rows) == 2 and rows[0]["saved_at"].startswith("2026-12-01")  # keys by default
