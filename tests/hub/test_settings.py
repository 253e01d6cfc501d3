"""Hub settings: config.toml and environment, their errors, and what is shown of them."""

from __future__ import annotations

import pytest

from dlbox.base.errors import UserError
from dlbox.hub import settings
from dlbox.hub.download import download


def test_a_misspelt_config_key_is_refused_with_the_near_match(hub_home):
    (hub_home / "config.toml").write_text('mirrorz = ["http://m/"]\n')
    with pytest.raises(UserError, match="did you mean 'mirrors'"):
        settings.load()


def test_environment_overrides_the_config_file(hub_home, monkeypatch):
    (hub_home / "config.toml").write_text('mirrors = ["http://a/"]\noffline = true\n[s3]\nregion = "eu-west-1"\n')
    s = settings.load()
    assert (s.mirrors, s.offline, s.s3.region) == (["http://a/"], True, "eu-west-1")
    monkeypatch.setenv("DLBOX_MIRROR", "http://b/, s3://c/d")
    monkeypatch.setenv("DLBOX_OFFLINE", "0")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "cn-north-1")
    s = settings.load()
    assert (s.mirrors, s.offline, s.s3.region) == (["http://b/", "s3://c/d"], False, "cn-north-1")


def test_dlbox_config_names_another_file(tmp_path, monkeypatch):
    (tmp_path / "site.toml").write_text("workers = 7\n")
    monkeypatch.setenv("DLBOX_CONFIG", str(tmp_path / "site.toml"))
    assert settings.load().workers == 7
    monkeypatch.setenv("DLBOX_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(UserError, match="does not exist"):
        settings.load()


def test_a_bad_offline_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DLBOX_OFFLINE", "maybe")
    with pytest.raises(UserError, match="DLBOX_OFFLINE=1 or DLBOX_OFFLINE=0"):
        settings.load()


def test_keys_are_masked_in_descriptions_and_urls(hub_home):
    (hub_home / "config.toml").write_text('[s3]\naccess_key_id = "AKIAREAL"\nsecret_access_key = "s3cr3t-value"\n')
    s = settings.load()
    assert "s3cr3t" not in str(s.describe()) and "AKIAREAL" not in str(s.describe())
    assert settings.redact("https://u:pw@host/x?X-Amz-Signature=abc&a=1") == "https://***@host/x?X-Amz-Signature=***&a=1"
    assert settings.redact("failed with s3cr3t-value", s.s3.secrets()) == "failed with ***"


def test_a_manual_dataset_says_how_to_get_it_and_where_it_goes(hub_home):
    with pytest.raises(UserError) as e:
        download("imagenet2012", only=["ILSVRC2012_devkit_t12.tar.gz"])
    msg = str(e.value)
    assert "you supply it" in msg and "image-net.org" in msg and "dlbox hub add imagenet2012 --file PATH" in msg
    assert str(hub_home / "hub" / "imagenet2012") in msg
