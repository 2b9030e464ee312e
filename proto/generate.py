"""Writes proto/events.schema.json and proto/asyncapi.yaml from the Structs in invsync.events.

The Structs are the single source of the wire contract; these files are its published
form for integrators in other languages. `--check` exits 1 when the files are stale,
so CI catches a contract change that was not regenerated.

    python proto/generate.py           # rewrite the files
    python proto/generate.py --check   # exit 1 if they differ from the Structs
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import msgspec

try:
    from invsync import events
except ImportError as exc:  # a clone that was never installed
    raise SystemExit(f"{exc}: install this tree first (pip install -e .)") from exc

PROTO_DIR = Path(__file__).resolve().parent
# The Structs are read from the installed package: an editable install is this tree,
# a plain one a copy of it, which `main` checks is current before writing anything.
SOURCE_EVENTS = PROTO_DIR.parent / "python" / "invsync" / "events.py"

SCHEMA_FILE = "events.schema.json"
ASYNCAPI_FILE = "asyncapi.yaml"
CONTRACT_VERSION = "1.1.0"

STOCK: list[type[msgspec.Struct]] = [
    events.StockSet,
    events.StockAdjust,
    events.StockReceived,
    events.StockReleased,
    events.StockDamaged,
    events.StockTransfer,
    events.StockInbound,
]
ORDER: list[type[msgspec.Struct]] = [
    events.OrderPlaced,
    events.OrderCancelled,
    events.OrderShipped,
    events.OrderFulfillmentFailed,
    events.OrderReturned,
]
CATALOG: list[type[msgspec.Struct]] = [events.PriceSet, events.PromoSet]
MESSAGES: list[type[msgspec.Struct]] = [
    *STOCK,
    *ORDER,
    *CATALOG,
    events.Batch,
    events.ReserveRequest,
    events.ReservationGroup,
    events.Vote,
    events.ReserveReply,
    events.ClockTick,
    events.LeaderEpoch,
    events.ChannelQuantities,
    events.PriceUpdate,
    events.Route,
    events.Alert,
    events.DeadLetter,
    events.AuditRecord,
    events.ChannelAck,
    events.SkuQuery,
    events.ChannelQuery,
    events.ChannelPage,
]
INBOUND_UNION = "InboundEvent"

PREFIX_PARAMETER = {"default": "inv", "description": "Subject prefix of this deployment."}
CHANNEL_PARAMETER = {"description": "Sales channel id from the policy, e.g. `shopify`."}
LOCATION_PARAMETER = {"description": "Location id from the policy, e.g. `wh-3`."}

# Section 7 of the contract: the explanation's JSON is built by the engine, not a Struct.
SKU_EXPLANATION = {
    "title": "SkuExplanation",
    "description": "How every number of a SKU came about; `{ok: false, error}` on a bad query.",
    "type": "object",
    "required": [
        "sku",
        "condition",
        "ats",
        "on_hand",
        "reserved",
        "backordered",
        "safety",
        "inbound",
        "quarantined",
        "locations",
        "channels",
    ],
    "properties": {
        "sku": {"type": "string"},
        "condition": {"type": "string"},
        "ats": {"type": "integer"},
        "on_hand": {"type": "integer", "description": "Sellable, counted units on hand."},
        "reserved": {"type": "integer"},
        "backordered": {"type": "integer"},
        "safety": {"type": "integer"},
        "inbound": {"type": "integer"},
        "quarantined": {"type": "integer"},
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "on_hand": {"type": "integer"},
                    "counted": {"type": "integer", "description": "On hand × count_pct."},
                    "online": {"type": "boolean"},
                    "quarantined": {"type": "integer"},
                    "inbound": {"type": "integer"},
                },
            },
        },
        "channels": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "channel": {"type": "string"},
                    "tier": {"type": "integer"},
                    "shown": {"type": "integer"},
                    "reason": {"type": "string", "description": "The formula with its numbers."},
                    "buffer_auto": {
                        "type": "object",
                        "description": 'Present where `buffer = "auto"`: the buffer in use '
                        "and its inputs (CONTRACT 13), as of `computed_at`.",
                        "properties": {
                            "buffer": {"type": "integer"},
                            "formula": {
                                "type": "integer",
                                "description": "max(ceil(risk × units), clumps) with units ="
                                " Σ rate × (push lag + order lag), before buffer_min and"
                                " buffer_max.",
                            },
                            "clumps": {
                                "type": "integer",
                                "description": "The p99 of a Poisson count of those units: the"
                                " clumps a steady rate sells in.",
                            },
                            "risk": {"type": "number"},
                            "min": {"type": "integer"},
                            "max": {"type": ["integer", "null"]},
                            "push_lag_s": {"type": "number"},
                            "push_lag_measured": {
                                "type": "boolean",
                                "description": "False: the policy's lag_s, until acks measure it.",
                            },
                            "sellers": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "channel": {"type": "string"},
                                        "rate": {"type": "number", "description": "Units/s."},
                                        "order_lag_s": {"type": "number"},
                                        "order_lag_measured": {"type": "boolean"},
                                    },
                                },
                            },
                            "part": {
                                "type": ["object", "null"],
                                "description": "A kit whose part's sales (singles and every"
                                " kit it is in) ask for more than the kit's own: that part;"
                                " `sellers` are then its sales in kits (its rates over"
                                " per_kit).",
                                "properties": {
                                    "sku": {"type": "string"},
                                    "per_kit": {"type": "integer"},
                                },
                            },
                            "computed_at": {"type": ["string", "null"], "format": "date-time"},
                            "reason": {"type": "string"},
                        },
                    },
                },
            },
        },
        "velocity": {
            "type": "array",
            "description": "Sales rate (units/s) per channel that sold the SKU: the estimate"
            " is the largest of a fast and a slow decayed rate, a decayed peak, a floor of"
            " one unit over the time since the last sale (plus the slow window) and a"
            " day-long decayed rate.",
            "items": {
                "type": "object",
                "properties": {
                    "channel": {"type": "string"},
                    "rate": {"type": "number"},
                    "fast": {"type": "number"},
                    "slow": {
                        "type": "number",
                        "description": "For a freshly started engine's first 8 slow"
                        " half-lives, divided by the share of a steady rate its count"
                        " holds yet (at most doubled).",
                    },
                    "peak": {"type": "number"},
                    "floor": {"type": "number"},
                    "long": {
                        "type": "number",
                        "description": "The day-long rate (half-life"
                        " velocity_long_half_life_s): a steady SKU's rate through hours"
                        " without a sale. It counts up from 0 in a freshly started engine.",
                    },
                    "slow_share": {
                        "type": "number",
                        "description": "Present while a freshly started engine corrects its"
                        " slow rates: the share of a steady rate its counts hold yet, which"
                        " `slow` was divided by.",
                    },
                },
            },
        },
        "prices": {
            "type": "array",
            "description": "Present once the SKU has a price: per priced channel, the price"
            " its rule computes now, the one last published, and each guard's verdict.",
            "items": {
                "type": "object",
                "properties": {
                    "channel": {"type": "string"},
                    "price": {"type": "string", "description": 'Decimal, e.g. "21.99".'},
                    "currency": {"type": "string"},
                    "published": {"type": ["string", "null"]},
                    "formula": {"type": "string"},
                    "promo": {"type": ["string", "null"]},
                    "guards": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "rule": {"enum": list(get_args(events.GuardRule))},
                                "ok": {"type": "boolean"},
                                "limit": {"type": ["string", "null"]},
                                "detail": {"type": "string"},
                            },
                        },
                    },
                    "held_by": {"type": ["string", "null"]},
                    "reason": {"type": "string", "description": "The whole line, in words."},
                },
            },
        },
        "protect": {
            "type": "array",
            "description": "Present where a tier's protect is \"auto\": this SKU's level per"
            " tier, with the EMSR-b inputs (unit value, mean demand over protect_horizon_s)"
            " of automatic ones.",
            "items": {
                "type": "object",
                "properties": {
                    "tier": {"type": "integer"},
                    "protect": {"type": "integer"},
                    "auto": {"type": "boolean"},
                    "value": {"type": "number"},
                    "demand": {"type": "number"},
                },
            },
        },
    },
}


def _clean_descriptions(node: Any) -> None:
    """Docstrings as `inspect.cleandoc` leaves them, whichever way msgspec or Python
    indented them (msgspec 0.23 and Python 3.13 dedent, earlier ones do not)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = inspect.cleandoc(value)
            else:
                _clean_descriptions(value)
    elif isinstance(node, list):
        for item in node:
            _clean_descriptions(item)


