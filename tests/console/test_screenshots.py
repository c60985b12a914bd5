"""Screenshots of the console on a laptop and a phone, against a gateway of its own.

A fresh gateway (this module's `server`) holds only the pushes made here, so
the pictures show a plausible app. They land in artifacts/console/; the list
and the expanded row also refresh docs/ (see Console.screenshot).
"""

from __future__ import annotations

import httpx

from tests.harness import APP

from .page import LAPTOP, PHONE, Console, connect_test_device, push, wait_acked_in_page

PUSHES = [
    ("iphone-15", "ios", "Your parcel is on its way", "order-1042-shipped"),
    ("bob", "user", "Weekly summary is ready", "summary-2026-47-bob"),
    ("pixel-7", "android", "Battery saver tips", "tips-3"),
    ("galaxy-s24", "android", "Flash sale starts at noon", "promo-noon-17"),
    ("alice", "user", "Your verification code is 314159", "otp-alice-0007"),
]


def test_screenshots_on_a_laptop_and_a_phone(console: Console, api: httpx.Client) -> None:
    console.open()
    console.sign_in(APP.app_id, APP.api_key)
    connect_test_device(console, "pixel-7", platform="android")
    console.fill("dev-user", "alice")
    console.by_id("dev-bind").click()
    console.wait(lambda: "bound to user alice" in console.text("dev-state"), "the bind")
    for target, kind, title, key in PUSHES:
        sent = push(api, target, delivery_type=kind, title=title, content=title, msg_key=key)
        if target in ("pixel-7", "alice"):
            wait_acked_in_page(console, sent["message_id"])

    console.wait(lambda: console.text("stat-today") == str(len(PUSHES)), "pushes today")
    console.wait(lambda: console.text("stat-acked") == "40.0%", "the acked share")
    console.set_window((LAPTOP[0], 1000))
    console.js("window.scrollTo(0, 0)")
    console.screenshot("laptop-test-device")
    console.tab("codes")
    console.wait(lambda: console.text("codes-count"), "the status codes")
    console.screenshot("laptop-status-codes")

    console.set_window(LAPTOP)
    console.tab("messages")
    console.refresh_until_row(sent["message_id"])
    console.js("window.scrollTo(0, 0)")
    console.screenshot("laptop-list", docs_name="console-list.png")
    console.expand(sent["message_id"])
    console.wait_status(sent["message_id"], 2)
    console.set_window((LAPTOP[0], 1000))
    console.js("window.scrollTo(0, 0)")
    console.screenshot("laptop-details", docs_name="console-details.png")

    console.set_window(PHONE)
    try:
        console.js("window.scrollTo(0, 0)")
        assert console.horizontal_overflow() <= 0
        console.screenshot("phone-list")
        row = console.row(sent["message_id"])
        assert row is not None
        console.js("arguments[0].scrollIntoView()", row)
        assert console.wait_status(sent["message_id"], 2)["status_name"] == "Acked"
        assert console.horizontal_overflow() <= 0
        console.screenshot("phone-details")
        console.tab("test")
        console.js("window.scrollTo(0, 0)")
        assert console.horizontal_overflow() <= 0
        console.screenshot("phone-test-device")
        console.tab("codes")
        assert console.horizontal_overflow() <= 0
        console.screenshot("phone-status-codes")
    finally:
        console.set_window(LAPTOP)
    console.tab("test")
    console.by_id("dev-disconnect").click()
