"""TikTok Shop Partner API (202309): what the gateway profile and the sandbox both rely on.

Sources (checked 2026-12-05):
- [SIGN] partner.tiktokshop.com/docv2/page/sign-your-api-request: the query parameters
  except `sign` and `access_token`, sorted by key, concatenated as `{key}{value}` after
  the request path, then the body (unless multipart), wrapped in the app secret and
  HMAC-SHA256'd with it, lowercase hex. Worked example: secret `e59af819cc`, path
  `/authorization/202309/shops`, `app_key=29a39d`, `timestamp=1623812664` gives
  `b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8`. The timestamp is a
  10-digit Unix time within 5 minutes of TikTok's clock, else "signature is invalid".
  A refused signature is HTTP 401 with code 106001 ("Invalid credentials. The 'sign'
  query parameter is invalid."), as a live reply quoted on tiktok-api.gemyno-lab.fr shows.
- [INV] lywzx/tiktok-partner-api packages/tk-origin-api/src/products/UpdateInventory.ts
  (generated from the Partner API definitions): `POST
  /product/202309/products/{product_id}/inventory/update?shop_cipher=...` with
  `{"skus": [{"id", "inventory": [{"warehouse_id"?, "quantity"}]}]}`; `warehouse_id` may be
  left out only when the SKU has one default warehouse; only live SKUs can be updated;
  the reply `{"code", "message", "request_id", "data": {"errors": [{"code", "message",
  "detail": {"sku_id", "extra_errors": [{"warehouse_id", "code", "message"}]}}]}}`
  carries per-SKU failures beside an overall `code: 0`. The current doc's range is 0 to
  99,999 inclusive, at most 100 SKUs per product (CHANNELS.md section 0).
- [RATE] TikTok Shop developer guide, "API rate limits" (mirrored in
  lazykern/ecommerce-api-docs data/processed/tiktok/guides/developer-guide/
  tiktok-shop-api-concepts/rate-limits.md): 50 QPS per API per app and shop by default;
  HTTP 429 beyond it; 503 is a separate overload protection.
- [AUTH] TikTok Shop authorization guide: `GET https://auth.tiktok-shops.com/api/v2/token/
  refresh?app_key&app_secret&refresh_token&grant_type=refresh_token` answers
  `{"code": 0, "data": {"access_token", "access_token_expire_in", "refresh_token", ...}}`
  where `access_token_expire_in` is the Unix time the token expires; API calls carry it in
  the `x-tts-access-token` header.
- [PRICE] lywzx/tiktok-partner-api packages/tk-origin-api/src/products/UpdatePrice.ts
  (the same generated definitions): `POST
  /product/202309/products/{product_id}/prices/update?shop_cipher=...` with `{"skus":
  [{"id", "price": {"amount" (a string), "currency"}}]}`, several SKUs of one product,
  live SKUs only; the currency is the region's (US USD, GB GBP, SG SGD, MY MYR, TH THB,
  PH PHP, VN VND, ID IDR) and the amount within the region's range (local shops: US
  0.01 to 7,600 USD, GB 0.01 to 5,600, SG 0.01 to 10,000, MY 0.01 to 320,000, TH 30 to
  260,000, PH 0.01 to 400,000, VN 1 to 180,000,000, ID 100 to 100,000,000); the reply is
  the usual envelope.
- Codes the sources above do not give are the sandbox's choice, kept here so both sides
  agree: 105001 / 105002 for an invalid / expired access token (as TikTok's error
  catalogue numbers its credential errors, inference), and the per-request and per-SKU
  codes below.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

# The currency a channel sells in unless its option `currency` says otherwise: the US
# shop's currency; option `currency` for another region.
CURRENCY = "USD"

DEFAULT_BASE_URL: Final = "https://open-api.tiktokglobalshop.com"
AUTH_URL: Final = "https://auth.tiktok-shops.com"
REFRESH_PATH: Final = "/api/v2/token/refresh"  # [AUTH]
ACCESS_TOKEN_HEADER: Final = "x-tts-access-token"
CREDENTIALS: Final = ("app_key", "app_secret", "refresh_token")

# Update Inventory [INV] [RATE]
INVENTORY_PATH: Final = "/product/202309/products/{product_id}/inventory/update"
RATE: Final = 50.0
# TikTok states a per-second rate only; one second's worth as the burst (inference).
BURST: Final = 50.0
MAX_QTY: Final = 99_999
MAX_SKUS: Final = 100
PRICE_PATH: Final = "/product/202309/products/{product_id}/prices/update"  # [PRICE]
# [PRICE] the least and the most a local shop's SKU may cost, by currency.
PRICE_RANGES: Final = {
    "USD": ("0.01", "7600"),
    "GBP": ("0.01", "5600"),
    "SGD": ("0.01", "10000"),
    "MYR": ("0.01", "320000"),
    "THB": ("30", "260000"),
    "PHP": ("0.01", "400000"),
    "VND": ("1", "180000000"),
    "IDR": ("100", "100000000"),
}

# Signing [SIGN]
SIGN_EXCLUDED: Final = ("sign", "access_token")
TIMESTAMP_WINDOW_S: Final = 300

# Codes [SIGN] [AUTH] and the sandbox's choices (see the module docstring)
OK: Final = 0
SIGN_INVALID: Final = 106001
ACCESS_TOKEN_INVALID: Final = 105001
ACCESS_TOKEN_EXPIRED: Final = 105002
REFRESH_TOKEN_INVALID: Final = 105003
TOO_MANY_REQUESTS: Final = 429
INVALID_PARAMS: Final = 36009001
PRODUCT_NOT_FOUND: Final = 12052048
SKU_NOT_FOUND: Final = 12052217
QUANTITY_OUT_OF_RANGE: Final = 12052230
PRICE_INVALID: Final = 12052231  # the sandbox's choice, beside QUANTITY_OUT_OF_RANGE
WAREHOUSE_INVALID: Final = 12052240

# From a sale to the order reaching the seller (order webhooks, Get Order List): no
# documented figure; about half a minute (inference).
ORDER_DELAY_S: Final = 30.0


def sign(app_secret: str, path: str, params: Mapping[str, str], body: bytes = b"") -> str:
    """The `sign` query parameter of a request [SIGN]."""
    pairs = "".join(f"{key}{params[key]}" for key in sorted(params) if key not in SIGN_EXCLUDED)
    wrapped = app_secret.encode() + path.encode() + pairs.encode() + body + app_secret.encode()
    return hmac.new(app_secret.encode(), wrapped, hashlib.sha256).hexdigest()


def envelope(code: int, message: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """TikTok's reply body [INV]."""
    return {"code": code, "message": message, "request_id": "", "data": dict(data or {})}


def sku_errors(data: object) -> dict[str, str]:
    """`code: message` of each failed SKU in a reply's `data.errors`, by SKU id [INV]."""
    errors = data.get("errors") if isinstance(data, Mapping) else None
    failed: dict[str, str] = {}
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            continue
        detail = error.get("detail")
        sku_id = detail.get("sku_id") if isinstance(detail, Mapping) else None
        extra = detail.get("extra_errors") if isinstance(detail, Mapping) else None
        reasons = [
            f"{e.get('code', '?')}: {e.get('message', '')} (warehouse {e.get('warehouse_id')})"
            for e in extra or []
            if isinstance(e, Mapping)
        ]
        reason = "; ".join(reasons) or f"{error.get('code', '?')}: {error.get('message', '')}"
        failed[str(sku_id)] = reason
    return failed


def reply_reason(payload: object) -> str:
    """`code: message` of a reply, or a note that it was not TikTok's envelope."""
    if isinstance(payload, Mapping) and "code" in payload:
        return f"{payload.get('code')}: {payload.get('message', '')}"
    return "no TikTok reply envelope"
