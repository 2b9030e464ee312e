"""The channels file: what a seller writes for `invsync connect` is read as written, and
every mistake is refused at load with the file, line and field to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from invsync.errors import ChannelsError
from invsync.gateway.config import load_channels
from invsync.gateway.secrets import CredentialError

GOOD = """\
[[channels]]
id = "amazon"
platform = "amazon"
base_url = "http://127.0.0.1:8790"
credentials = { refresh_token_env = "AMZ_REFRESH", client_id_env = "AMZ_ID", client_secret_file = "secrets/amz" }
listings = "listings/amazon.csv"
seller_id = "A1SELLER"
marketplace_id = "ATVPDKIKX0DER"
rate = 4.5
batch = 1

[[channels]]
id = "ebay"
platform = "ebay"
credentials = { refresh_token_env = "EBAY_REFRESH", client_id_env = "EBAY_ID", client_secret_env = "EBAY_SECRET" }
listings = "kv:inv_listings"
daily_revisions = 200
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "channels.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> ChannelsError:
    with pytest.raises(ChannelsError) as caught:
        load_channels(write(tmp_path, text))
    return caught.value


def line_of(text: str, fragment: str) -> int:
    """The last line holding `fragment` (a duplicate is refused where it repeats)."""
    return max(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_channels_are_read_with_options_overrides_and_listing_sources(tmp_path: Path) -> None:
    loaded = load_channels(write(tmp_path, GOOD))
    amazon, ebay = loaded.channels
    assert loaded.base == tmp_path
    assert (amazon.id, amazon.platform, amazon.base_url) == (
        "amazon",
        "amazon",
        "http://127.0.0.1:8790",
    )
    assert amazon.options == {"seller_id": "A1SELLER", "marketplace_id": "ATVPDKIKX0DER"}
    assert amazon.overrides == {"rate": 4.5, "batch": 1.0}
    assert amazon.credential_names == ("refresh_token", "client_id", "client_secret")
    assert amazon.listings_bucket is None
    assert amazon.listings_path(loaded.base) == tmp_path / "listings" / "amazon.csv"
    assert ebay.base_url is None
    assert ebay.listings_bucket == "inv_listings"
    assert ebay.overrides == {"daily_revisions": 200.0}


def test_secrets_come_from_env_and_files_relative_to_the_channels_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMZ_REFRESH", "Atzr|refresh")
    monkeypatch.setenv("AMZ_ID", "amzn1.application-oa2-client.x")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "amz").write_text("client-secret-value\n", encoding="utf-8")
    loaded = load_channels(write(tmp_path, GOOD))
    amazon = loaded.channels[0]
    secrets = amazon.secrets(loaded.base)
    assert {name: s.reveal() for name, s in secrets.items()} == {
        "refresh_token": "Atzr|refresh",
        "client_id": "amzn1.application-oa2-client.x",
        "client_secret": "client-secret-value",
    }
    settings = amazon.settings(secrets)
    assert settings.channel == "amazon"
    assert settings.credentials == secrets
    assert settings.options["seller_id"] == "A1SELLER"
    assert "Atzr|refresh" not in repr(settings)


def test_an_unset_credential_names_the_channel_and_variable_not_a_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EBAY_REFRESH", "v^1.1#refresh-secret")
    monkeypatch.delenv("EBAY_ID", raising=False)
    loaded = load_channels(write(tmp_path, GOOD))
    with pytest.raises(CredentialError) as caught:
        loaded.channels[1].secrets(loaded.base)
    assert "ebay" in str(caught.value)
    assert "EBAY_ID" in str(caught.value)
    assert "v^1.1#refresh-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("broken", "fragment", "field"),
    [
        ('platform = "ebay"', 'platform = "etsy"', 'channels["ebay"].platform'),
        ('listings = "kv:inv_listings"', 'listings = "kv:"', 'channels["ebay"].listings'),
        ("daily_revisions = 200", "daily_revisions = 0", 'channels["ebay"].daily_revisions'),
        ("rate = 4.5", 'rate = "fast"', 'channels["amazon"].rate'),
        ("batch = 1", "batch = 2.5", 'channels["amazon"].batch'),
        ("batch = 1", "bacth = 1", 'channels["amazon"].bacth'),
        (
            'base_url = "http://127.0.0.1:8790"',
            'base_url = "127.0.0.1"',
            'channels["amazon"].base_url',
        ),
        (
            'client_secret_env = "EBAY_SECRET"',
            'client_secret = "hunter2"',
            'channels["ebay"].credentials.client_secret',
        ),
        (
            'client_secret_env = "EBAY_SECRET"',
            'client_id_file = "id"',
            'channels["ebay"].credentials.client_id_file',
        ),
        ('id = "ebay"', 'id = "amazon"', 'channels["amazon"].id'),
    ],
)
def test_mistakes_are_refused_at_their_line_and_field(
    tmp_path: Path, broken: str, fragment: str, field: str
) -> None:
    text = GOOD.replace(broken, fragment)
    assert text != GOOD
    error = refusal(tmp_path, text)
    assert error.field == field
    assert error.line == line_of(text, fragment)
    assert error.source == str(tmp_path / "channels.toml")


def test_a_missing_required_key_points_at_its_channel(tmp_path: Path) -> None:
    text = GOOD.replace('listings = "kv:inv_listings"\n', "")
    error = refusal(tmp_path, text)
    assert error.field == 'channels["ebay"].listings'
    assert error.line == line_of(text, 'id = "ebay"') - 1


def test_a_secret_written_inline_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = GOOD.replace('client_secret_env = "EBAY_SECRET"', 'client_secret = "hunter2"')
    assert "hunter2" not in str(refusal(tmp_path, text))


def test_a_file_without_channels_or_with_a_stray_table_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, "# nothing yet\n").field == "channels"
    stray = refusal(tmp_path, GOOD + "\n[defaults]\nrate = 1\n")
    assert stray.field == "defaults"
    assert stray.line == line_of(GOOD + "\n[defaults]\nrate = 1\n", "[defaults]")


def test_syntax_errors_keep_the_parser_line(tmp_path: Path) -> None:
    text = GOOD + "oops =\n"
    error = refusal(tmp_path, text)
    assert error.field == "syntax"
    assert error.line == line_of(text, "oops =")


def test_an_unreadable_file_is_a_channels_error(tmp_path: Path) -> None:
    with pytest.raises(ChannelsError) as caught:
        load_channels(tmp_path / "absent.toml")
    assert caught.value.line == 0
