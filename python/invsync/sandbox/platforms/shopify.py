"""Shopify on the sandbox: the Admin GraphQL endpoint of API 2026-04, as strict as the
store is for the calls invsync makes (see invsync.marketplaces.shopify for sources).

It reads the request as GraphQL: the operation must be the `inventorySetQuantities`
mutation with its `@idempotent(key:)` directive and input of the documented types
(from variables or inline), or a query reading `inventoryItem { inventoryLevel {
quantities } }`; anything else gets Shopify's error shapes. Each request's cost is
taken from a leaky bucket (THROTTLED when it does not fit), every reply carries
`extensions.cost.throttleStatus`, the mutation is all-or-nothing with per-quantity
userErrors (compare-and-swap on `changeFromQuantity`, unknown item or location,
quantity range, duplicates) and a repeated idempotency key returns the first answer.
Listings are keyed by their inventory item GID.

Prices: `productVariantsBulkUpdate(productId:, variants:)` (all or nothing; an unknown
product, a variant not of it, a price that is negative, not a decimal string or with
more decimals than the store's currency are userErrors), and
`inventoryItem { variant { id price product { id } } }` to find a listing's variant.
Each inventory item is the one variant of a product of its own:
`gid://shopify/ProductVariant/<n>` of `gid://shopify/Product/<n>` for
`gid://shopify/InventoryItem/<n>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from invsync.gateway.secrets import Secret
from invsync.marketplaces import shopify as doc
from invsync.marketplaces.money import decimals, price_problem
from invsync.sandbox.graphql import (
    MISSING,
    Field,
    GraphQLSyntaxError,
    Operation,
    Variable,
    parse,
    resolve,
    variables_used,
)
from invsync.sandbox.market import Bucket, Market, SandboxListing
from invsync.sandbox.platforms.base import SandboxFactory, SandboxSettings

# Seconds from a sale on the storefront to the order reaching the seller's OMS (an
# order webhook, usually within seconds: inference, no documented figure).
ORDER_DELAY_S = 2.0
# Idempotency keys remembered (Shopify keeps them for a retention window; a bound
# keeps a long rehearsal's memory flat).
IDEMPOTENCY_KEYS_KEPT = 10_000

# The slice of the Admin schema the sandbox serves: type -> field -> (type, arguments).
_OUTPUT: dict[str, dict[str, tuple[str, dict[str, str]]]] = {
    "Mutation": {
        doc.MUTATION_FIELD: ("InventorySetQuantitiesPayload", {"input": f"{doc.INPUT_TYPE}!"}),
        doc.PRICE_MUTATION_FIELD: (
            "ProductVariantsBulkUpdatePayload",
            {"productId": "ID!", "variants": f"[{doc.VARIANT_INPUT_TYPE}!]!"},
        ),
    },
    "ProductVariantsBulkUpdatePayload": {
        "product": ("Product", {}),
        "productVariants": ("[ProductVariant!]", {}),
        "userErrors": ("[ProductVariantsBulkUpdateUserError!]!", {}),
    },
    "ProductVariantsBulkUpdateUserError": {
        "code": ("ProductVariantsBulkUpdateUserErrorCode", {}),
        "field": ("[String!]", {}),
        "message": ("String!", {}),
    },
    "ProductVariant": {
        "id": ("ID!", {}),
        "price": ("Money!", {}),
        "product": ("Product!", {}),
    },
    "Product": {"id": ("ID!", {})},
    "QueryRoot": {"inventoryItem": ("InventoryItem", {"id": "ID!"})},
    "InventorySetQuantitiesPayload": {
        "inventoryAdjustmentGroup": ("InventoryAdjustmentGroup", {}),
        "userErrors": ("[InventorySetQuantitiesUserError!]!", {}),
    },
    "InventorySetQuantitiesUserError": {
        "code": ("InventorySetQuantitiesUserErrorCode", {}),
        "field": ("[String!]", {}),
        "message": ("String!", {}),
    },
    "InventoryAdjustmentGroup": {
        "createdAt": ("DateTime!", {}),
        "reason": ("String!", {}),
        "referenceDocumentUri": ("String", {}),
        "changes": ("[InventoryChange!]!", {}),
    },
    "InventoryChange": {
        "name": ("String!", {}),
        "delta": ("Int!", {}),
        "quantityAfterChange": ("Int", {}),
        "item": ("InventoryItem", {}),
        "location": ("Location", {}),
    },
    "InventoryItem": {
        "id": ("ID!", {}),
        "inventoryLevel": ("InventoryLevel", {"locationId": "ID!"}),
        "variant": ("ProductVariant!", {}),
    },
    "InventoryLevel": {
        "quantities": ("[InventoryQuantity!]!", {"names": "[String!]!"}),
        "location": ("Location", {}),
        "item": ("InventoryItem", {}),
    },
    "InventoryQuantity": {"name": ("String!", {}), "quantity": ("Int!", {})},
    "Location": {"id": ("ID!", {})},
}
_INPUT: dict[str, dict[str, str]] = {
    doc.INPUT_TYPE: {
        "name": "String!",
        "reason": "String!",
        "referenceDocumentUri": "String",
        "quantities": f"[{doc.QUANTITY_INPUT_TYPE}!]!",
    },
    doc.QUANTITY_INPUT_TYPE: {
        "inventoryItemId": "ID!",
        "locationId": "ID!",
        "quantity": "Int!",
        "changeFromQuantity": "Int",
    },
    doc.VARIANT_INPUT_TYPE: {"id": "ID", "price": "Money"},
}
_INT32 = (-(2**31), 2**31 - 1)


def _named(type_: str) -> str:
    return type_.strip("[]!")


def _error(message: str, code: str | None = None, **more: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["extensions"] = {"code": code, **more}
    return error


class _Refused(Exception):
    """A request refused as a whole, with GraphQL `errors` entries."""

    def __init__(self, *errors: dict[str, Any]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = list(errors)


def _coerce(value: Any, type_: str, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    """Problems of `value` as an input of `type_` (GraphQL input coercion)."""
    if type_.endswith("!"):
        if value is None or value is MISSING:
            return [(path, "Expected value to not be null")]
        type_ = type_[:-1]
    if value is None or value is MISSING:
        return []
    if type_.startswith("["):
        if not isinstance(value, list):
            return [(path, "Expected value to be a list")]
        inner = type_[1:-1]
        return [p for n, v in enumerate(value) for p in _coerce(v, inner, [*path, n])]
    if type_ in _INPUT:
        if not isinstance(value, dict):
            return [(path, f"Expected value to be an object of {type_}")]
        fields = _INPUT[type_]
        problems = [
            ([*path, k], f"Field is not defined on {type_}") for k in value if k not in fields
        ]
        for name, field_type in fields.items():
            problems += _coerce(value.get(name, MISSING), field_type, [*path, name])
        return problems
    ok = {
        "String": isinstance(value, str),
        "ID": isinstance(value, str),
        "Money": isinstance(value, str),
        "Int": isinstance(value, int)
        and not isinstance(value, bool)
        and _INT32[0] <= value <= _INT32[1],
    }.get(type_, False)
    return [] if ok else [(path, f"Could not coerce value {json.dumps(value)} to {type_}")]


def _validate(
    fields: Sequence[Field], parent: str, declared: Mapping[str, str], used: set[str]
) -> tuple[list[dict[str, Any]], int]:
    """Errors of a selection set against the schema (variables it uses are added to
    `used`), and its requested cost."""
    errors: list[dict[str, Any]] = []

    def refuse(at: Field, message: str, code: str) -> None:
        errors.append(
            _error(message, code) | {"locations": [{"line": at.line, "column": at.column}]}
        )

    cost = 0
    for f in fields:
        if f.name == "__typename":
            continue
        known = _OUTPUT[parent].get(f.name)
        if known is None:
            refuse(f, f"Field '{f.name}' doesn't exist on type '{parent}'", "undefinedField")
            continue
        type_, params = known
        for arg, value in f.arguments.items():
            if arg not in params:
                refuse(
                    f, f"Field '{f.name}' doesn't accept argument '{arg}'", "argumentNotAccepted"
                )
                continue
            for name in variables_used(value):
                used.add(name)
                if name not in declared:
                    refuse(
                        f,
                        f"Variable ${name} is used by {f.name} but not declared",
                        "variableNotDefined",
                    )
                elif value == Variable(name) and declared[name] != params[arg]:
                    refuse(
                        f,
                        f"Type mismatch on variable ${name} and argument {arg} "
                        f"({declared[name]} / {params[arg]})",
                        "variableMismatch",
                    )
        missing = [a for a, t in params.items() if t.endswith("!") and a not in f.arguments]
        if missing:
            refuse(
                f,
                f"Field '{f.name}' is missing required arguments: {', '.join(missing)}",
                "missingRequiredArguments",
            )
        named = _named(type_)
        if named not in _OUTPUT:
            if f.selections:
                refuse(
                    f,
                    f"Selections can't be made on scalars (field '{f.name}' returns {named})",
                    "selectionMismatch",
                )
        elif not f.selections:
            refuse(
                f,
                f"Field must have selections (field '{f.name}' returns {named})",
                "selectionMismatch",
            )
        else:
            sub_errors, sub_cost = _validate(f.selections, named, declared, used)
            errors.extend(sub_errors)
            cost += (doc.MUTATION_COST if parent == "Mutation" else doc.OBJECT_COST) + sub_cost
    return errors, cost


def _render(node: Mapping[str, Any], fields: Sequence[Field], typename: str) -> dict[str, Any]:
    """`node`'s values for the selected fields: each entry of `node` is a value or a
    function of the field's resolved arguments."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.name == "__typename":
            out[f.response_key] = typename
            continue
        value = node[f.name]
        if callable(value):
            value = value(f.arguments)
        named = _named(_OUTPUT[typename][f.name][0])
        if named in _OUTPUT and value is not None:
            value = (
                [_render(v, f.selections, named) for v in value]
                if isinstance(value, list)
                else _render(value, f.selections, named)
            )
        out[f.response_key] = value
    return out


