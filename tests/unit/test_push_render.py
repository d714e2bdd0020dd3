"""What each push service would be sent for an Ably push payload (channel_relay.push.render)."""

from __future__ import annotations

from channel_relay.push.render import render

PAYLOAD = {
    "notification": {
        "title": "Hi",
        "body": "There",
        "icon": "i.png",
        "sound": "ding",
        "collapseKey": "k",
    },
    "data": {"id": "7"},
}


def test_apns_gets_aps_alert_sound_custom_keys_and_the_collapse_header() -> None:
    assert render("apns", PAYLOAD) == {
        "id": "7",
        "aps": {"alert": {"title": "Hi", "body": "There"}, "sound": "ding"},
        "headers": {"apns-collapse-id": "k"},
    }


def test_fcm_and_its_old_name_gcm_get_notification_data_and_collapse_key() -> None:
    expected = {
        "notification": {"title": "Hi", "body": "There", "icon": "i.png", "sound": "ding"},
        "data": {"id": "7"},
        "collapse_key": "k",
    }
    assert render("fcm", PAYLOAD) == render("gcm", PAYLOAD) == expected


def test_web_drops_sound_and_collapse_key() -> None:
    assert render("web", PAYLOAD) == {
        "notification": {"title": "Hi", "body": "There", "icon": "i.png"},
        "data": {"id": "7"},
    }


def test_a_services_own_object_extends_and_overrides_what_is_mapped() -> None:
    payload = {**PAYLOAD, "apns": {"aps": {"badge": 3, "sound": "other"}}}
    aps = render("apns", payload)["aps"]
    assert aps == {"alert": {"title": "Hi", "body": "There"}, "sound": "other", "badge": 3}


def test_ably_channel_devices_get_the_payload_itself() -> None:
    assert render("ablyChannel", PAYLOAD) == PAYLOAD