def _components(ref_template: str) -> dict[str, Any]:
    """Schemas of every message, plus the inbound union that a batch's items follow."""
    (union, *_), components = msgspec.json.schema_components(
        [events.InboundEvent, *MESSAGES], ref_template=ref_template
    )
    _clean_descriptions(components)
    components[INBOUND_UNION] = {
        "description": "Any event the log carries; producers send only stock and order events.",
        **union,
    }
    batch_events = components["Batch"]["properties"]["events"]
    batch_events["items"] = {"$ref": ref_template.format(name=INBOUND_UNION)}
    return components


def schema_document() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every message, one `$defs` entry per Struct."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"invsync wire contract {CONTRACT_VERSION}",
        "description": "Generated from invsync.events by proto/generate.py; do not edit.",
        "$defs": _components("#/$defs/{name}"),
    }


def _asyncapi_schemas() -> dict[str, Any]:
    """AsyncAPI's schema dialect names the discriminator property with a plain string."""
    schemas = _components("#/components/schemas/{name}")
    for schema in schemas.values():
        if isinstance(schema.get("discriminator"), dict):
            schema["discriminator"] = schema["discriminator"]["propertyName"]
    schemas["SkuExplanation"] = SKU_EXPLANATION
    return schemas


def _message(name: str, doc: str | None, *, inbound: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "summary": inspect.cleandoc(doc or name).splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
    }
    if inbound:
        message["traits"] = [{"$ref": "#/components/messageTraits/LoggedEvent"}]
    return message


