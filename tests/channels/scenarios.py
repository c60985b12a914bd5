"""How to make each vendor answer each code of its table in the seeds: one
entry per (vendor, code), programming that vendor's stand-in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .envs import VendorEnv
from .standins.apns import ApnsReply
from .standins.fcm import fcm_error
from .standins.huawei import huawei_code, nsp_status
from .standins.oppo import oppo_code
from .standins.raw import closed_port
from .standins.vivo import vivo_code
from .standins.xiaomi import mi_code


@dataclass(frozen=True)
class Scenario:
    prepare: Callable[[VendorEnv], None] = lambda env: None
    endpoint: Callable[[], str] | None = None  # point the channel elsewhere than the stand-in


def _answer(reply: object) -> Scenario:
    def prepare(env: VendorEnv) -> None:
        env.standin.answers[env.token] = reply

    return Scenario(prepare)


def _auth_answer(reply: object) -> Scenario:
    def prepare(env: VendorEnv) -> None:
        env.standin.auth_answer = reply

    return Scenario(prepare)


def _illegal_token(env: VendorEnv) -> None:
    env.standin.illegal_tokens.add(env.token)


APNS_REASONS = {
    2001: (400, "PayloadEmpty"),
    2002: (413, "PayloadTooLarge"),
    2003: (400, "BadTopic"),
    2004: (400, "TopicDisallowed"),
    2005: (400, "BadMessageId"),
    2006: (400, "BadExpirationDate"),
    2007: (400, "BadPriority"),
    2008: (400, "MissingDeviceToken"),
    2009: (400, "BadDeviceToken"),
    2010: (400, "DeviceTokenNotForTopic"),
    2011: (410, "Unregistered"),
    2013: (403, "BadCertificateEnvironment"),
    2014: (403, "BadCertificate"),
    2023: (400, "MissingTopic"),
}

SCENARIOS: dict[tuple[str, int], Scenario] = {
    **{
        ("apns", code): _answer(ApnsReply(status, reason))
        for code, (status, reason) in APNS_REASONS.items()
    },
    ("apns", 2024): _answer(ApnsReply(action="reset")),
    ("apns", 2025): Scenario(endpoint=lambda: f"https://127.0.0.1:{closed_port()}"),
    ("fcm", 90000002): _answer(
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            "message.token",
        )
    ),
    ("fcm", 90000003): _answer(fcm_error(404, "UNREGISTERED", "Requested entity was not found.")),
    ("fcm", 90000004): _answer(
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid package name",
            "message.android.restricted_package_name",
        )
    ),
    ("fcm", 90000007): _answer(fcm_error(400, "INVALID_ARGUMENT", "Message is too big")),
    ("fcm", 90000009): _answer(
        fcm_error(
            400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl'", "message.android.ttl"
        )
    ),
    ("fcm", 90000011): _answer(fcm_error(503, "UNAVAILABLE", "The service is unavailable.")),
    ("fcm", 90000401): _answer(fcm_error(401, "THIRD_PARTY_AUTH_ERROR", "APNs auth failed")),
    # Huawei: the legacy API's codes arrive in the NSP_STATUS header, v1's in the body.
    **{
        ("huawei", code): _answer(nsp_status(code))
        for code in (100, 101, 102, 106, 107, 109, 110, 111)
    },
    **{
        ("huawei", code): _answer(huawei_code(code))
        for code in (
            80000003,
            80000004,
            80000005,
            80000006,
            80000007,
            80000008,
            80100002,
            80100003,
            80100004,
            80300002,
            80300007,
            80300008,
            81000001,
        )
    },
    ("huawei", 80100000): Scenario(_illegal_token),
    **{
        ("xiaomi", code): _answer(mi_code(code))
        for code in (
            1001,
            10002,
            10003,
            10004,
            10005,
            10008,
            10009,
            10012,
            10013,
            10014,
            10017,
            10018,
            10022,
            10023,
            10024,
            10026,
            10027,
            10029,
            21301,
            22000,
            22001,
            22002,
            22003,
            22004,
            22005,
            22006,
            22007,
            22008,
            22020,
            22021,
            22022,
            22100,
            22101,
            22102,
            22103,
            20301,
        )
    },
    # OPPO: signature and app-key errors come from the auth call, the rest from the send.
    **{("oppo", code): _auth_answer(oppo_code(code)) for code in (14, 15, 16, 17, 28)},
    **{("oppo", code): _answer(oppo_code(code)) for code in (-1, -2, 11, 13, 29, 30, 10000)},
    ("vivo", 10000): _auth_answer(vivo_code(10000, "鉴权失败")),
    **{
        ("vivo", code): _answer(vivo_code(code))
        for code in (
            10040,
            10050,
            10055,
            10056,
            10058,
            10066,
            10067,
            10070,
            10071,
            10072,
            10101,
            10102,
            10103,
            10104,
            10110,
            10303,
        )
    },
    ("vivo", 10302): _answer(vivo_code(10302, "regId不合法", invalidUser={"status": 2})),
}
