"""Printable documents: the declaration, the tax payment notice and the release note, as HTML to
print (GET /declarations/{id}/print/{kind}, and the API with ?format=html) and as PDF
(GET /api/v1/declarations/{id}/printouts/{kind}). The PDFs are read back with pypdf, so the test
checks what a reader of the paper would see: the number, the names, the amounts to the fen."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from tests.conftest import PASSWORD, USCC
from tests.customs.conftest import ALUMINIUM, CAR, ICS, filing
from tradewindow.customs import documents
from tradewindow.customs import service as customs
from tradewindow.platform.calendar import WorkingCalendar
from tradewindow.platform.db import clock_at
from tradewindow.registry import service as registry

# 2025-06-03 10:00 in Chongqing: USD at 7.1811 (tariff/data/exchange_rates.csv).
LODGED = datetime(2025, 6, 3, 2, 0, tzinfo=UTC)
HTML = {"accept": "text/html"}


def url(declaration: dict, kind: str, format: str = "pdf") -> str:
    return f"/api/v1/declarations/{declaration['id']}/printouts/{kind}?format={format}"


def pdf_text(response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    return "\n".join(page.extract_text() for page in reader.pages)


def lodge(cw, body: dict, who: str = "trader") -> dict:
    with clock_at(LODGED):
        return customs.lodge_declaration(cw.uow, cw[who], body).declaration


def released_car(cw) -> dict:
    """A car through both agencies and payment to release, all on 2025-06-03."""
    declaration = lodge(cw, filing("PR-CAR", CAR))
    with clock_at(LODGED):
        for task in declaration["agency_tasks"]:
            customs.decide_task(cw.uow, cw["licensing_officer"], task["id"], "approve")
        paid = customs.record_payment(cw.uow, cw["trader"], declaration["id"], "payment", "BANK-CAR-1",
                                      Decimal(declaration["total_due"]))
    assert paid["status"] == "released"
    return paid


@pytest.fixture
def cw(customs_world):
    return customs_world


@pytest.fixture
def logged_in(client, cw):
    def log_in(username: str) -> None:
        client.cookies.clear()
        response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
        assert response.status_code == 303
    return log_in


# The car's figures worked by hand (DESIGN.md §4.2), each line rounded half-up to the fen:
# value 50,000.00 USD x 7.1811 = 359,055.00; duty 15 % = 53,858.25;
# consumption tax (359,055.00 + 53,858.25) / (1 - 12 %) x 12 % = 56,306.35;
# VAT (359,055.00 + 53,858.25 + 56,306.35) x 13 % = 60,998.55; total 171,163.15.
CAR_FIGURES = ("359,055.00", "53,858.25", "56,306.35", "60,998.55", "171,163.15")


# --- the declaration -----------------------------------------------------------------------------

def test_the_declaration_pdf_carries_number_parties_items_and_totals_to_the_fen(client, cw, as_user):
    declaration = lodge(cw, filing("PR-1", CAR))
    assert declaration["total_due"] == "171163.15"
    response = client.get(url(declaration, "declaration"), headers=as_user("trader"))
    text = pdf_text(response)
    assert f'filename="{declaration["number"]}-declaration.pdf"' in response.headers["content-disposition"]
    assert declaration["number"] in text
    assert "Import goods declaration" in text
    assert "Yangtze Auto Import" in text and USCC["trader"] in text
    assert "Xiyong Customs" in text
    assert "87032361" in text and "Passenger car, 2.0 l petrol" in text
    for figure in CAR_FIGURES:
        assert figure in text
    assert "50,000.00" in text and "CIF USD" in text
    assert "agency hold" in text and "green" in text and "2025-06-03" in text


def test_the_declaration_prints_as_html_with_chinese_names_beside_the_english(client, cw, as_user):
    declaration = lodge(cw, filing("PR-2", ALUMINIUM, ICS))
    response = client.get(url(declaration, "declaration", "html"), headers=as_user("trader"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "@media print" in page and "size: A4 landscape" in page
    assert f'<span id="number">{declaration["number"]}</span>' in page
    assert "Yangtze Auto Import" in page and "测试贸易有限公司" in page and "西永海关" in page
    assert "Unwrought aluminium ingots" in page and "Processors" in page
    totals = declaration["assessment"]["totals"]
    assert f'id="total-due">{documents.money(totals["total"])}<' in page
    assert documents.money(totals["vat"]) in page and documents.money(totals["duty"]) in page


def test_a_declaration_lodged_by_a_broker_names_both_trader_and_broker(client, cw, as_user, authorised_broker):
    declaration = lodge(cw, filing("PR-3", ICS, trader_uscc=USCC["trader"]), who="broker")
    for who in ("broker", "trader"):
        text = pdf_text(client.get(url(declaration, "declaration"), headers=as_user(who)))
        assert "Yangtze Auto Import" in text and "Shancheng Brokerage" in text
        assert USCC["broker"] in text and USCC["trader"] in text


def test_a_description_no_embedded_font_can_print_falls_back_to_the_tariff_lines_english(client, cw, as_user):
    declaration = lodge(cw, filing("PR-4", {**ICS, "description": "प्रोसेसर"}))      # Devanagari
    text = pdf_text(client.get(url(declaration, "declaration"), headers=as_user("trader")))
    assert "Electronic integrated circuits: processors and controllers" in text
    html = client.get(url(declaration, "declaration", "html"), headers=as_user("trader")).text
    assert "प्रोसेसर" in html


def test_what_a_trader_typed_is_escaped_in_the_html(client, cw, as_user):
    declaration = lodge(cw, filing("PR-16", {**ICS, "description": "<script>alert(1)</script>"}))
    html = client.get(url(declaration, "declaration", "html"), headers=as_user("trader")).text
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_long_declaration_runs_over_pages(client, cw, as_user):
    items = [{**ICS, "description": f"Processor batch {n}"} for n in range(60)]
    declaration = lodge(cw, filing("PR-5", *items))
    response = client.get(url(declaration, "declaration"), headers=as_user("trader"))
    text = pdf_text(response)
    assert len(PdfReader(io.BytesIO(response.content)).pages) > 1
    assert "Processor batch 0" in text and "Processor batch 59" in text
    assert documents.money(declaration["total_due"]) in text


# --- the tax payment notice ----------------------------------------------------------------------

def test_the_tax_notice_lists_each_tax_kind_the_total_in_words_the_reference_and_the_due_date(
        client, cw, as_user):
    declaration = lodge(cw, filing("PR-6", CAR))
    text = pdf_text(client.get(url(declaration, "tax-notice"), headers=as_user("trader")))
    assert "Tax payment notice" in text and declaration["number"] in text
    assert "Yangtze Auto Import" in text and USCC["trader"] in text
    for label, figure in (("Customs duty", "53,858.25"), ("Import consumption tax", "56,306.35"),
                          ("Import VAT", "60,998.55"), ("Total due", "171,163.15")):
        assert label in text and figure in text
    assert ("One hundred and seventy-one thousand one hundred and sixty-three yuan and fifteen fen"
            in " ".join(text.split()))
    assert "Bank transfer reference" in text
    assert "2025-06-18" in text                  # 15 days after 2025-06-03, a Wednesday
    assert "Outstanding: CNY 171,163.15" in text

    html = client.get(url(declaration, "tax-notice", "html"), headers=as_user("trader")).text
    assert 'id="total-due">171,163.15<' in html and "2025-06-18" in html and "size: A4 portrait" in html


def test_after_payment_the_tax_notice_shows_the_payment_and_nothing_outstanding(client, cw, as_user):
    declaration = released_car(cw)
    text = pdf_text(client.get(url(declaration, "tax-notice"), headers=as_user("trader")))
    assert "BANK-CAR-1" in text
    assert "Settled: CNY 171,163.15 paid or guaranteed; nothing outstanding." in " ".join(text.split())


def test_the_tax_notice_of_a_cancelled_declaration_says_nothing_is_to_be_paid(client, cw, as_user):
    declaration = lodge(cw, filing("PR-15", ALUMINIUM))
    customs.cancel_declaration(cw.uow, cw["trader"], declaration["id"], "wrong consignment")
    text = " ".join(pdf_text(client.get(url(declaration, "tax-notice"), headers=as_user("trader"))).split())
    assert "The declaration is cancelled: nothing is to be paid." in text
    assert client.get(url(declaration, "release-note"), headers=as_user("trader")).status_code == 409


def test_the_due_date_moves_past_rest_days_and_holidays_to_the_next_working_day(client, cw, as_user):
    # Accepted on Tuesday 2025-09-16: 15 days later is 1 October, National Day; the holiday runs
    # to 8 October, so the last day to pay is Thursday 9 October.
    with clock_at(datetime(2025, 9, 16, 2, 0, tzinfo=UTC)):
        declaration = customs.lodge_declaration(cw.uow, cw["trader"], filing("PR-7", ALUMINIUM)).declaration
    html = client.get(url(declaration, "tax-notice", "html"), headers=as_user("trader")).text
    assert "2025-10-09" in html and "2025-10-01" not in html


def test_payment_due_date_is_fifteen_days_on_unless_that_is_no_working_day():
    calendar = WorkingCalendar(holidays=frozenset({date(2025, 10, 1)}),
                               make_up_workdays=frozenset({date(2025, 6, 21)}))
    assert documents.payment_due_date(date(2025, 6, 3), calendar) == date(2025, 6, 18)
    assert documents.payment_due_date(date(2025, 6, 6), calendar) == date(2025, 6, 21)   # a make-up Saturday
    assert documents.payment_due_date(date(2025, 6, 7), calendar) == date(2025, 6, 23)   # Sunday -> Monday
    assert documents.payment_due_date(date(2025, 9, 16), calendar) == date(2025, 10, 2)


def test_amounts_in_words():
    words = documents.amount_in_words
    assert words(Decimal("100")) == "One hundred yuan only"
    assert words(Decimal("0.05")) == "Zero yuan and five fen"
    assert words(Decimal("21.10")) == "Twenty-one yuan and ten fen"
    assert words(Decimal("1000005.99")) == "One million and five yuan and ninety-nine fen"
    assert words(Decimal("56012.30")) == "Fifty-six thousand and twelve yuan and thirty fen"


def test_no_tax_notice_when_nothing_is_due(client, cw, as_user, logged_in):
    declaration = lodge(cw, filing("PR-8", ICS, type="bonded_entry"))
    assert declaration["total_due"] == "0.00"
    for format in ("pdf", "html"):
        response = client.get(url(declaration, "tax-notice", format), headers=as_user("trader"))
        assert response.status_code == 409
        assert response.json()["errors"][0]["code"] == "nothing_due"
    logged_in("trader")
    page = client.get(f"/declarations/{declaration['id']}/print/tax-notice", headers=HTML)
    assert page.status_code == 409 and "nothing_due" in page.text


# --- the release note ----------------------------------------------------------------------------

def test_the_release_note_before_release_is_409_not_released(client, cw, as_user, logged_in):
    declaration = lodge(cw, filing("PR-9", ALUMINIUM))
    assert declaration["status"] == "taxes_due"
    response = client.get(url(declaration, "release-note"), headers=as_user("trader"))
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "not_released"
    logged_in("trader")
    page = client.get(f"/declarations/{declaration['id']}/print/release-note", headers=HTML)
    assert page.status_code == 409 and "not_released" in page.text


def test_the_release_note_gives_the_release_time_in_the_zone_and_releases_to_the_holder_of_record(
        client, cw, as_user):
    # Released automatically on lodging at 17:30 UTC, which is 01:30 the next day in Chongqing.
    with clock_at(datetime(2025, 6, 3, 17, 30, tzinfo=UTC)):
        declaration = customs.lodge_declaration(cw.uow, cw["trader"], filing(
            "PR-10", ICS, ALUMINIUM, type="bonded_entry", transport_document="CIM-CQ-DE-77")).declaration
    assert declaration["status"] == "released"
    text = " ".join(pdf_text(client.get(url(declaration, "release-note"), headers=as_user("trader"))).split())
    assert "Release note" in text and declaration["number"] in text
    assert "2025-06-04 01:30:00 (Asia/Shanghai)" in text
    assert "holder of record of transport document CIM-CQ-DE-77" in text
    assert "Processors" in text and "Unwrought aluminium ingots" in text
    assert "20,002" in text and "2 item(s)" in text            # net mass 2 + 20,000 kg

    html = client.get(url(declaration, "release-note", "html"), headers=as_user("trader")).text
    assert "2025-06-04 01:30:00 (Asia/Shanghai)" in html
    assert "are released to the holder of record of transport document CIM-CQ-DE-77." in html


def test_a_released_declaration_has_all_three_printouts_linked_from_its_page(client, cw, logged_in):
    declaration = released_car(cw)
    logged_in("trader")
    page = client.get(f"/declarations/{declaration['id']}", headers=HTML).text
    for kind in ("declaration", "tax-notice", "release-note"):
        assert f'href="/declarations/{declaration["id"]}/print/{kind}"' in page
        assert f'href="/api/v1/declarations/{declaration["id"]}/printouts/{kind}?format=pdf"' in page
        printed = client.get(f"/declarations/{declaration['id']}/print/{kind}", headers=HTML)
        assert printed.status_code == 200 and declaration["number"] in printed.text
        assert f'/api/v1/declarations/{declaration["id"]}/printouts/{kind}?format=pdf' in printed.text
        # The PDF link works with the session cookie of the page.
        assert client.get(f"/api/v1/declarations/{declaration['id']}/printouts/{kind}?format=pdf") \
            .content.startswith(b"%PDF-")


def test_a_declaration_not_yet_released_links_only_the_printouts_it_has(client, cw, logged_in):
    declaration = lodge(cw, filing("PR-11", ALUMINIUM))
    logged_in("trader")
    page = client.get(f"/declarations/{declaration['id']}", headers=HTML).text
    assert "/print/declaration" in page and "/print/tax-notice" in page
    assert "/print/release-note" not in page


# --- who may print -------------------------------------------------------------------------------

def test_another_trader_does_not_see_the_printouts(client, cw, as_user, logged_in):
    declaration = released_car(cw)
    for kind in documents.KINDS:
        for format in ("pdf", "html"):
            response = client.get(url(declaration, kind, format), headers=as_user("other_trader"))
            assert response.status_code == 404
            assert response.json()["errors"][0]["code"] == "not_found"
    logged_in("other_trader")
    assert client.get(f"/declarations/{declaration['id']}/print/declaration", headers=HTML).status_code == 404


def test_a_broker_sees_what_it_lodged_and_not_what_others_did(client, cw, as_user, authorised_broker):
    own = lodge(cw, filing("PR-12", ICS))
    assert client.get(url(own, "declaration"), headers=as_user("broker")).status_code == 200   # authorised
    registry.revoke_broker_authorisation(cw.uow, cw["trader"], authorised_broker["id"])
    assert client.get(url(own, "declaration"), headers=as_user("broker")).status_code == 404


def test_officers_print_any_declaration_and_other_roles_none(client, cw, as_user):
    declaration = released_car(cw)
    for officer in ("customs_officer", "quarantine_officer", "licensing_officer", "zone", "admin"):
        response = client.get(url(declaration, "release-note"), headers=as_user(officer))
        assert response.status_code == 200, (officer, response.text)
    response = client.get(url(declaration, "declaration"), headers=as_user("bank"))
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "role_not_allowed"
    assert client.get(url(declaration, "declaration")).status_code == 401


def test_an_unknown_kind_or_format_is_refused(client, cw, as_user, logged_in):
    declaration = lodge(cw, filing("PR-13", ICS))
    response = client.get(f"/api/v1/declarations/{declaration['id']}/printouts/invoice", headers=as_user("trader"))
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "invalid_choice"
    response = client.get(url(declaration, "declaration", "docx"), headers=as_user("trader"))
    assert response.status_code == 422
    logged_in("trader")
    assert client.get(f"/declarations/{declaration['id']}/print/invoice", headers=HTML).status_code == 404


def test_printouts_are_found_by_declaration_number_too(client, cw, as_user):
    declaration = lodge(cw, filing("PR-14", ICS))
    response = client.get(f"/api/v1/declarations/{declaration['number']}/printouts/declaration",
                          headers=as_user("trader"))
    assert declaration["number"] in pdf_text(response)


# --- Chinese in the PDF --------------------------------------------------------------------------

TRADER_ZH = "重庆扬子汽车进口有限公司（西永）"
BROKER_ZH = "山城报关有限公司"
# Full-width parentheses and comma, an ideographic space: the punctuation of a Chinese declaration.
DESCRIPTION_ZH = "中央处理器（多核），　集成电路"


def embedded_fonts(content: bytes) -> dict[str, TTFont]:
    """Every font the PDF uses, by name, read from the font file embedded in it."""
    fonts = {}
    for page in PdfReader(io.BytesIO(content)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            assert "/FontFile2" in descriptor, f"{font['/BaseFont']} is not embedded"
            fonts[font["/BaseFont"]] = TTFont(io.BytesIO(descriptor["/FontFile2"].get_data()))
    return fonts


def released_in_chinese(cw) -> dict:
    """Lodged by the broker for the trader, both with Chinese names, and released on payment."""
    for who, name_zh in (("trader", TRADER_ZH), ("broker", BROKER_ZH)):
        registry.update_enterprise(cw.uow, cw["zone"], cw.enterprises[who]["id"], {"name_zh": name_zh})
    with clock_at(LODGED):
        declaration = customs.lodge_declaration(cw.uow, cw["broker"], filing(
            "PR-ZH", {**ICS, "description": DESCRIPTION_ZH}, ALUMINIUM, trader_uscc=USCC["trader"])).declaration
        released = customs.record_payment(cw.uow, cw["trader"], declaration["id"], "payment", "BANK-ZH-1",
                                          Decimal(declaration["total_due"]))
    assert released["status"] == "released"
    return released


def test_chinese_names_and_descriptions_print_in_the_pdf_as_declared(client, cw, as_user, authorised_broker):
    declaration = released_in_chinese(cw)
    texts = {kind: pdf_text(client.get(url(declaration, kind), headers=as_user("trader"))) for kind in documents.KINDS}
    # A long name may wrap in its table cell; the reader sees it whole.
    joined = {kind: "".join(text.split()) for kind, text in texts.items()}
    assert "中央处理器（多核），" in texts["declaration"] and "集成电路" in texts["declaration"]
    assert "".join(DESCRIPTION_ZH.split()) in joined["declaration"]
    assert TRADER_ZH in joined["declaration"] and BROKER_ZH in joined["declaration"]
    assert "Yangtze Auto Import" in texts["declaration"] and "Shancheng Brokerage" in texts["declaration"]
    assert "8012 Xiyong Customs 西永海关" in texts["declaration"]
    assert TRADER_ZH in joined["tax-notice"]
    assert TRADER_ZH in joined["release-note"] and "".join(DESCRIPTION_ZH.split()) in joined["release-note"]
    assert "Unwrought aluminium ingots" in texts["release-note"]
    for text in texts.values():
        assert "?" not in text
    html = client.get(url(declaration, "release-note", "html"), headers=as_user("trader")).text
    assert TRADER_ZH in html and DESCRIPTION_ZH in html


def test_the_embedded_fonts_have_every_character_the_pdf_prints(client, cw, as_user, authorised_broker):
    declaration = released_in_chinese(cw)
    for kind in documents.KINDS:
        response = client.get(url(declaration, kind), headers=as_user("trader"))
        fonts = embedded_fonts(response.content)
        assert len(fonts) == 3          # Liberation Sans, its bold, Droid Sans Fallback: no core font
        covered = set().union(*(font.getBestCmap() for font in fonts.values()))
        printed = {ord(char) for char in pdf_text(response)} - {ord("\n")}
        assert {chr(code) for code in printed - covered} == set(), kind
        chinese = TRADER_ZH if kind == documents.TAX_NOTICE else TRADER_ZH + DESCRIPTION_ZH   # no descriptions
        assert {ord(char) for char in chinese} <= covered


def test_a_pdf_embeds_the_gb2312_subset_unless_a_character_needs_the_full_cjk_font():
    latin = documents.LATIN_FONTS
    subset, full = ((family, "", filename) for family, filename in documents.CJK_FONTS)
    assert documents.pdf_fonts(set("Yangtze Auto Import — 1,234.50 “CIF”")) == latin
    assert documents.pdf_fonts(set("西永海关 重庆扬子汽车进口有限公司（西永），　")) == (*latin, subset)
    assert documents.pdf_fonts(set("重庆鑫堃贸易有限公司")) == (*latin, full)        # 堃 is not in GB 2312
    assert documents.pdf_fonts(set("प्रोसेसर")) == latin                          # no font has Devanagari


def test_a_name_outside_gb2312_prints_from_the_full_cjk_font(client, cw, as_user):
    registry.update_enterprise(cw.uow, cw["zone"], cw.enterprises["trader"]["id"], {"name_zh": "重庆鑫堃贸易有限公司"})
    declaration = lodge(cw, filing("PR-18", {**ICS, "description": "处理器"}))
    response = client.get(url(declaration, "declaration"), headers=as_user("trader"))
    assert "重庆鑫堃贸易有限公司" in "".join(pdf_text(response).split())
    fonts = embedded_fonts(response.content)
    assert ord("堃") in set().union(*(font.getBestCmap() for font in fonts.values()))


def test_the_cjk_fonts_cover_gb2312_the_cjk_unified_ideographs_and_chinese_punctuation():
    gb2312 = set()
    for first in range(0xB0, 0xF8):              # rows 16-87: the 6,763 hanzi
        for second in range(0xA1, 0xFF):
            try:
                gb2312.add(ord(bytes((first, second)).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    assert len(gb2312) == 6763
    punctuation = {ord(char) for char in "，（）　、。：；「」【】《》？！"}
    subset, full = (documents.font_characters(filename) for _, filename in documents.CJK_FONTS)
    assert gb2312 | punctuation <= subset
    assert set(range(0x4E00, 0x9FA6)) | punctuation <= full       # every ideograph of Unicode 3.0 (GB 18030)
