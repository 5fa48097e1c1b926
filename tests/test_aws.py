"""One botocore Config for every client the tool builds, and it really reaches the wire."""
from __future__ import annotations

import pytest

from amazonei_setup import __version__


def test_every_client_has_adaptive_retries_timeouts_and_the_tools_user_agent(account):
    for aws in (account, account.in_region("eu-west-1")):
        for service in ("ec2", "iam", "sts"):
            config = aws.client(service).meta.config
            assert config.retries["mode"] == "adaptive"
            assert config.retries["total_max_attempts"] == 5
            assert (config.connect_timeout, config.read_timeout) == (5, 60)
            assert f"amazonei-setup/{__version__}" in config.user_agent_extra


def test_the_user_agent_is_sent_with_each_request(account):
    seen: list[str] = []
    account.sts.meta.events.register("before-send.sts.GetCallerIdentity",  # reads only; moto still answers
                                     lambda request, **_: seen.append(request.headers["User-Agent"].decode()))
    account.sts.get_caller_identity()
    assert len(seen) == 1 and f"amazonei-setup/{__version__}" in seen[0]


def test_aws_max_attempts_from_the_environment_wins(monkeypatch):
    """An explicit Config would silently override AWS_MAX_ATTEMPTS; users expect the variable to work."""
    from amazonei_setup.aws.client import _max_attempts

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    assert _max_attempts() == 2
    for junk in ("not-a-number", "0", "-3", ""):
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", junk)
        assert _max_attempts() == 5


def test_parsed_models_are_cached_where_xdg_cache_home_says_else_in_the_tools_home(tmp_path, monkeypatch):
    from amazonei_setup.local import paths

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "xdg" / "amazonei-setup"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid by the XDG spec: ignored
    assert paths.cache_dir() == paths.app_home() / "cache"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert paths.cache_dir() == paths.app_home() / "cache"


def test_a_models_second_load_comes_from_its_pickle_and_equals_botocores_parse(tmp_path, monkeypatch):
    from pathlib import Path

    import botocore
    import botocore.loaders

    from amazonei_setup.aws.botocore_data import CachedJSONFileLoader

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    found = next((Path(botocore.__file__).parent / "data" / "sts").glob("*/service-2.json*"))
    model = found.parent / "service-2"  # the loader takes the name without .json or .json.gz
    plain = botocore.loaders.JSONFileLoader().load_file(str(model))
    first = CachedJSONFileLoader().load_file(str(model))
    pickles = list((tmp_path / "amazonei-setup").glob("*.pickle"))
    assert first == plain and len(pickles) == 1
    opened: list[str] = []
    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "_load_file",
                        lambda self, path, open_method: opened.append(path))  # botocore's own parse, if used
    assert CachedJSONFileLoader().load_file(str(model)) == plain and opened == []


@pytest.mark.parametrize("service", ["ec2", "iam", "service-quotas"])
@pytest.mark.parametrize("kind", ["service-2", "paginators-1", "waiters-2", "endpoint-rule-set-1"])
def test_the_loader_answers_as_botocores_without_listing_every_service(service, kind, tmp_path, monkeypatch):
    import botocore.loaders
    from botocore.exceptions import DataNotFoundError, UnknownServiceError

    from amazonei_setup.aws import botocore_data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    try:
        expected = botocore.loaders.create_loader().load_service_model(service, kind)
    except (DataNotFoundError, UnknownServiceError) as err:  # e.g. a service without waiters
        expected = type(err)
    loader = botocore_data.create_loader()
    listed: list[str] = []
    monkeypatch.setattr(loader, "list_available_services", lambda type_name: listed.append(type_name) or [])
    try:
        answer = loader.load_service_model(service, kind)
    except (DataNotFoundError, UnknownServiceError) as err:
        answer = type(err)
    assert answer == expected
    if not isinstance(expected, type):  # a file botocore has: found without the walk over every service's
        assert listed == []            # directories (~0.1 s a kind); a missing one is botocore's own error


def test_an_unknown_service_is_botocores_error_naming_the_known_ones(tmp_path, monkeypatch):
    from botocore.exceptions import UnknownServiceError

    from amazonei_setup.aws import botocore_data

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for name in ("no-such-service", "../ec2", ""):
        with pytest.raises(UnknownServiceError, match="Valid service names are:.*ec2"):
            botocore_data.create_loader().load_service_model(name, "service-2")


def test_clients_of_one_service_share_one_service_model_across_sessions(account):
    """aws.share_client_classes: one ServiceModel per parsed model, so its lazily derived parts are built once."""
    other = account.in_region("eu-west-1")
    assert account.ec2.meta.service_model is other.ec2.meta.service_model
    assert account.ec2.meta.service_model is not account.iam.meta.service_model
    assert other.ec2.describe_regions()["Regions"]  # and a client built on the shared model still works


def test_clients_of_every_session_share_one_cache_of_event_name_aliases(account):
    """aws.share_client_classes: botocore's alias answers are worked out once per process, not once per client;
    hooks still reach the client, and an old event name is still renamed."""
    other = account.in_region("eu-west-1")
    assert account.ec2.meta.events._alias_name_cache is other.iam.meta.events._alias_name_cache
    seen: list[str] = []
    other.ec2.meta.events.register("before-parameter-build.ec2.DescribeRegions",
                                   lambda params, **_: seen.append("new name"))
    other.ec2.meta.events.register("before-call.ec2.DescribeRegions", lambda **_: seen.append("call"))
    other.ec2.describe_regions()
    assert seen == ["new name", "call"]
    for events in (account.ec2.meta.events, other.sts.meta.events):  # an old name, worked out once, then shared
        assert events._alias_event_name("before-call.api.pricing.GetProducts") == "before-call.pricing.GetProducts"
