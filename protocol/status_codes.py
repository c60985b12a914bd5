"""The status-code catalog: the common codes of a message and the codes each
vendor channel reports (CONTRACT.md section 2; the tables of seed 001, which
stands where it disagrees with seed 000). Data only: no I/O.

Every row is a `StatusCode(channel, code, name, description)`:

- `channel` is a stable lowercase identifier: ``common`` (the codes a message
  or delivery can hold), then one per vendor channel: ``apns`` (Apple Push),
  ``huawei`` (Huawei Push), ``xiaomi`` (MiPush), ``oppo`` (OPPO Push),
  ``vivo`` (vivo Push), ``fcm`` (FCM).
- `code` is the number of the seed's "Status code" column.
- `name` is the seed's "Message" column. The Huawei, MiPush and vivo tables
  have no such column, so their rows have ``name == ""``: no name is invented;
  the description carries the meaning.
- `description` is the seed's text verbatim, typos included ("Invaid",
  "Ilegal", "occured", ...), so what the API serves is exactly what the seed
  says. Apple 2024's description spans two lines in the seed (its list of
  reasons is missing there); the lines are joined with one space.

Codes collide across channels (OPPO -1 and common -1, OPPO 10000 and vivo
10000), so a code is only meaningful with its channel: `lookup(code, channel)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One row of a status-code table."""

    channel: str
    code: int
    name: str
    description: str


class Status(IntEnum):
    """The common codes: the status of a message or of one of its deliveries."""

    WAITING_FOR_VERIFY = -1
    DEVICE_NOT_ONLINE_OR_NO_RESPONSE = 0
    NO_BIND_INFO = 1
    ACKED = 2
    NONE = 99999999