class ShopifySandbox:
    """One Shopify store serving one policy channel."""

    platform = "shopify"

    def __init__(
        self, market: Market, credentials: Mapping[str, Secret], settings: SandboxSettings
    ) -> None:
        if doc.CREDENTIAL not in credentials:
            raise ValueError(f"shopify channel {market.channel!r} names no {doc.CREDENTIAL}")
        self.market = market
        self.order_delay_s = settings.order_delay(ORDER_DELAY_S)
        self._token = credentials[doc.CREDENTIAL]
        plan = market.options.get("plan", doc.DEFAULT_PLAN)
        if plan not in doc.PLAN_RESTORE_RATES:
            raise ValueError(
                f"shopify channel {market.channel!r}: plan {plan!r} is not one of "
                f"{', '.join(doc.PLAN_RESTORE_RATES)}"
            )
        rate = doc.PLAN_RESTORE_RATES[plan]
        self.bucket = Bucket(rate, rate * doc.BUCKET_SECONDS)
        self._answers: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def routes(self) -> Iterable[web.RouteDef]:
        return [web.post("/admin/api/{version}/graphql.json", self._graphql)]

    def state(self) -> Mapping[str, Any]:
        return {
            "api_version": doc.API_VERSION,
            "throttle_status": self._throttle_status(),
            "idempotency_keys": len(self._answers),
        }

    def _throttle_status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.bucket.capacity,
            "currentlyAvailable": round(self.bucket.available(), 3),
            "restoreRate": self.bucket.rate,
        }

    def _reply(self, body: dict[str, Any], requested: int, actual: int | None) -> web.Response:
        body["extensions"] = {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": self._throttle_status(),
            }
        }
        return web.json_response(body)

    async def _graphql(self, request: web.Request) -> web.Response:
        self.market.counters.requests += 1
        if request.match_info["version"] != doc.API_VERSION:
            self.market.counters.rejected += 1
            return web.json_response({"errors": "Not Found"}, status=404)
        sent = request.headers.get(doc.ACCESS_TOKEN_HEADER, "").encode()
        if not hmac.compare_digest(sent, self._token.reveal().encode()):
            self.market.counters.rejected += 1
            return web.json_response(doc.INVALID_TOKEN_BODY, status=401)
        try:
            payload = json.loads(await request.read())
        except ValueError:
            payload = None
        variables = payload.get("variables") if isinstance(payload, dict) else None
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("query"), str)
            or not isinstance(variables or {}, dict)
        ):
            self.market.counters.rejected += 1
            return web.json_response(
                {"errors": {"query": "Required parameter missing or invalid"}}, status=400
            )
        try:
            operation, cost = self._prepare(payload["query"], payload.get("operationName"))
            values = self._coerce_variables(operation, variables or {})
        except _Refused as refused:
            self.market.counters.rejected += 1
            return self._reply({"errors": refused.errors}, 0, None)
        if cost > self.bucket.capacity:
            self.market.counters.rejected += 1
            return self._reply(
                {
                    "errors": [
                        _error(
                            f"Query cost is {cost}, which exceeds the single query max cost "
                            f"limit ({self.bucket.capacity:g}).",
                            doc.MAX_COST_EXCEEDED,
                            cost=cost,
                            maxCost=self.bucket.capacity,
                        )
                    ]
                },
                cost,
                None,
            )
        if not self.bucket.take(cost):
            self.market.counters.throttled += 1
            return self._reply(
                {
                    "errors": [
                        _error(
                            "Throttled",
                            doc.THROTTLED,
                            documentation="https://shopify.dev/api/usage/rate-limits",
                        )
                    ]
                },
                cost,
                None,
            )
        try:
            if operation.kind == "mutation":
                data = self._mutate(operation.selections[0], values)
            else:
                data = _render(self._query_root(values), operation.selections, "QueryRoot")
        except _Refused as refused:
            self.market.counters.rejected += 1
            return self._reply({"errors": refused.errors, "data": None}, cost, cost)
        return self._reply({"data": data}, cost, cost)

    def _prepare(self, query: str, operation_name: Any) -> tuple[Operation, int]:
        try:
            operations = parse(query)
        except GraphQLSyntaxError as exc:
            raise _Refused(
                {"message": str(exc), "locations": [{"line": exc.line, "column": exc.column}]}
            ) from None
        if operation_name is None and len(operations) > 1:
            raise _Refused(_error("An operation name is required", "operationNameRequired"))
        chosen = [o for o in operations if operation_name in (None, o.name)]
        if not chosen:
            raise _Refused(_error(f"No operation named {operation_name!r}", "operationNotFound"))
        operation = chosen[0]
        root = "Mutation" if operation.kind == "mutation" else "QueryRoot"
        used: set[str] = set()
        errors, cost = _validate(operation.selections, root, operation.variables, used)
        for directive in (d for f in operation.selections for d in f.directives):
            for value in directive.arguments.values():
                used.update(variables_used(value))
        errors += [
            _error(
                f"Variable ${name} is declared by {operation.name or 'anonymous'} but not used",
                "variableNotUsed",
            )
            for name in operation.variables
            if name not in used
        ]
        mutations = [f.name for f in operation.selections]
        if operation.kind == "mutation" and mutations not in (
            [doc.MUTATION_FIELD],
            [doc.PRICE_MUTATION_FIELD],
        ):
            errors.append(
                _error(
                    f"this store takes one {doc.MUTATION_FIELD} or one "
                    f"{doc.PRICE_MUTATION_FIELD} per mutation",
                    "BAD_REQUEST",
                )
            )
        if errors:
            raise _Refused(*errors)
        return operation, cost

    def _coerce_variables(self, operation: Operation, given: Mapping[str, Any]) -> dict[str, Any]:
        errors = []
        for name, type_ in operation.variables.items():
            problems = _coerce(given.get(name, MISSING), type_, [])
            if problems:
                errors.append(
                    _error(
                        f"Variable ${name} of type {type_} was provided invalid value",
                        "INVALID_VARIABLE",
                        value=given.get(name),
                        problems=[{"path": p, "explanation": e} for p, e in problems],
                    )
                )
        if errors:
            raise _Refused(*errors)
        return dict(given)

    def _mutate(self, field: Field, variables: Mapping[str, Any]) -> dict[str, Any]:
        if field.name == doc.PRICE_MUTATION_FIELD:
            return self._update_variants(field, variables)
        key = None
        for directive in field.directives:
            if directive.name == doc.IDEMPOTENT_DIRECTIVE:
                key = resolve(directive.arguments.get("key"), dict(variables))
        if not isinstance(key, str) or not key:
            raise _Refused(
                _error(
                    f"The @{doc.IDEMPOTENT_DIRECTIVE} directive with a key is required for "
                    f"{doc.MUTATION_FIELD} (API {doc.API_VERSION})",
                    "BAD_REQUEST",
                )
            )
        given = resolve(field.arguments["input"], dict(variables))
        problems = _coerce(given, f"{doc.INPUT_TYPE}!", ["input"])
        if problems:  # an inline input literal of the wrong shape
            raise _Refused(
                *(
                    _error(
                        f"Argument 'input' has an invalid value: {'.'.join(map(str, p))}: {e}",
                        "argumentLiteralsIncompatible",
                    )
                    for p, e in problems
                )
            )
        quantities = given["quantities"]
        if len(quantities) > doc.MAX_INPUT_ITEMS:
            raise _Refused(
                _error(
                    f"The input array size of {len(quantities)} is greater than the maximum "
                    f"allowed of {doc.MAX_INPUT_ITEMS}.",
                    doc.MAX_INPUT_SIZE_EXCEEDED,
                )
            )
        omitted = [n for n, q in enumerate(quantities) if "changeFromQuantity" not in q]
        if omitted:
            raise _Refused(
                _error(
                    f"changeFromQuantity is required on every quantity as of {doc.API_VERSION} "
                    f"(null opts out of the check); missing at quantities {omitted}",
                    "INVALID_VARIABLE",
                )
            )
        fingerprint = hashlib.sha256(json.dumps(given, sort_keys=True).encode()).hexdigest()
        if key not in self._answers:
            self._answers[key] = (fingerprint, self._set_quantities(given))
            while len(self._answers) > IDEMPOTENCY_KEYS_KEPT:
                self._answers.popitem(last=False)
            answer = self._answers[key][1]
        elif self._answers[key][0] == fingerprint:
            answer = self._answers[key][1]  # a resend: the first answer, nothing applied again
        else:
            self.market.counters.rejected += 1
            mismatch = "The idempotency key was already used with other parameters"
            answer = self._payload(
                [(doc.IDEMPOTENCY_KEY_PARAMETER_MISMATCH, ["idempotent", "key"], mismatch)], None
            )
        return {
            field.response_key: _render(answer, field.selections, "InventorySetQuantitiesPayload")
        }

    def _set_quantities(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """All or nothing: any userError and no quantity changes."""
        listings = self.market.listings
        errors: list[tuple[str, list[str | int], str]] = []
        if given["name"] not in doc.QUANTITY_NAMES:
            errors.append(
                (
                    doc.INVALID_NAME,
                    ["input", "name"],
                    "The quantity name must be available or on_hand.",
                )
            )
        elif given["name"] != doc.QUANTITY_NAME:
            errors.append(
                (
                    doc.INVALID_NAME,
                    ["input", "name"],
                    "This store sets only the available quantity.",
                )
            )
        if given["reason"] not in doc.REASONS:
            errors.append(
                (doc.INVALID_REASON, ["input", "reason"], "The specified reason is invalid.")
            )
        locations = {li.ids.get("location_id") for li in listings.values()}
        seen: set[tuple[str, str]] = set()
        planned: list[tuple[SandboxListing, int]] = []
        for n, q in enumerate(given["quantities"]):
            at: list[str | int] = ["input", "quantities", n]
            item, location, qty = q["inventoryItemId"], q["locationId"], q["quantity"]
            listing = listings.get(item)
            if (item, location) in seen:
                errors.append(
                    (
                        doc.NO_DUPLICATE_PAIR,
                        at,
                        "The combination of inventoryItemId and locationId must be unique.",
                    )
                )
            elif listing is None:
                errors.append(
                    (
                        doc.INVALID_INVENTORY_ITEM,
                        [*at, "inventoryItemId"],
                        "The specified inventory item could not be found.",
                    )
                )
            elif location not in locations:
                errors.append(
                    (
                        doc.INVALID_LOCATION,
                        [*at, "locationId"],
                        "The specified location could not be found.",
                    )
                )
            elif listing.ids.get("location_id") != location:
                errors.append(
                    (
                        doc.ITEM_NOT_STOCKED_AT_LOCATION,
                        [*at, "locationId"],
                        "The specified inventory item is not stocked at the location.",
                    )
                )
            elif qty < 0:
                errors.append(
                    (
                        doc.INVALID_QUANTITY_NEGATIVE,
                        [*at, "quantity"],
                        "The quantity can't be negative.",
                    )
                )
            elif qty > doc.MAX_QUANTITY:
                errors.append(
                    (
                        doc.INVALID_QUANTITY_TOO_HIGH,
                        [*at, "quantity"],
                        f"The quantity can't be higher than {doc.MAX_QUANTITY:,}.",
                    )
                )
            elif q["changeFromQuantity"] is not None and q["changeFromQuantity"] != listing.qty:
                errors.append(
                    (
                        doc.CHANGE_FROM_QUANTITY_STALE,
                        [*at, "changeFromQuantity"],
                        "The specified compare quantity does not match the current quantity.",
                    )
                )
            else:
                planned.append((listing, qty))
            seen.add((item, location))
        if errors:
            self.market.counters.rejected += 1
            return self._payload(errors, None)
        changes = []
        for listing, qty in planned:
            delta = qty - listing.qty
            listing.qty = qty
            listing.updates += 1
            changes.append(
                {
                    "name": doc.QUANTITY_NAME,
                    "delta": delta,
                    "quantityAfterChange": qty,
                    "item": {"id": listing.key},
                    "location": {"id": listing.ids.get("location_id")},
                }
            )
        group = {
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "reason": given["reason"],
            "referenceDocumentUri": given.get("referenceDocumentUri"),
            "changes": changes,
        }
        return self._payload([], group)

    def _update_variants(self, field: Field, variables: Mapping[str, Any]) -> dict[str, Any]:
        """productVariantsBulkUpdate of prices: all or nothing [PV]."""
        arguments = {
            name: resolve(value, dict(variables)) for name, value in field.arguments.items()
        }
        problems = _coerce(arguments["productId"], "ID!", ["productId"]) + _coerce(
            arguments["variants"], f"[{doc.VARIANT_INPUT_TYPE}!]!", ["variants"]
        )
        if problems:  # inline literals of the wrong shape
            raise _Refused(
                *(
                    _error(
                        f"Argument has an invalid value: {'.'.join(map(str, p))}: {e}",
                        "argumentLiteralsIncompatible",
                    )
                    for p, e in problems
                )
            )
        product, variants = arguments["productId"], arguments["variants"]
        by_variant = {_variant_gid(li): li for li in self.market.listings.values()}
        currency = self.market.currency(doc.CURRENCY)
        errors: list[tuple[str, list[str | int], str]] = []
        planned: list[tuple[SandboxListing, str]] = []
        if product not in {_product_gid(li) for li in by_variant.values()}:
            errors.append((doc.PRODUCT_DOES_NOT_EXIST, ["productId"], "Product does not exist"))
        for n, variant in enumerate(variants):
            at: list[str | int] = ["variants", n]
            listing = by_variant.get(variant.get("id"))
            price = variant.get("price")
            if listing is None:
                errors.append(
                    (
                        doc.PRODUCT_VARIANT_DOES_NOT_EXIST,
                        [*at, "id"],
                        "Product variant does not exist",
                    )
                )
            elif _product_gid(listing) != product:
                errors.append(
                    (doc.MUST_BE_FOR_THIS_PRODUCT, [*at, "id"], "Input must be for this product.")
                )
            elif price is None:
                continue  # nothing to set
            elif (refusal := _price_refusal(price, currency)) is not None:
                errors.append((refusal[0], [*at, "price"], refusal[1]))
            else:
                planned.append((listing, price))
        if errors:
            self.market.counters.rejected += 1
            answer: dict[str, Any] = {"product": None, "productVariants": None}
        else:
            places = Decimal(10) ** -decimals(currency)
            for listing, price in planned:
                listing.price = str(Decimal(price).quantize(places))
                listing.updates += 1
            answer = {
                "product": {"id": product},
                "productVariants": [_variant_node(li) for li, _ in planned],
            }
        answer["userErrors"] = [
            {"code": code, "field": [str(p) for p in path], "message": message}
            for code, path, message in errors
        ]
        return {
            field.response_key: _render(
                answer, field.selections, "ProductVariantsBulkUpdatePayload"
            )
        }

    @staticmethod
    def _payload(
        errors: Sequence[tuple[str, list[str | int], str]], group: dict[str, Any] | None
    ) -> dict[str, Any]:
        return {
            "inventoryAdjustmentGroup": group,
            "userErrors": [
                {"code": code, "field": [str(p) for p in path], "message": message}
                for code, path, message in errors
            ],
        }

    def _query_root(self, variables: dict[str, Any]) -> dict[str, Any]:
        def item(args: Mapping[str, Any]) -> dict[str, Any] | None:
            listing = self.market.listings.get(resolve(args["id"], variables))
            return None if listing is None else self._item_node(listing, variables)

        return {"inventoryItem": item}

    @staticmethod
    def _item_node(listing: SandboxListing, variables: dict[str, Any]) -> dict[str, Any]:
        def level(args: Mapping[str, Any]) -> dict[str, Any] | None:
            if resolve(args["locationId"], variables) != listing.ids.get("location_id"):
                return None
            return {
                "quantities": lambda a: [
                    {"name": name, "quantity": listing.qty}
                    for name in resolve(a["names"], variables)
                    if name == doc.QUANTITY_NAME
                ],
                "location": {"id": listing.ids.get("location_id")},
                "item": {"id": listing.key},
            }

        return {"id": listing.key, "inventoryLevel": level, "variant": _variant_node(listing)}


def _price_refusal(price: str, currency: str) -> tuple[str, str] | None:
    """The userError code and message of a variant price the store would not take: a
    negative one, or not a decimal with at most the currency's decimals (0 is a price:
    a free variant)."""
    if price.startswith("-"):
        return doc.NEGATIVE_PRICE_VALUE, "Price cannot take a negative value."
    problem = (
        None if price.strip("0.") == "" and price[:1] == "0" else price_problem(price, currency)
    )
    return None if problem is None else (doc.INVALID_INPUT, f"Price is invalid: {problem}")


def _variant_gid(listing: SandboxListing) -> str:
    """The one variant of the inventory item's product, in the sandbox's model."""
    return "gid://shopify/ProductVariant/" + listing.key.rsplit("/", 1)[-1]


def _product_gid(listing: SandboxListing) -> str:
    return "gid://shopify/Product/" + listing.key.rsplit("/", 1)[-1]


def _variant_node(listing: SandboxListing) -> dict[str, Any]:
    return {
        "id": _variant_gid(listing),
        "price": listing.price or "0.00",
        "product": {"id": _product_gid(listing)},
    }


SANDBOX: SandboxFactory = ShopifySandbox