def _channel(
    address: str | None, description: str, names: Sequence[str], **parameters: dict[str, Any]
) -> dict[str, Any]:
    channel: dict[str, Any] = {"address": address, "description": description}
    if parameters:
        channel["parameters"] = parameters
    channel["messages"] = {name: {"$ref": f"#/components/messages/{name}"} for name in names}
    return channel


def _operation(
    action: str, channel: str, names: Sequence[str], summary: str, reply: str | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names],
    }
    if reply is not None:
        reply_names = _CHANNELS[reply]["messages"]
        operation["reply"] = {
            "channel": {"$ref": f"#/channels/{reply}"},
            "messages": [{"$ref": f"#/channels/{reply}/messages/{name}"} for name in reply_names],
        }
    return operation


_STOCK_NAMES = [cls.__name__ for cls in STOCK] + ["Batch"]
_ORDER_NAMES = [cls.__name__ for cls in ORDER] + ["Batch"]
_CATALOG_NAMES = [cls.__name__ for cls in CATALOG] + ["Batch"]
_CHANNELS: dict[str, dict[str, Any]] = {
    "stock": _channel(
        "{prefix}.stock.{location}",
        "Stock events from WMS and stores, logged in JetStream.",
        _STOCK_NAMES,
        prefix=PREFIX_PARAMETER,
        location=LOCATION_PARAMETER,
    ),
    "order": _channel(
        "{prefix}.order.{channel}",
        "Order events from channels and the OMS, logged in JetStream.",
        _ORDER_NAMES,
        prefix=PREFIX_PARAMETER,
        channel=CHANNEL_PARAMETER,
    ),
    "catalog": _channel(
        "{prefix}.catalog.{source}",
        "Prices and promotions from a catalog (PIM, ERP, pricing tool), logged in JetStream.",
        _CATALOG_NAMES,
        prefix=PREFIX_PARAMETER,
        source={"description": "Who sends them, e.g. `erp`; any subject token."},
    ),
    "reserve": _channel(
        "{prefix}.reserve.{channel}",
        "Reservation requests (request/reply); answered once the request is in the log.",
        ["ReserveRequest"],
        prefix=PREFIX_PARAMETER,
        channel=CHANNEL_PARAMETER,
    ),
    "reserveReply": _channel(
        None, "The requester's NATS inbox (a dynamic address).", ["ReserveReply"]
    ),
    "logReserve": _channel(
        "{prefix}.log.reserve.{channel}",
        "Reservation requests as appended to the log by the service, `ts` stamped, grouped.",
        ["ReservationGroup"],
        prefix=PREFIX_PARAMETER,
        channel=CHANNEL_PARAMETER,
    ),
    "logVote": _channel(
        "{prefix}.log.vote",
        "A partition's vote on a reservation spanning partitions (Nats-Msg-Id "
        "`vote:<request_id>:<partition>`); the first vote per partition counts.",
        ["Vote"],
        prefix=PREFIX_PARAMETER,
    ),
    "logClock": _channel(
        "{prefix}.log.clock",
        "Clock ticks appended to the log by the service; holds expire on them.",
        ["ClockTick"],
        prefix=PREFIX_PARAMETER,
    ),
    "logLeader": _channel(
        "{prefix}.log.leader.{partition}",
        "A partition's new leader's epoch entry; later log writes of older leaders are refused.",
        ["LeaderEpoch"],
        prefix=PREFIX_PARAMETER,
        partition={"description": "Partition number, 0 when there is one."},
    ),
    "quantities": _channel(
        "{prefix}.qty.{channel}",
        "What each channel may show, for the SKUs whose shown quantity changed.",
        ["ChannelQuantities"],
        prefix=PREFIX_PARAMETER,
        channel=CHANNEL_PARAMETER,
    ),
    "prices": _channel(
        "{prefix}.price.{channel}",
        "A channel's new price for one SKU: changed, and every guard passed.",
        ["PriceUpdate"],
        prefix=PREFIX_PARAMETER,
        channel=CHANNEL_PARAMETER,
    ),
    "route": _channel(
        "{prefix}.route.{location}",
        "Where each committed order line ships from.",
        ["Route"],
        prefix=PREFIX_PARAMETER,
        location=LOCATION_PARAMETER,
    ),
    "alert": _channel(
        "{prefix}.alert.{kind}",
        "Operator alerts, one subject per kind.",
        ["Alert"],
        prefix=PREFIX_PARAMETER,
        kind={
            "enum": list(get_args(events.AlertKind)),
            "description": "The alert's kind.",
        },
    ),
    "deadLetters": _channel(
        "{prefix}.dlq", "Messages refused as bad input.", ["DeadLetter"], prefix=PREFIX_PARAMETER
    ),
    "audit": _channel(
        "{prefix}.audit", "One record per applied change.", ["AuditRecord"], prefix=PREFIX_PARAMETER
    ),
    "querySku": _channel(
        "{prefix}.query.sku",
        "Explain a SKU (request/reply).",
        ["SkuQuery"],
        prefix=PREFIX_PARAMETER,
    ),
    "querySkuReply": _channel(
        None, "The requester's NATS inbox (a dynamic address).", ["SkuExplanation"]
    ),
    "queryChannel": _channel(
        "{prefix}.query.channel",
        "Every quantity last published on a channel, in pages, as of a `seq` (request/reply):"
        " a connector's resync point on start and after a gap in `seq`.",
        ["ChannelQuery"],
        prefix=PREFIX_PARAMETER,
    ),
    "queryChannelReply": _channel(
        None,
        "The requester's NATS inbox (a dynamic address); a bad query is answered"
        " `{ok: false, error}`.",
        ["ChannelPage"],
    ),
    "ack": _channel(
        "{prefix}.ack.{channel}",
        "Connectors acknowledge each quantities message once the platform accepted it.",
        ["ChannelAck"],
        prefix=PREFIX_PARAMETER,
        channel=CHANNEL_PARAMETER,
    ),
}

