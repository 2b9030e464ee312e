"""TikTok's request signature, checked against the worked example TikTok publishes, so the
profile and the sandbox cannot agree on a wrong algorithm."""

from __future__ import annotations

import hashlib
import hmac

from invsync.marketplaces import tiktok as tt


def test_the_published_worked_example() -> None:
    params = {"app_key": "29a39d", "timestamp": "1623812664"}
    signed = tt.sign("e59af819cc", "/authorization/202309/shops", params)
    assert signed == "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"


def test_sign_and_access_token_stay_out_and_the_order_of_the_query_does_not_matter() -> None:
    path = "/authorization/202309/shops"
    base = {"timestamp": "1623812664", "app_key": "29a39d"}
    noisy = {**base, "sign": "anything", "access_token": "TTP_x"}
    assert tt.sign("e59af819cc", path, noisy) == tt.sign("e59af819cc", path, base)


def test_the_body_follows_the_sorted_query_as_the_example_of_update_shop_webhook_shows() -> None:
    # The guide's second example: the base string of Update Shop Webhook, body included.
    path = "/event/202309/webhooks"
    params = {
        "app_key": "68xu9ks5p4i8",
        "shop_cipher": "ROW_xkMbgAAAeVAQra0eZWebFQq5aIK",
        "timestamp": "1696909648",
    }
    body = b'{    "address":"https://partner.tiktokshop.com",    "event_type": "PACKAGE_UPDATE"}'
    documented = (
        "/event/202309/webhooksapp_key68xu9ks5p4i8shop_cipherROW_xkMbgAAAeVAQra0eZWebFQq5aIK"
        "timestamp1696909648" + body.decode()
    )
    wrapped = ("e59af819cc" + documented + "e59af819cc").encode()
    expected = hmac.new(b"e59af819cc", wrapped, hashlib.sha256).hexdigest()
    assert tt.sign("e59af819cc", path, params, body) == expected
    assert tt.sign("e59af819cc", path, params, body + b" ") != expected
