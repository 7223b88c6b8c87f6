"""The web UI in headless chromium, against the app served on the test database: log in, the
dashboard, registering an enterprise with its inline validation errors, the htmx search, the login
redirect and the CSRF check."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD, USCC

pytestmark = pytest.mark.browser

WRONG_USCC = "91500115GG37HDHFEB"   # the trader's code with a wrong check character


def _log_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_zone_logs_in_registers_an_enterprise_sees_the_credit_code_error_and_logs_out(page, base_url):
    _log_in(page, base_url, "zone")
    page.wait_for_url(base_url + "/")
    assert page.locator("h1").inner_text() == "Good to see you, zone"
    assert page.locator(".card", has_text="Active enterprises").locator(".figure").inner_text() == "4"

    page.click("header nav >> text=Enterprises")
    page.wait_for_url(base_url + "/enterprises")
    page.click("text=Register an enterprise")
    page.fill("input[name=uscc]", USCC["spare"])
    page.fill("input[name=name_zh]", "重庆九龙铝业有限公司")
    page.fill("input[name=name_en]", "Jiulong Aluminium Co., Ltd.")
    page.select_option("select[name=sector]", "jiulongpo")
    page.click("button:has-text('Register')")
    page.wait_for_url(re.compile(r"/enterprises/[^/]+\?created=1$"))
    assert "Jiulong Aluminium Co., Ltd." in page.content()

    page.goto(base_url + "/enterprises")
    row = page.locator("#rows tr", has_text=USCC["spare"])
    assert "重庆九龙铝业有限公司" in row.inner_text()

    # A wrong credit code: the error stands next to the field, the other values are kept.
    page.goto(base_url + "/enterprises/new")
    page.fill("input[name=uscc]", WRONG_USCC)
    page.fill("input[name=name_en]", "Misprinted Trading Co.")
    page.fill("textarea[name=business_scope]", "Import of machine tools")
    page.select_option("select[name=sector]", "beibei")
    page.click("button:has-text('Register')")
    error = page.locator("#uscc-error")
    assert "check character does not match" in error.inner_text()
    assert page.locator("input[name=uscc]").get_attribute("aria-invalid") == "true"
    assert page.locator("label", has=page.locator("input[name=uscc]")).locator(".error").count() == 1
    assert page.input_value("input[name=uscc]") == WRONG_USCC
    assert page.input_value("input[name=name_en]") == "Misprinted Trading Co."
    assert page.input_value("textarea[name=business_scope]") == "Import of machine tools"
    assert page.input_value("select[name=sector]") == "beibei"
    page.goto(base_url + "/enterprises")
    assert page.locator("#rows", has_text="Misprinted").count() == 0

    page.click("button:has-text('Log out')")
    page.wait_for_url(re.compile(r"/login$"))
    page.goto(base_url + "/enterprises")
    page.wait_for_url(re.compile(r"/login\?next="))


def test_the_enterprise_search_filters_the_rows_as_one_types(page, base_url):
    _log_in(page, base_url, "zone")
    page.wait_for_url(base_url + "/")
    page.goto(base_url + "/enterprises")
    assert page.locator("#rows tbody tr").count() == 4
    with page.expect_response(lambda r: "/enterprises?" in r.url and r.request.headers.get("hx-request")):
        page.fill("input[name=q]", "Brokerage")
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length === 1")
    assert USCC["broker"] in page.locator("#rows tbody").inner_text()
    assert page.url == base_url + "/enterprises"          # rows swapped in place, no navigation
    with page.expect_response(lambda r: "/enterprises?" in r.url):
        page.fill("input[name=q]", "no such enterprise")
    page.wait_for_function("document.querySelector('#rows').innerText.includes('No enterprise matches')")


def test_a_page_without_login_redirects_to_the_login_page_and_back(page, base_url):
    page.goto(base_url + "/enterprises")
    page.wait_for_url(re.compile(r"/login\?next=/enterprises$"))
    page.fill("input[name=username]", "customs_officer")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/enterprises")


def test_a_wrong_password_shows_an_error_on_the_login_page(page, base_url):
    _log_in(page, base_url, "zone", "not the password")
    assert "Wrong username or password" in page.locator("[role=alert]").inner_text()
    assert page.input_value("input[name=username]") == "zone"


def test_a_form_posted_without_the_csrf_token_is_refused(page, base_url):
    _log_in(page, base_url, "zone")
    page.wait_for_url(base_url + "/")
    page.goto(base_url + "/enterprises/new")
    page.fill("input[name=uscc]", USCC["spare"])
    page.fill("input[name=name_en]", "Forged Co.")
    page.evaluate("document.querySelector('main form input[name=csrf_token]').remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Register')")
    assert posted.value.status == 403
    assert "did not come from this site" in page.content()
    page.goto(base_url + "/enterprises")
    assert page.locator("#rows", has_text="Forged").count() == 0