_OPERATIONS = {
    "receiveStock": _operation("receive", "stock", _STOCK_NAMES, "Apply stock events."),
    "receiveOrders": _operation("receive", "order", _ORDER_NAMES, "Apply order events."),
    "receiveCatalog": _operation(
        "receive", "catalog", _CATALOG_NAMES, "Apply prices and promotions."
    ),
    "reserve": _operation(
        "receive", "reserve", ["ReserveRequest"], "Hold units for a checkout.", "reserveReply"
    ),
    "appendReserve": _operation(
        "send",
        "logReserve",
        ["ReservationGroup"],
        "Log reservation requests (grouped) before deciding them.",
    ),
    "appendVote": _operation(
        "send",
        "logVote",
        ["Vote"],
        "Log this partition's vote on a reservation spanning partitions, once prepared.",
    ),
    "appendClock": _operation("send", "logClock", ["ClockTick"], "Log a clock tick every second."),
    "appendEpoch": _operation(
        "send", "logLeader", ["LeaderEpoch"], "Fence the log on taking a partition's lease."
    ),
    "publishQuantities": _operation(
        "send", "quantities", ["ChannelQuantities"], "Tell a channel what to show."
    ),
    "publishPrices": _operation(
        "send", "prices", ["PriceUpdate"], "Tell a channel its price for a SKU."
    ),
    "publishRoutes": _operation("send", "route", ["Route"], "Route committed order lines."),
    "publishAlerts": _operation("send", "alert", ["Alert"], "Raise an alert."),
    "publishDeadLetters": _operation(
        "send", "deadLetters", ["DeadLetter"], "Dead-letter bad input."
    ),
    "publishAudit": _operation("send", "audit", ["AuditRecord"], "Record an applied change."),
    "querySku": _operation(
        "receive", "querySku", ["SkuQuery"], "Explain a SKU's numbers.", "querySkuReply"
    ),
    "queryChannel": _operation(
        "receive",
        "queryChannel",
        ["ChannelQuery"],
        "Page through what a channel was last told to show.",
        "queryChannelReply",
    ),
    "receiveAcks": _operation("receive", "ack", ["ChannelAck"], "Track channel feed freshness."),
}


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0.0 description of every subject, seen from the invsync service."""
    logged = {*STOCK, *ORDER, *CATALOG, events.Batch}
    messages = {
        cls.__name__: _message(cls.__name__, cls.__doc__, inbound=cls in logged) for cls in MESSAGES
    }
    messages["SkuExplanation"] = _message("SkuExplanation", str(SKU_EXPLANATION["description"]))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "invsync",
            "version": CONTRACT_VERSION,
            "description": (
                "Multichannel inventory allocation over NATS. Generated from invsync.events"
                " by proto/generate.py; do not edit. Bodies are JSON, or MessagePack when"
                " the header `Content-Type: application/msgpack` is set."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "A NATS server with JetStream enabled.",
            }
        },
        "channels": _CHANNELS,
        "operations": _OPERATIONS,
        "components": {
            "schemas": _asyncapi_schemas(),
            "messages": messages,
            "messageTraits": {
                "LoggedEvent": {
                    "headers": {
                        "type": "object",
                        "properties": {
                            "Content-Type": {
                                "type": "string",
                                "enum": ["application/json", "application/msgpack"],
                                "description": "Body encoding; JSON when absent.",
                            },
                            "Nats-Msg-Id": {
                                "type": "string",
                                "description": "Set to `event_id`: JetStream de-duplicates.",
                            },
                        },
                    }
                }
            },
        },
    }


_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.-]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})


def _yaml_key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _YAML_WORDS
    return key if plain else json.dumps(key)


def _yaml_scalar(value: object) -> str:
    """JSON scalars are valid YAML flow scalars, and quoted strings never change type."""
    if isinstance(value, dict | list):
        assert not value, "only empty containers are written inline"
    return json.dumps(value, ensure_ascii=False)


def _yaml_lines(value: dict[str, Any] | list[Any], depth: int) -> list[str]:
    pad = "  " * depth
    lines: list[str] = []
    items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
    for key, item in items:
        lead = f"{pad}- " if key is None else f"{pad}{_yaml_key(key)}:"
        if isinstance(item, dict | list) and item:
            nested = _yaml_lines(item, depth + 1)
            if key is None:
                lines.append(lead + nested[0].lstrip())
                lines.extend(nested[1:])
            else:
                lines.append(lead)
                lines.extend(nested)
        else:
            lines.append(f"{lead}{'' if key is None else ' '}{_yaml_scalar(item)}")
    return lines


def to_yaml(document: dict[str, Any]) -> str:
    """Block-style YAML for JSON-like data, so the tool needs no YAML library."""
    return "\n".join(_yaml_lines(document, 0)) + "\n"


def render() -> dict[str, str]:
    """The generated files, by name, as they should be on disk."""
    header = "# Generated from invsync.events by proto/generate.py; do not edit.\n"
    return {
        SCHEMA_FILE: json.dumps(schema_document(), indent=2, ensure_ascii=False) + "\n",
        ASYNCAPI_FILE: header + to_yaml(asyncapi_document()),
    }


def stale_files(directory: Path = PROTO_DIR) -> list[str]:
    """Names of generated files in `directory` that are missing or out of date."""
    stale = []
    for name, text in render().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def installed_copy_is_stale() -> bool:
    """True when invsync is installed as a copy (not editable) of another events.py."""
    installed = Path(events.__file__).resolve()
    if installed == SOURCE_EVENTS or not SOURCE_EVENTS.exists():
        return False
    return installed.read_bytes() != SOURCE_EVENTS.read_bytes()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    args = parser.parse_args(argv)
    if installed_copy_is_stale():
        print(
            f"the installed invsync ({events.__file__}) differs from {SOURCE_EVENTS}:"
            ' install this tree first (pip install -e . or pip install ".[test]")',
            file=sys.stderr,
        )
        return 2
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"proto/{name} is stale: run python proto/generate.py", file=sys.stderr)
        return 1 if stale else 0
    for name, text in render().items():
        (PROTO_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote proto/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
