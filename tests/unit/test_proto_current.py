"""proto/ is the published contract: it must match the Structs it is generated from."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("proto_generate", PROTO_DIR / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = load_generator()


def test_proto_files_match_the_event_structs() -> None:
    stale = generate.stale_files()
    assert stale == [], f"stale: {stale}; run python proto/generate.py"


def copy_of_the_tree(tmp_path: Path) -> Path:
    """proto/ beside the Python sources without a built extension, as in a clone
    that was installed with `pip install .` rather than `pip install -e .`."""
    shutil.copytree(PROTO_DIR, tmp_path / "proto")
    package = PROTO_DIR.parent / "python" / "invsync"
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "__pycache__")
    shutil.copytree(package, tmp_path / "python" / "invsync", ignore=ignore)
    return tmp_path


def run_generator(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(tree / "proto" / "generate.py"), *args]
    return subprocess.run(
        command, check=False, cwd=tree, capture_output=True, text=True, timeout=60
    )


def test_generator_runs_where_the_source_tree_has_no_built_extension(tmp_path: Path) -> None:
    result = run_generator(copy_of_the_tree(tmp_path), "--check")
    assert (result.returncode, result.stderr) == (0, "")


def test_generator_refuses_an_installed_copy_older_than_the_sources(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path)
    events = tree / "python" / "invsync" / "events.py"
    events.write_text(events.read_text() + "\n# edited after installing\n")
    result = run_generator(tree)
    assert result.returncode == 2
    assert "pip install" in result.stderr
    assert (tree / "proto" / generate.SCHEMA_FILE).read_bytes() == (
        PROTO_DIR / generate.SCHEMA_FILE
    ).read_bytes()


def test_stale_check_notices_an_edited_file(tmp_path: Path) -> None:
    for name in generate.render():
        shutil.copy(PROTO_DIR / name, tmp_path / name)
    schema = tmp_path / generate.SCHEMA_FILE
    schema.write_text(schema.read_text().replace('"minimum": 0', '"minimum": 1', 1))
    (tmp_path / generate.ASYNCAPI_FILE).unlink()
    assert generate.stale_files(tmp_path) == [generate.SCHEMA_FILE, generate.ASYNCAPI_FILE]


def test_schema_documents_every_message_with_its_constraints() -> None:
    defs = json.loads(generate.render()[generate.SCHEMA_FILE])["$defs"]
    assert {cls.__name__ for cls in generate.MESSAGES} <= set(defs)
    qty = defs["StockReceived"]["properties"]["qty"]
    assert (qty["minimum"], qty["maximum"]) == (0, 2**63 - 1)
    assert defs["StockSet"]["properties"]["type"] == {"enum": ["stock.set"]}
    assert defs["Batch"]["properties"]["events"]["items"] == {"$ref": "#/$defs/InboundEvent"}
    assert defs["ReserveRequest"]["properties"]["hold_seconds"]["default"] == 900


def test_asyncapi_lists_every_subject_with_the_default_prefix() -> None:
    document = generate.asyncapi_document()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {
        "{prefix}.stock.{location}",
        "{prefix}.order.{channel}",
        "{prefix}.reserve.{channel}",
        "{prefix}.log.reserve.{channel}",
        "{prefix}.log.clock",
        "{prefix}.qty.{channel}",
        "{prefix}.route.{location}",
        "{prefix}.alert.{kind}",
        "{prefix}.dlq",
        "{prefix}.audit",
        "{prefix}.query.sku",
        "{prefix}.ack.{channel}",
    } <= addresses
    for channel in document["channels"].values():
        if channel["address"] is not None:
            assert channel["parameters"]["prefix"]["default"] == "inv"


def test_asyncapi_yaml_reads_back_as_the_same_document() -> None:
    yaml = pytest.importorskip("yaml")
    text = generate.render()[generate.ASYNCAPI_FILE]
    assert yaml.safe_load(text) == generate.asyncapi_document()