# (channel, ((code, name, description), ...)), in the seed's order.
_TABLES: tuple[tuple[str, tuple[tuple[int, str, str], ...]], ...] = (
    (
        "common",
        (
            (-1, "WaitingForVerify", "Waiting for verification."),
            (
                0,
                "DeviceNotOnlineOrNoResponse",
                "Waiting for the device to go online (the persistent connection between the "
                "target device and the message push gateway is closed) or waiting for delivery "
                "confirmation.",
            ),
            (
                1,
                "NoBindInfo",
                "There is no binding relationship. When you push a message based on the user ID, "
                "make sure that the target user ID has been bound with a device ID.",
            ),
            (
                2,
                "Acked",
                "When you use an MPS self-built channel to push a message, this status indicates "
                "that the message has been successfully pushed to the client. When you use a "
                "vendor push channel to push a message, this status indicates that the vendor’s "
                "push gateway has been successfully called.",
            ),
            (99999999, "NONE", "Unknown status."),
        ),
    ),
    (
        "apns",
        (
            (2001, "PayloadEmpty", "The message payload is empty."),
            (2002, "PayloadTooLarge", "The message payload is too large."),
            (2003, "BadTopic", "Incorrect bundleid in the certificate."),
            (2004, "TopicDisallowed", "Illegal bundleid in the certificate."),
            (2005, "BadMessageId", "Incorrect messageId."),
            (2006, "BadExpirationDate", "Invalid expiration date."),
            (2007, "BadPriority", "Invalid priority."),
            (2008, "MissingDeviceToken", "Device token missed."),
            (
                2009,
                "BadDeviceToken",
                "The device token is invalid or in incorrect format, or it does not exist. When "
                "you push a message based on the user dimension and receive this status code, you "
                "need to check whether the token used for binding is correct or not. We recommend "
                "that you create a simple push message in the MPS console as a test after "
                "completing the binding. In the development environment (the console is "
                "configured with a development environment certificate), you need to use your "
                "personal development certificate to package the app for testing. Otherwise, "
                "BadDeviceToken will appear.",
            ),
            (2010, "DeviceTokenNotForTopic", "The device token doesn't match the specified topic."),
            (2011, "Unregistered", "Invalid token."),
            (
                2013,
                "BadCertificateEnvironment",
                "The client certificate is for the wrong environment.",
            ),
            (2014, "BadCertificate", "The certificate is invalid."),
            (2023, "MissingTopic", "No topic is specified."),
            (
                2024,
                "ConnClosed",
                "APNS disconnected. This status may caused by the following reasons: For more "
                "information about how to configure the iOS push certificate, environment and "
                "BundleId in the console, see Configure iOS push channel.",
            ),
            (2025, "ConnUnavailable", "APNS connection is unavailable."),
        ),
    ),
    (
        "huawei",
        (
            (100, "", "Invalid unknown parameter."),
            (101, "", "Invaid API_KEY."),
            (102, "", "Invaid SESSION_KEY."),
            (106, "", "The app or session has no permission to call the current service."),
            (
                107,
                "",
                "Obtain the client and secret again (e.g., in case of an updated algorithm).",
            ),
            (109, "", "Excessive nsp_ts difference"),
            (110, "", "Interface internal exception."),
            (111, "", "Server is busy."),
            (80000003, "", "Terminal is not online."),
            (80000004, "", "The app has been uninstalled."),
            (80000005, "", "Response timed out."),
            (
                80000006,
                "",
                "No routing. No connection has been established between the terminal and Push.",
            ),
            (
                80000007,
                "",
                "The terminal is in other region, and doesn't use Push in Chinese mainland.",
            ),
            (
                80000008,
                "",
                "Incorrect routing. It may because that the terminal has switched the Push server.",
            ),
            (80100000, "", "Some parameters are incorrect."),
            (80100002, "", "Ilegal token list."),
            (80100003, "", "Ilegal payload."),
            (80100004, "", "Invalid timeout period."),
            (80300002, "", "No permission to send messages to the tokens listed in the parameter."),
            (80300007, "", "All tokens in the request are illegal tokens."),
            (81000001, "", "Internal error."),
            (80300008, "", "Authentication error (the request message body is too large)."),
        ),
    ),
    (
        "xiaomi",
        (
            (1001, "", "System error."),
            (10002, "", "Service suspended."),
            (10003, "", "Error in remote service."),
            (10004, "", "Cannot request this resource due to IP restriction."),
            (10005, "", "This resource requires authorized appkey."),
            (10008, "", "Incorrect parameters."),
            (10009, "", "The system is busy."),
            (10012, "", "Ilegal request."),
            (10013, "", "Ilegal user."),
            (10014, "", "Access to the app interface is restricted."),
            (10017, "", "Ilegal parameter value."),
            (10018, "", "The request exceeds the length limit."),
            (10022, "", "Requests to the IP exceed the frequency limit."),
            (10023, "", "User's requests exceed the frequency limit."),
            (10024, "", "User's requests for special interface exceed the frequency limit."),
            (10026, "", "The app is in the blacklist, and cannot call any APIs."),
            (10027, "", "The app API is called too frequently."),
            (10029, "", "Illegal device."),
            (21301, "", "Authentication failed."),
            (22000, "", "Illegal app."),
            (22001, "", "The app doesn't exist."),
            (22002, "", "The app has been revocated."),
            (22003, "", "Failed to update the app."),
            (22004, "", "App information missed."),
            (22005, "", "Invalid app name."),
            (22006, "", "Invalid app ID."),
            (22007, "", "Invalid app Key."),
            (22008, "", "Invalid app Secret ."),
            (22020, "", "Illegal app description."),
            (22021, "", "The app hasn't been authorized by users."),
            (22022, "", "Invalid app package name."),
            (22100, "", "Incorrect data format for the app notification."),
            (22101, "", "Too many app notifications."),
            (22102, "", "Failed to send the app notification."),
            (22103, "", "Invalid app notification ID."),
            (20301, "", "Invalid target."),
        ),
    ),
    (
        "oppo",
        (
            (
                -1,
                "Service Currently Unavailable",
                "The service is unavailable, please try again later.",
            ),
            (-2, "Service in Flow Control", "The service is under traffic control."),
            (11, "Invalid Auth Token", "Invalid AuthToken."),
            (
                13,
                "App Call Limited",
                "App calling counts exceed limit, including the calling frequency limit.",
            ),
            (14, "Invalid App Key", "Invalid AppKey."),
            (15, "Missing App Key", "AppKey missed."),
            (16, "Invalid Signature", "Invalid signature. Failed to pass signature verification."),
            (17, "Missing Signature17", "Signature missed. Failed to pass signature verification."),
            (28, "App Disabled", "The app is unavailable."),
            (29, "Missing Auth Token", "AuthToken missed."),
            (30, "Api Permission Denied", "The app has no permission to perform API push."),
            (10000, "Invalid RegistrationId", "registration_id is in incorrect format."),
        ),
    ),
    (
        "vivo",
        (
            (10000, "", "Permission authentication failed."),
            (10040, "", "The resource has reached the upper limit, please try again later."),
            (10050, "", "Both alias and regId cannot be empty."),
            (10055, "", "The title cannot be empty."),
            (10056, "", "The title cannot exceed 40 characters in length."),
            (10058, "", "The content cannot exceed 100 characters in length."),
            (10066, "", "The number of custom key/value pairs cannot exceed 10."),
            (10067, "", "Invalid custom key/value pair."),
            (10070, "", "The total number of messages sent exceeds the limit."),
            (10071, "", "The sending time is out of the allowable time range."),
            (10072, "", "Message push is too fast, please try again later."),
            (10101, "", "The message content is unapproved."),
            (10102, "", "Unknown exception occured in vivo server."),
            (10103, "", "Pushed content contains sensitive information."),
            (10110, "", "Please set the frequency of sending commercial messages."),
            (10302, "", "Invalid regId."),
            (10303, "", "requestId already exists."),
            (
                10104,
                "",
                "Please send a formal message. Please check the content, and do not send test "
                "text. The content in a formal message should not be numbers only, letters only, "
                'symbols plus numbers, and cannot contain "test", braces, and square brackets.',
            ),
        ),
    ),
    (
        "fcm",
        (
            (90000002, "InvalidRegistration", "Invalid target."),
            (90000003, "NotRegistered", "The target is unregistered."),
            (90000004, "InvalidPackageName", "Invalid package name."),
            (90000007, "MessageTooBig", "Message body is too large."),
            (90000009, "InvalidTtl", "Invalid offline time-to-live."),
            (90000011, "InternalServerError", "FCM service exception"),
            (90000401, "Authentication", "Failed to pass permission verification."),
        ),
    ),
)

CATALOG: tuple[StatusCode, ...] = tuple(
    StatusCode(channel, code, name, description)
    for channel, rows in _TABLES
    for code, name, description in rows
)

_CHANNELS: tuple[str, ...] = tuple(channel for channel, _ in _TABLES)
_BY_KEY: dict[tuple[str, int], StatusCode] = {(s.channel, s.code): s for s in CATALOG}


def lookup(code: int, channel: str = "common") -> StatusCode | None:
    """The row for `code` in `channel`'s table, or None if that table has no such code."""
    return _BY_KEY.get((channel, code))


def channels() -> tuple[str, ...]:
    """The channel identifiers, ``"common"`` first, in the seed's order."""
    return _CHANNELS
