"""Lazada Open Platform as far as stock goes: UpdatePriceQuantity, the request signature,
the access-token refresh and the error codes, read by the gateway profile and the
sandbox.

Sources (checked 2026-12-05):
- [SIGN] Lazada developer guide "HTTP request sample" and "Calling parameters"
  (open.lazada.com/apps/doc/doc?nodeId=10400&docId=108069 and docId=108067): the
  system parameters `app_key`, `access_token`, `timestamp` (milliseconds; "the
  difference between the timestamp and UTC time should not exceed 7200 seconds"),
  `sign_method` and `sign`; the signature is HMAC-SHA256 keyed with the app secret over
  the API path followed by every other parameter sorted by name as name+value, in
  uppercase hex. The worked example: app secret "helloworld", /order/get with
  access_token "test", app_key "123456", order_id "1234", sign_method "sha256",
  timestamp "1517820392000" gives 4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A.
  Hosts per venture: https://api.lazada.{sg,co.th,com.my,vn,com.ph,co.id}/rest.
- [ERR] the same guide, "Error messages" (docId=108138) and "Reconfigure existing app":
  replies are JSON `{"code": "0", "data": ..., "request_id"}`; an error carries
  `code`, `type` (ISV / SYSTEM / ISP) and `message`, and a batch call's failed items in
  `detail` [{`field`, `seller_sku`, `message`}]. Common codes seen in Lazada's SDK
  issues and clients: `IncompleteSignature` ("The request signature does not conform
  to lazada standards"), `IllegalAccessToken` ("The specified access token is invalid
  or expired"), `ApiCallLimit` (throttled).
- [UPQ] API reference UpdatePriceQuantity (open.lazada.com/apps/doc/api?path=
  %2Fproduct%2Fprice_quantity%2Fupdate): `POST /product/price_quantity/update` with the
  XML `payload`, "The maximum number of products that can be updated is 50, but 20 is
  recommended"; error codes 5 (E005 Invalid Request Format), 501 ("Update product
  failed": see `detail` for the SKUs and causes), 901 (QPS limit: retry in the next
  second), 513 (internal, fewer SKUs per request help), 4171 (more than 50 SKUs).
- [INV] Lazada best practice "Inventory management API" (lazykern/ecommerce-api-docs,
  data/processed/lazada/guides/api-best-practice/product-operation/
  product-inventory-management/inventory-management-api.md): the single-warehouse XML
  `<Request><Product><Skus><Sku><ItemId/><SkuId/><Quantity/></Sku></Skus></Product>
  </Request>`; the quantity is the warehouse's total, "cannot be negative" and "must
  be greater than or equal to the inventory locked by the withhold + occupy +
  campaign"; at most 50 SKUs; "Each seller can only call the inventory API 50 times
  per second".
- [CALC] Lazada best practice "Inventory calculation logic" (same dump, .../
  product-inventory-management/inventory-calculation-logic.md): `withholdQuantity`
  (unpaid orders), `occupyQuantity` (paid, not yet ready to ship) and
  `channelInventories` (stock a campaign locked until it ends) per SKU; "the
  inventory cannot be less than WithholdQuantity+OccupyQuantity+channelInventories";
  GetProductItem's `data.skus` [{`SellerSku`, `SkuId`, `multiWarehouseInventories`
  [{`warehouseCode`, `totalQuantity`, `sellableQuantity`, `withholdQuantity`,
  `occupyQuantity`}], `channelInventories` [{`channelName`, `startTime`, `endTime`,
  `sellableQuantity`}]}].
- [ITEM] API reference GetProductItem (open.lazada.com/apps/doc/api?path=
  %2Fproduct%2Fitem%2Fget; its response sample in the same dump): `GET
  /product/item/get` with `item_id` (or `seller_sku`), signed like any call.
- [PRICE] UpdatePriceQuantity ([UPQ], and lazada-sellercenter.readme.io/docs/
  updatepricequantity) with its payload as Lazada's clients build it: a `Sku` carries
  `Price` (and optionally `SalePrice`, `SaleStartDate`, `SaleEndDate`) beside
  `Quantity`, each optional, in the venture's currency (the payload names none); "a
  price update of 80% or more sends the product back to QC" (quality control: not sold
  until it passes). Lazada publishes no figure for how long that review takes.
- [AUTH] Lazada "Seller authorization introduction": `/auth/token/refresh` on
  https://auth.lazada.com/rest, signed like any call, with `refresh_token`; the reply
  `access_token`, `refresh_token`, `expires_in`, `refresh_expires_in` (seconds).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, Final
from xml.sax.saxutils import escape

PLATFORM: Final = "lazada"
# The currency a channel sells in unless its option `currency` says otherwise: the
# Singapore venture's currency, like the default host; option `currency` for another
# venture.
CURRENCY = "SGD"
DEFAULT_BASE_URL: Final = "https://api.lazada.sg"  # [SIGN] the Singapore venture
AUTH_BASE_URL: Final = "https://auth.lazada.com"  # [AUTH]
REST_PREFIX: Final = "/rest"  # every API path is served under it [SIGN]
UPDATE_PATH: Final = "/product/price_quantity/update"  # [UPQ]
REFRESH_PATH: Final = "/auth/token/refresh"  # [AUTH]
ITEM_PATH: Final = "/product/item/get"  # [ITEM]
DROPSHIPPING: Final = "dropshipping"  # a single-warehouse seller's warehouse [CALC]
CREDENTIALS: Final = ("app_secret", "refresh_token")
# The listing map's columns: the seller SKU names the SKU in Lazada's `detail` of a
# failed item; the item and SKU ids address it in the payload.
ID_FIELDS: Final = ("seller_sku", "item_id", "sku_id")
SIGN_METHOD: Final = "sha256"

TIMESTAMP_WINDOW_S: Final = 7200.0  # [SIGN]
MAX_SKUS: Final = 50  # [UPQ] [INV]
RECOMMENDED_SKUS: Final = 20  # [UPQ]
# [INV] 50 inventory calls a second per seller; the profile keeps one call of headroom
# below the burst (a call held up behind a token refresh lands when the platform's
# bucket has sat full and stopped filling).
RATE: Final = 50.0
BURST: Final = 50.0
CLIENT_BURST: Final = BURST - 1
# Lazada publishes no upper bound for Quantity; the sandbox refuses above this one
# (inference).
MAX_QUANTITY: Final = 999_999
# [PRICE] A price change of this fraction of the current price or more sends the
# product back to QC.
REVIEW_CHANGE: Final = 0.8
# How long the QC review keeps such a product off sale in the sandbox: Lazada publishes
# no figure (inference: a working day; a rehearsal sets its own `review_delay_s`).
REVIEW_DELAY_S: Final = 86_400.0
REVIEW_STATUS: Final = "pending"  # a product awaiting QC, as GetProducts' filter names it
# From a sale to the order reaching the seller's OMS: no documented figure; about a
# minute (inference).
ORDER_DELAY_S: Final = 60.0
ACCESS_TOKEN_TTL_S: Final = 7 * 86_400.0  # typical `expires_in` (inference)

# Reply codes [ERR] [UPQ]. Lazada answers HTTP 200 with the code in the body.
SUCCESS: Final = "0"
INCOMPLETE_SIGNATURE: Final = "IncompleteSignature"
ILLEGAL_ACCESS_TOKEN: Final = "IllegalAccessToken"
API_CALL_LIMIT: Final = "ApiCallLimit"
QPS_LIMIT: Final = "901"
INVALID_FORMAT: Final = "5"
UPDATE_FAILED: Final = "501"
TOO_MANY_SKUS: Final = "4171"
PRODUCT_NOT_FOUND: Final = "208"  # GetProductItem of an unknown item (inference)
# The codes of a refused timestamp and refresh token are the sandbox's (Lazada
# documents the window, not the code).
INVALID_TIMESTAMP: Final = "InvalidTimestamp"
ILLEGAL_REFRESH_TOKEN: Final = "IllegalRefreshToken"
THROTTLED: Final = (API_CALL_LIMIT, QPS_LIMIT)
TRANSIENT: Final = ("6", "513", "1000")  # internal errors: try again [UPQ]
# `detail` messages: SELLER_SKU_INVALID is Lazada's [ERR]; the others are the sandbox's
# wording of the documented rules [INV].
SELLER_SKU_INVALID: Final = "SELLER_SKU_INVALID"
NEGATIVE_QUANTITY: Final = "Quantity cannot be negative"


def string_to_sign(api_path: str, params: Mapping[str, str]) -> str:
    """The API path followed by every parameter but `sign`, sorted by name, as
    name+value [SIGN]."""
    return api_path + "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")


def sign(app_secret: str, api_path: str, params: Mapping[str, str]) -> str:
    """HMAC-SHA256 of `string_to_sign` keyed with the app secret, uppercase hex [SIGN]."""
    text = string_to_sign(api_path, params)
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


def below_locked(locked: int) -> str:
    """The refusal of a quantity under the locked stock (the sandbox's wording) [INV]."""
    return (
        f"Quantity must be greater than or equal to the locked stock {locked} "
        "(withhold + occupy + campaign)"
    )


def update_payload(skus: Sequence[tuple[str, str, str, int | None, str | None]]) -> str:
    """The single-warehouse UpdatePriceQuantity payload for `(seller_sku, item_id, sku_id,
    quantity, price)` entries, each setting its quantity, its price or both [INV] [UPQ]
    [PRICE]."""
    entries = "".join(
        f"<Sku><ItemId>{escape(item)}</ItemId><SkuId>{escape(sku_id)}</SkuId>"
        f"<SellerSku>{escape(seller_sku)}</SellerSku>"
        + ("" if price is None else f"<Price>{escape(price)}</Price>")
        + ("" if qty is None else f"<Quantity>{qty}</Quantity>")
        + "</Sku>"
        for seller_sku, item, sku_id, qty, price in skus
    )
    return f"<Request><Product><Skus>{entries}</Skus></Product></Request>"


def item_skus(skus: Sequence[tuple[str, str, int, int]]) -> list[dict[str, Any]]:
    """GetProductItem's `data.skus` for `(seller_sku, sku_id, quantity, locked)` of a
    single-warehouse seller [CALC]: the locked stock as one campaign's channel
    inventory, no order holding any."""
    return [
        {
            "SellerSku": seller_sku,
            "SkuId": int(sku_id) if sku_id.isdigit() else sku_id,
            "quantity": qty,
            "multiWarehouseInventories": [
                {
                    "warehouseCode": DROPSHIPPING,
                    "totalQuantity": qty,
                    "sellableQuantity": qty,
                    "withholdQuantity": 0,
                    "occupyQuantity": 0,
                }
            ],
            "channelInventories": (
                [{"channelName": "campaign", "sellableQuantity": locked}] if locked else []
            ),
        }
        for seller_sku, sku_id, qty, locked in skus
    ]


def locked_stock(data: Mapping[str, Any], seller_sku: str) -> int | None:
    """What Lazada holds locked for one SKU of a GetProductItem `data` [CALC]: withhold
    + occupy over its warehouses, plus what campaigns hold; None when the reply does
    not name the SKU."""
    skus = data.get("skus")
    for sku in skus if isinstance(skus, list) else []:
        if not isinstance(sku, Mapping) or sku.get("SellerSku") != seller_sku:
            continue
        warehouses = sku.get("multiWarehouseInventories")
        campaigns = sku.get("channelInventories")
        orders = sum(
            _count(entry, name)
            for entry in (warehouses if isinstance(warehouses, list) else [])
            for name in ("withholdQuantity", "occupyQuantity")
        )
        held = sum(
            _count(entry, "sellableQuantity")
            for entry in (campaigns if isinstance(campaigns, list) else [])
        )
        return orders + held
    return None


def _count(entry: object, name: str) -> int:
    value = entry.get(name) if isinstance(entry, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
