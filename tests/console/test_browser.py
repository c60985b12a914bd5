"""The web console end to end: headless Chromium against a real gateway child process.

Every number the page shows comes from the public /v1 API; the test device
is the browser itself speaking the device protocol over WebSocket.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.harness import APP, OTHER_APP, ServerProcess

from .page import (
    Console,
    connect_test_device,
    details,
    push,
    received,
    to_second,
    wait_acked_in_page,
)

SECOND = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
SEED_NOTES = (
    "You can only search for Simple push, Template push, and Multiple push messages created "
    "in the last 30 days.",
    "Multiple push messages are not displayed by default, but you can search for them.",
    "Broadcast push messages are not displayed and cannot be searched for.",
)


# --- sign-in --------------------------------------------------------------------------


def test_a_wrong_key_shows_a_clear_error(console: Console) -> None:
    console.open()
    console.sign_in(APP.app_id, "not-the-key", ok=False)
    console.wait(lambda: console.visible("signin-error"), "the sign-in error")
    error = console.text("signin-error")
    assert "refused this API key" in error and "401" in error
    assert not console.visible("console")
    assert console.js("return sessionStorage.length") == 0

    # A real key, but of another app than the one typed.
    console.sign_in(APP.app_id, OTHER_APP.api_key, ok=False)
    console.wait(
        lambda: "belongs to app “app2”" in console.text("signin-error"), "the app mismatch error"
    )
    assert not console.visible("console")


def test_sign_in_is_kept_for_the_tab_session_only(console: Console) -> None:
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    assert console.text("session-app") == APP.app_id
    stored = console.js("return JSON.parse(sessionStorage.getItem('pushgate.console'))")
    assert stored == {"app_id": APP.app_id, "api_key": APP.api_key}
    assert console.js("return localStorage.length") == 0
    assert console.js("return document.cookie") == ""

    console.driver.refresh()  # same tab session: still signed in
    console.wait(lambda: console.visible("console"), "the console after a reload")

    console.by_id("sign-out").click()
    console.wait(lambda: console.visible("signin"), "the sign-in form after sign-out")
    assert console.js("return sessionStorage.length") == 0


# --- the message list -----------------------------------------------------------------


def test_pushes_appear_newest_first_with_the_seed_columns_and_details(
    console: Console, api: httpx.Client
) -> None:
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    android = push(api, "list-dev-a", title="Android hello", msg_key="list-key-a")
    user = push(api, "list-user-u", delivery_type="user", title="User hello")
    ios = push(api, "list-dev-i", delivery_type="ios", title="iOS hello", msg_key="list-key-i")

    console.refresh_until_row(ios["message_id"])
    ids = console.row_ids()
    assert ids.index(ios["message_id"]) < ids.index(user["message_id"])
    assert ids.index(user["message_id"]) < ids.index(android["message_id"])

    created = to_second(details(api, ios["message_id"])["created_at"])
    assert console.row_cells(ios["message_id"]) == [
        "",
        "list-key-i",
        "Device ID_iOS",
        "list-dev-i",
        "iOS hello",
        created,
    ]
    assert SECOND.match(created)
    assert console.row_cells(user["message_id"])[2:4] == ["User dimension", "list-user-u"]
    assert console.row_cells(android["message_id"])[1:3] == ["list-key-a", "Device ID_Android"]

    console.expand(android["message_id"])
    shown = console.wait_status(android["message_id"], 0)
    truth = details(api, android["message_id"])
    assert shown["terms"][:4] == ["Message ID", "Push status", "Expiry time", "Modification time"]
    assert shown["message_id"] == android["message_id"]
    assert shown["status_name"] == "DeviceNotOnlineOrNoResponse"
    assert truth["status_description"] in shown["status_text"]
    assert shown["expires_at"] == to_second(truth["expires_at"])
    assert shown["modified_at"] == to_second(truth["modified_at"])

    # A user with no bound device: NoBindInfo, and the deliveries say so.
    console.expand(user["message_id"])
    shown = console.wait_status(user["message_id"], 1)
    assert shown["status_name"] == "NoBindInfo"
    assert "No bound device yet." in shown["text"]


def test_load_more_pages_through_next_cursor(console: Console, api: httpx.Client) -> None:
    pushed = [push(api, f"page-dev-{i}", title=f"page {i}")["message_id"] for i in range(25)]
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    console.wait(lambda: console.row(pushed[-1]), "the newest push")
    first_page = console.row_ids()
    assert len(first_page) == 20 and pushed[4] not in first_page
    assert console.visible("load-more")
    console.by_id("load-more").click()
    console.wait(lambda: console.row(pushed[0]), "the older pushes after 'Load more'")
    ids = console.row_ids()
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i in pushed] == pushed[::-1]


# --- the test device --------------------------------------------------------------------


def test_the_in_page_device_receives_acks_and_the_expanded_row_turns_acked(
    console: Console, api: httpx.Client, server: ServerProcess
) -> None:
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    waiting = push(api, "browser-dev-1", title="Waiting for the browser", msg_key="wait-1")
    console.refresh_until_row(waiting["message_id"])
    console.expand(waiting["message_id"])
    console.wait_status(waiting["message_id"], 0)

    console.tab("test")
    assert console.by_id("dev-ws").get_attribute("value") == server.ws_url
    connect_test_device(console, "browser-dev-1")
    item = wait_acked_in_page(console, waiting["message_id"])  # the backlog, on connect
    assert "Waiting for the browser" in item["text"] and "wait-1" in item["text"]
    console.wait(lambda: int(console.text("stat-online")) >= 1, "a device online")

    # The "send a test push" form, aimed at the test device.
    console.by_id("push-use-device").click()
    assert console.by_id("push-target").get_attribute("value") == "browser-dev-1"
    console.fill("push-title", "From the form")
    console.fill("push-key", "form-key-1")
    console.by_id("push-send").click()
    result = console.wait(
        lambda: console.by_id("push-result").find_elements(By.CSS_SELECTOR, "[data-field]"),
        "the push answer",
    )
    sent = {e.get_attribute("data-field"): e.text for e in result}
    assert sent["msg_key"] == "form-key-1" and sent["status"] == "0"
    wait_acked_in_page(console, sent["message_id"])

    console.tab("messages")
    shown = console.wait_status(waiting["message_id"], 2)
    assert shown["status_name"] == "Acked"
    assert details(api, sent["message_id"])["status"] == 2
    console.wait(lambda: console.row(sent["message_id"]), "the form's push in the list")
    assert console.text("stat-acked") != "–"

    console.tab("test")
    console.by_id("dev-disconnect").click()
    console.wait(
        lambda: console.by_id("dev-state").get_attribute("data-state") == "disconnected",
        "the test device disconnected",
    )


def test_the_test_device_binds_to_a_user_and_acks_its_push(
    console: Console, api: httpx.Client
) -> None:
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    connect_test_device(console, "browser-dev-2", platform="ios")
    console.fill("dev-user", "browser-user-2")
    console.by_id("dev-bind").click()
    console.wait(
        lambda: "bound to user browser-user-2" in console.text("dev-state"), "the bind answer"
    )
    sent = push(api, "browser-user-2", delivery_type="user", title="For the user")
    wait_acked_in_page(console, sent["message_id"])

    console.tab("messages")
    console.refresh_until_row(sent["message_id"])
    console.expand(sent["message_id"])
    shown = console.wait_status(sent["message_id"], 2)
    assert shown["deliveries"] == [{"device_id": "browser-dev-2", "status": 2}]

    console.tab("test")
    console.by_id("dev-unbind").click()
    console.wait(lambda: "not bound" in console.text("dev-state"), "the unbind answer")
    console.by_id("dev-disconnect").click()


def test_a_wrong_secret_is_refused_with_the_gateways_error(console: Console) -> None:
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    console.tab("test")
    console.fill("dev-id", "browser-dev-3")
    console.fill("dev-secret", "not-the-secret")
    console.by_id("dev-connect").click()
    console.wait(
        lambda: console.by_id("dev-state").get_attribute("data-state") == "error",
        "the refused hello",
    )
    assert "auth_failed" in console.text("dev-state")


# --- search ---------------------------------------------------------------------------------


def test_search_finds_a_multiple_push_that_the_list_hides(
    console: Console, api: httpx.Client
) -> None:
    multiple = api.post(
        "/v1/push/multiple",
        json={
            "delivery_type": "android",
            "title": "Many",
            "content": "at once",
            "targets": [
                {"target_id": "multi-dev-1", "msg_key": "multi-key-1"},
                {"target_id": "multi-dev-2", "msg_key": "multi-key-2"},
            ],
        },
    )
    assert multiple.status_code == 200, multiple.text
    multi_ids = [m["message_id"] for m in multiple.json()["messages"]]
    broadcast = api.post(
        "/v1/push/broadcast", json={"title": "All", "content": "devices", "msg_key": "bc-key-1"}
    )
    assert broadcast.status_code == 200, broadcast.text
    newest = push(api, "search-dev", title="After the multiple push")

    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    console.wait(lambda: console.row(newest["message_id"]), "the newest simple push")
    hidden = set(multi_ids) | {broadcast.json()["message_id"]}
    assert hidden.isdisjoint(console.row_ids())
    notes = console.text("search-notes")
    assert all(note in " ".join(notes.split()) for note in SEED_NOTES)

    # Enter in the search box.
    console.fill("search-target", "multi-dev-2")
    console.fill("search-key", "multi-key-2")
    console.by_id("search-key").send_keys(Keys.ENTER)
    console.wait(lambda: console.row_ids() == [multi_ids[1]], "the one search result")
    cells = console.row_cells(multi_ids[1])
    assert cells[1] == "multi-key-2 multiple push"
    assert cells[3] == "multi-dev-2"
    assert "Search result" in console.text("search-summary")
    assert console.wait_status(multi_ids[1], 0)["message_id"] == multi_ids[1]

    # The search icon; a target with another message's key finds nothing.
    console.fill("search-target", "multi-dev-1")
    console.fill("search-key", "multi-key-2")
    console.by_id("search-submit").click()
    console.wait(lambda: "No message" in console.text("search-summary"), "the empty result")
    assert console.row_ids() == []

    # A broadcast is never found.
    console.fill("search-target", "search-dev")
    console.fill("search-key", "bc-key-1")
    console.by_id("search-submit").click()
    console.wait(lambda: "“bc-key-1”" in console.text("search-summary"), "the broadcast search")
    assert "No message" in console.text("search-summary") and console.row_ids() == []

    console.by_id("search-clear").click()
    console.wait(lambda: console.row(newest["message_id"]), "the list again")
    assert hidden.isdisjoint(console.row_ids())


# --- status codes ---------------------------------------------------------------------------


def test_the_status_code_reference_shows_the_catalog_by_channel(
    console: Console, api: httpx.Client
) -> None:
    catalog = api.get("/v1/status-codes").json()["items"]
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    console.tab("codes")

    def rows() -> list[tuple[str, int, str, str]]:
        found: list[list[Any]] = console.js(
            "return [...document.querySelectorAll('#codes-body tr')].map(r => "
            "[r.dataset.channel, Number(r.dataset.code), r.cells[2].textContent, "
            "r.cells[3].textContent])"
        )
        return [(c, int(code), name, desc) for c, code, name, desc in found]

    console.wait(lambda: len(rows()) == len(catalog), "every row of the catalog")
    assert rows() == [
        (c["channel"], c["code"], c["name"] or "—", c["description"]) for c in catalog
    ]

    channels = list(dict.fromkeys(c["channel"] for c in catalog))
    options = console.js(
        "return [...document.querySelectorAll('#codes-channel option')].map(o => o.value)"
    )
    assert options == ["", *channels]
    for channel in channels:
        console.select("codes-channel", channel)
        expected = [c["code"] for c in catalog if c["channel"] == channel]
        assert [code for _, code, _, _ in rows()] == expected, channel
    console.select("codes-channel", "common")
    assert [code for _, code, _, _ in rows()] == [-1, 0, 1, 2, 99999999]
    console.fill("codes-filter", "Acked")
    assert [(c, code) for c, code, _, _ in rows()] == [("common", 2)]
    assert console.text("codes-count") == f"1 of {len(catalog)} codes"


# --- accessibility -------------------------------------------------------


def test_every_control_has_an_accessible_name(console: Console, api: httpx.Client) -> None:
    console.open()
    unlabelled_js = """
        const name = (el) => (el.getAttribute('aria-label') || '').trim()
          || [...(el.labels || [])].map(l => l.textContent.trim()).join(' ')
          || (el.tagName === 'BUTTON' ? el.textContent.trim() : '');
        return [...document.querySelectorAll('input, select, textarea, button')]
          .filter(el => !name(el)).map(el => el.outerHTML.slice(0, 120));
    """
    assert console.js(unlabelled_js) == []
    console.sign_in(APP.app_id, APP.api_key)
    sent = push(api, "a11y-dev", title="Labels")
    console.refresh_until_row(sent["message_id"])
    console.expand(sent["message_id"])
    connect_test_device(console, "a11y-dev")
    wait_acked_in_page(console, sent["message_id"])
    console.by_id("dev-autoack").click()  # off: the next push shows its own Ack button
    second = push(api, "a11y-dev", title="Ack me by hand")
    console.wait(lambda: received(console, second["message_id"]), "the second push")
    assert console.js(unlabelled_js) == []
    button = console.driver.find_element(
        By.CSS_SELECTOR, f'li[data-id="{second["message_id"]}"] button'
    )
    assert button.get_attribute("aria-label") == f"Acknowledge push {second['msg_key']}"
    button.click()
    wait_acked_in_page(console, second["message_id"])
    console.by_id("dev-autoack").click()
    console.by_id("dev-disconnect").click()
