"""Shopee Open Platform v2 as far as stock goes: `v2.product.update_stock`, the partner
signature, the access-token refresh and the error names, read by the gateway profile
and the sandbox.

Sources (checked 2026-12-05):
- [US] Shopee's API reference for v2.product.update_stock (open.shopee.com/documents/
  v2/v2.product.update_stock, as dumped in lazykern/ecommerce-api-docs,
  data/legacy/output/raw/shopee/apis/product/v2.product.update_stock.json): the common
  parameters (timestamp "expires in 5 minutes", access token "expires in 4 hours"),
  one `item_id` per call with a `stock_list` of 1 to 50 models (`model_id` 0 for an
  item without variants) each carrying `seller_stock` [{`location_id`?, `stock`}], the
  reply `response.failure_list` [{`model_id`, `failed_reason`}] and `success_list`
  [{`model_id`, `location_id`, `stock`}], the error names (`error_sign` "Wrong sign.",
  `error_auth` "Invalid access_token.", `error_param` "Invalid timestamp",
  `error_item_not_found`, `error_busi_update_stock_failed`, "Can not update item with
  stock less than reserved stock", ...), and `rate_limit: [0, 0, 0]`: no published rate.
- [CALLS] Shopee developer guide "API calls" (open.shopee.com/developer-guide/16, same
  dump, data/processed/shopee/guides/getting-started/api-calls.md): the base string of
  a Shop API signature is partner_id, API path, timestamp, access_token, shop_id
  concatenated (the documented example: 2001887, /api/v2/shop/get_shop_info,
  1655714431, 59777174636562737266615546704c6d, 14701711); of a Public API partner_id,
  path, timestamp; HMAC-SHA256 keyed with the partner key, lowercase hex; the reply
  fields `request_id`, `error`, `message`, `warning`, `response`; hosts
  partner.shopeemobile.com (SG), openplatform.shopee.cn, openplatform.shopee.com.br.
- [AUTH] Shopee developer guide "Authorization and Authentication" (same dump,
  authorization-and-authentication.md): RefreshAccessToken `POST
  /api/v2/auth/access_token/get` (a Public API: signed without token and shop) with the
  JSON body `refresh_token`, `partner_id`, `shop_id`; the reply `access_token`,
  `refresh_token` (a new one: "can only be used once"), `expire_in` (seconds);
  refresh tokens live 30 days, access tokens 4 hours.
- [BP] data/processed/shopee/guides/api-best-practices/stock-price-management.md: only
  `seller_stock` can be set; stock must not go below the promotion's reserved stock.
- [ML] Shopee's API reference for v2.product.get_model_list (same dump,
  .../apis/product/v2.product.get_model_list.json): a Shop API read with GET ("method"
  2, where update_stock's is 1, POST) taking `item_id`; the
  reply `response.model` [{`model_id`, `stock_info_v2`: {`summary_info`:
  {`total_reserved_stock` "Stock reserved for promotion", `total_available_stock`},
  `seller_stock` [{`location_id`, `stock`}]}}]; its error list repeats update_stock's
  refusals of stock under the reserved stock ("Can not update item with stock less
  than reserve stock", "Stock should be larger than reserved stock.", ...).
- [BI] v2.product.get_item_base_info (same dump, .../v2.product.get_item_base_info.json):
  `item_id_list` (up to 50); `response.item_list` [{`item_id`, `stock_info_v2`} with the
  same `summary_info`], the stock of an item without variants, which get_model_list
  does not list.
- [UP] Shopee's API reference for v2.product.update_price (open.shopee.com/documents?
  module=89&type=1&id=651&version=2; the same call in Shopee clients such as
  alfarady/letgo x/api/shopee/product/product.go and its UpdatePriceResult): `POST
  /api/v2/product/update_price`, signed like update_stock, with `item_id` and a
  `price_list` [{`model_id`, `original_price`}] of that item's models, in the shop's
  currency (the body names none); the reply `response.failure_list` [{`model_id`,
  `failed_reason`}] and `success_list` [{`model_id`, `original_price`}].
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, Final

PLATFORM: Final = "shopee"
# The currency a channel sells in unless its option `currency` says otherwise: the
# Singapore shop's currency (the default host is the global one); option `currency` for
# another region.
CURRENCY = "SGD"
DEFAULT_BASE_URL: Final = "https://partner.shopeemobile.com"  # [CALLS]
UPDATE_STOCK_PATH: Final = "/api/v2/product/update_stock"  # [US]
UPDATE_PRICE_PATH: Final = "/api/v2/product/update_price"  # [UP]
REFRESH_PATH: Final = "/api/v2/auth/access_token/get"  # [AUTH]
# Read with GET and the same signed common parameters [ML] [BI].
MODEL_LIST_PATH: Final = "/api/v2/product/get_model_list"
ITEM_BASE_INFO_PATH: Final = "/api/v2/product/get_item_base_info"
# The model id of an item without variants [US]: its stock is the item's [BI].
NO_VARIANTS: Final = 0
CREDENTIALS: Final = ("partner_key", "refresh_token")
# The listing map's columns: the item and its model (0 for an item without variants).
ID_FIELDS: Final = ("item_id", "model_id")

TIMESTAMP_WINDOW_S: Final = 300.0  # [US] "Expires in 5 minutes"
ACCESS_TOKEN_TTL_S: Final = 4 * 3600.0  # [US] [AUTH]
MAX_MODELS: Final = 50  # [US] stock_list "Length should be between 1 to 50"
# [US] stock is an int64 bounded per item by v2.product.get_item_limit `stock_limit`;
# Shopee publishes no single figure. 999,999 is the sandbox's bound (inference).
MAX_STOCK: Final = 999_999
# [US] publishes no rate ("rate_limit: [0, 0, 0]"). The sandbox allows ten calls a
# second per shop, burst ten (inference); the profile keeps one call of headroom below
# the burst, because a call held up on its way (behind a token refresh) lands when
# the platform's bucket has sat full and stopped filling. Both overridable.
RATE: Final = 10.0
BURST: Final = 10.0
CLIENT_BURST: Final = BURST - 1
# From a sale to the order reaching the seller's OMS (push or get_order_list): no
# documented figure; about a minute (inference).
ORDER_DELAY_S: Final = 60.0

# Error names and messages [US]. The HTTP statuses are the sandbox's (Shopee documents
# the names, not the statuses): 403 for signature and token refusals, 400 for
# malformed requests, 429 for throttling (inference), 200 for item-level results.
ERROR_SIGN: Final = "error_sign"
WRONG_SIGN: Final = "Wrong sign."
ERROR_AUTH: Final = "error_auth"
INVALID_ACCESS_TOKEN: Final = "Invalid access_token."
ERROR_PARAM: Final = "error_param"
INVALID_TIMESTAMP: Final = "Invalid timestamp"
ERROR_ITEM_NOT_FOUND: Final = "error_item_not_found"
ITEM_NOT_FOUND: Final = "Item_id is not found."
WRONG_MODEL: Final = "Wrong model_id."
ERROR_UPDATE_STOCK_FAILED: Final = "error_busi_update_stock_failed"
UPDATE_STOCK_FAILED: Final = "Update stock failed, please check failure_list for detailed reason"
BELOW_RESERVED: Final = "Can not update item with stock less than reserved stock"
ERROR_TOO_MANY_REQUESTS: Final = "error_too_many_request"  # (inference)
# The error of an update_price call none of whose models was updated: update_stock's
# pattern (inference; [UP] names the per-model `failed_reason` only).
ERROR_UPDATE_PRICE_FAILED: Final = "error_busi_update_price_failed"
UPDATE_PRICE_FAILED: Final = "Update price failed, please check failure_list for detailed reason"
# Whole-request failures worth retrying [US]: "Something wrong. Please try later.",
# "Our system is taking some time to respond", "Inner http call failed".
TRANSIENT_ERRORS: Final = ("error_server", "error_inner", "error_system_busy", "error_network")
AUTH_STATUS: Final = 403


def base_string(
    partner_id: int | str,
    path: str,
    timestamp: int,
    access_token: str = "",
    shop_id: int | str = "",
) -> str:
    """The signature's base string [CALLS]: partner_id, path, timestamp, and for a Shop
    API the access token and shop id, concatenated."""
    return f"{partner_id}{path}{timestamp}{access_token}{shop_id}"


def sign(partner_key: str, base: str) -> str:
    """HMAC-SHA256 of the base string keyed with the partner key, lowercase hex [CALLS]."""
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


def listing_key(item_id: str, model_id: str) -> str:
    """How the sandbox and the gateway name one model of one item."""
    return f"{item_id}:{model_id}"


def stock_request(
    item_id: int, models: Sequence[tuple[int, int]], location_id: str
) -> dict[str, Any]:
    """The update_stock body for `(model_id, stock)` pairs of one item [US]; the
    `location_id` only for a shop with several warehouses."""
    where = {"location_id": location_id} if location_id else {}
    return {
        "item_id": item_id,
        "stock_list": [
            {"model_id": model, "seller_stock": [{**where, "stock": stock}]}
            for model, stock in models
        ],
    }


def price_request(item_id: int, models: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """The update_price body for `(model_id, price)` pairs of one item [UP]; the price
    goes as a JSON number, as the reference types it."""
    return {
        "item_id": item_id,
        "price_list": [
            {"model_id": model, "original_price": float(price)} for model, price in models
        ],
    }


def stock_info(reserved: int, available: int) -> dict[str, Any]:
    """`stock_info_v2` of a model or an item [ML] [BI]: what a promotion holds and what
    can be sold."""
    return {
        "summary_info": {"total_reserved_stock": reserved, "total_available_stock": available},
        "seller_stock": [{"stock": available}],
    }


def reserved_stock(response: Mapping[str, Any], item_id: int, model_id: int) -> int | None:
    """`total_reserved_stock` of one model in a get_model_list `response` [ML], or of the
    item in a get_item_base_info `response` for an item without variants [BI]; None
    when the reply does not say."""
    if model_id == NO_VARIANTS:
        entries, key, wanted = response.get("item_list"), "item_id", item_id
    else:
        entries, key, wanted = response.get("model"), "model_id", model_id
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping) or entry.get(key) != wanted:
            continue
        info = entry.get("stock_info_v2")
        summary = info.get("summary_info") if isinstance(info, Mapping) else None
        reserved = summary.get("total_reserved_stock") if isinstance(summary, Mapping) else None
        if isinstance(reserved, int) and not isinstance(reserved, bool) and reserved >= 0:
            return reserved
    return None
