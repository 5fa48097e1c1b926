"""The whole lifecycle through the CLI, in-process against moto: the first proof the tool works."""
from tests.conftest import REGION, setup_args, snapshot


def test_setup_rerun_list_teardown_leaves_account_as_before(cli, account):
    before = snapshot(account)
    created = cli(*setup_args("demo"), "--output", "json")
    assert created.code == 0, created.stderr
    result = created.json["result"]
    assert result["instance_id"].startswith("i-")
    assert result["ssh_command"].startswith("ssh -i ")
    assert {r["action"] for r in result["resources"]} == {"created"}

    again = cli(*setup_args("demo"), "--output", "json")
    assert again.code == 0, again.stderr
    assert again.json["result"]["instance_id"] == result["instance_id"]
    assert len(snapshot(account)["instances"]) == 1

    listed = cli("list", "--region", REGION, "--output", "json")
    assert [d["name"] for d in listed.json["result"]["deployments"]] == ["demo"]

    gone = cli("teardown", "--region", REGION, "--name", "demo", "--yes", "--output", "json")
    assert gone.code == 0, gone.stderr
    assert snapshot(account) == before
    again = cli("teardown", "--region", REGION, "--name", "demo", "--yes")
    assert again.code == 0 and "No deployment named demo" in again.stdout


def test_package_version_matches_pyproject():
    import re
    from pathlib import Path

    from amazonei_setup import __version__

    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1) == __version__
