"""`cost` (issue 7): the formula and its rounding, the dated catalog, the comparison table at 80
columns, the flags and the --latencies CSV, and the AWS Pricing API path with its fallback.

No test reaches AWS or the network: the catalog path must make no AWS call at all (asserted with
the credentials removed and every HTTP send failing), and the Pricing API is a real botocore client
under `botocore.stub.Stubber` (moto does not implement pricing).
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from rich.cells import cell_len
from rich.console import Console

from amazonei_setup.cli import render
from amazonei_setup.cli.environment import Environment
from amazonei_setup.cli.main import main
from amazonei_setup.core import catalog, cost
from tests.conftest import WIDE, CliResult

ESC = "\x1b"
OREGON = "US West (Oregon)"


# ---- fixtures --------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every HTTP request botocore would send fails the test instead (Stubber answers before this)."""
    sent: list[str] = []

    def refuse(self, request):
        sent.append(request.url)
        raise AssertionError(f"a test tried to reach the network: {request.url}")

    monkeypatch.setattr("botocore.httpsession.URLLib3Session.send", refuse)
    return sent


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """No AWS credentials anywhere, no instance metadata, a config file that does not exist."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-such-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-aws-credentials"))


@pytest.fixture
def no_aws_at_all(monkeypatch, no_credentials):
    """Building an Aws or making any AWS call fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("cost made an AWS call without --live-prices")

    monkeypatch.setattr("amazonei_setup.aws.client.Aws.__init__", forbidden)
    monkeypatch.setattr("botocore.client.BaseClient._make_api_call", forbidden)


def run(*argv: str, width: int = 80, aws=None) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin_isatty=False, stdout=out, stderr=err, width=width, aws=aws)
    code = main(["cost", *argv], env)
    return CliResult(code, out.getvalue(), err.getvalue())


def said(result: CliResult) -> str:
    """stderr as one line: where the console wraps must not matter to the assertions."""
    return " ".join(result.stderr.split())


def pricing_client():
    import boto3

    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                         region_name="us-east-1").client("pricing")


def ec2_item(instance_type: str, usd: str, *, usagetype: str = "", license_model: str = "No License required") -> str:
    """One PriceList entry as the Pricing API returns it (a JSON string), trimmed to what is read."""
    return json.dumps({
        "product": {"productFamily": "Compute Instance", "attributes": {
            "instanceType": instance_type, "location": OREGON, "operatingSystem": "Linux", "tenancy": "Shared",
            "preInstalledSw": "NA", "capacitystatus": "Used", "licenseModel": license_model,
            "usagetype": usagetype or f"USW2-BoxUsage:{instance_type}"}},
        "terms": {"OnDemand": {"ABC.JRTCKXETXF": {"priceDimensions": {"ABC.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "pricePerUnit": {"USD": usd},
            "description": f"${usd} per On Demand Linux {instance_type} Instance Hour"}}}}},
    })


def ei_item(accelerator_type: str, usd: str) -> str:
    return json.dumps({
        "product": {"productFamily": "Elastic Inference", "attributes": {
            "location": OREGON, "usagetype": f"USW2-ElasticInference:{accelerator_type}"}},
        "terms": {"OnDemand": {"X.JRTCKXETXF": {"priceDimensions": {"X.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "pricePerUnit": {"USD": usd}}}}}},
    })


def ec2_params(instance_type: str, location: str = OREGON, **extra) -> dict:
    fields = [("instanceType", instance_type), ("location", location), ("operatingSystem", "Linux"),
              ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used")]
    return {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "MaxResults": 100,
            "Filters": [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in fields], **extra}


def ei_params(location: str = OREGON) -> dict:
    return {"ServiceCode": "AmazonEI", "FormatVersion": "aws_v1", "MaxResults": 100,
            "Filters": [{"Type": "TERM_MATCH", "Field": "location", "Value": location},
                        {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "Elastic Inference"}]}


def page(*items: str, token: str | None = None) -> dict:
    answer = {"FormatVersion": "aws_v1", "PriceList": list(items)}
    if token:
        answer["NextToken"] = token
    return answer


class FakeAws:
    """What `cost` needs of an Aws: in_region(...).client("pricing"), with the regions asked recorded."""

    def __init__(self, client, region: str = "us-west-2", asked: list[str] | None = None):
        self.region, self._client, self.asked = region, client, asked if asked is not None else []

    def in_region(self, region: str) -> FakeAws:
        self.asked.append(region)
        return FakeAws(self._client, region, self.asked)

    def client(self, service: str):
        assert service == "pricing" and self.region == "us-east-1", (service, self.region)
        return self._client


# ---- the formula ------------------------------------------------------------------------------

def test_hourly_is_instance_plus_accelerator_and_nothing_without_one():
    assert cost.hourly_cost("0.085", "0.12") == Decimal("0.205")
    assert cost.hourly_cost(0.192) == Decimal("0.192")
    rows = cost.price_setups([cost.Setup("c5.large", "eia2.medium"), cost.Setup("p3.2xlarge")])
    assert [r.hourly_usd for r in rows] == [Decimal("0.205"), Decimal("3.06")]
    assert (rows[1].accelerator_usd, rows[1].accelerator_source) == (0, None)


def test_per_100k_is_hourly_times_latency_times_100k_over_3_6_million_ms():
    assert cost.per_100k_usd("0.205", 40) == Decimal("0.205") * 40 * 100_000 / 3_600_000
    assert cost.rounded(cost.per_100k_usd("0.205", 40)) == 0.2278  # 0.22777...
    assert cost.per_100k_usd("3.06", 12) == Decimal("1.02")  # one p3.2xlarge, 12 ms a request
    assert cost.inferences_per_hour(40) == 90_000
    assert cost.inferences_per_usd("0.205", 40) == Decimal(90_000) / Decimal("0.205")
    # per dollar and per 100k are the same fact
    assert cost.inferences_per_usd("0.205", 40) * cost.per_100k_usd("0.205", 40) == pytest.approx(100_000)


@pytest.mark.parametrize(("value", "places", "expected"), [
    ("0.00015", 4, 0.0002),  # half-up; float's round(0.00015, 4) gives 0.0001
    ("0.22775", 4, 0.2278),
    ("0.00004", 4, 0.0),
    ("1.96786", 4, 1.9679),
    ("147.6", 2, 147.6),
])
def test_rounding_is_half_up_on_the_decimal_value(value, places, expected):
    assert cost.rounded(Decimal(value), places) == expected


def test_json_row_rounds_money_to_4_decimals_half_up():
    # 0.0054 $/h at 1 ms: 0.00015 per 100k exactly, which float rounding would make 0.0001
    row = cost.price_setups([cost.Setup("g9.tiny", None, 1.0)], manual={"g9.tiny": 0.0054})[0].to_dict()
    assert row["per_100k_usd"] == 0.0002
    inf2 = cost.price_setups([cost.Setup("inf2.8xlarge", None, 7.0)])[0].to_dict()
    assert inf2["hourly_usd"] == 1.9679 and inf2["inferences_per_hour"] == 514285.71
    for key in ("hourly_usd", "per_100k_usd", "instance_hourly_usd", "accelerator_hourly_usd"):
        assert len(repr(inf2[key]).split(".")[1]) <= 4, key


# ---- the catalog -------------------------------------------------------------------------------

ISSUE_7_FIGURES = {  # us-west-2, USD/hour, on-demand: AWS's 2019 EI comparisons
    "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384, "m5.4xlarge": 0.768, "c5.large": 0.085,
    "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68, "p2.xlarge": 0.90, "p3.2xlarge": 3.06,
}
SPOT_CHECKED = {"g4dn.xlarge": 0.526, "inf1.xlarge": 0.228, "inf2.xlarge": 0.7582, "g5.xlarge": 1.006}


@pytest.mark.parametrize(("instance_type", "usd"), sorted({**ISSUE_7_FIGURES, **SPOT_CHECKED}.items()))
def test_catalog_holds_the_sourced_instance_prices(instance_type, usd):
    entry = catalog.INSTANCE_PRICES[instance_type]
    assert entry.hourly_usd == usd == catalog.INSTANCE_HOURLY_USD[instance_type]
    assert entry.verified


def test_every_catalog_price_names_its_source_and_date():
    assert set(catalog.INSTANCE_HOURLY_USD) == set(catalog.INSTANCE_PRICES)
    for name, entry in catalog.INSTANCE_PRICES.items():
        assert entry.type == name and entry.hourly_usd > 0 and entry.source and entry.as_of, name
    for name in SPOT_CHECKED:
        assert "vantage" in catalog.INSTANCE_PRICES[name].source and catalog.INSTANCE_PRICES[name].as_of == "2026-08-26"
    families = {name.split(".")[0] for name in catalog.INSTANCE_PRICES}
    assert {"t3", "m5", "c5", "r5", "g4dn", "g5", "inf1", "inf2", "p2", "p3"} <= families
    for accelerator in catalog.ACCELERATORS.values():
        assert accelerator.price_source and accelerator.hourly_usd > 0


def test_accelerator_prices_and_which_are_unverified():
    prices = {a.type: (a.hourly_usd, a.price_verified) for a in catalog.ACCELERATORS.values()}
    assert prices == {"eia1.medium": (0.13, True), "eia1.large": (0.26, True), "eia1.xlarge": (0.52, True),
                      "eia2.medium": (0.12, False), "eia2.large": (0.24, False), "eia2.xlarge": (0.34, False)}
    assert "us-east-1" in catalog.ACCELERATORS["eia2.medium"].price_note  # what the check found, and where


def test_the_catalog_api_the_wizard_and_list_use_still_answers():
    assert catalog.hourly_usd("m5.xlarge", "eia2.medium") == 0.312
    assert catalog.hourly_usd("m5.xlarge", None) == 0.192
    assert catalog.hourly_usd("x9.nothing", "eia2.medium") is None
    assert catalog.hourly_usd("m5.xlarge", "eia9.edited-tag") is None  # a hand-edited tag: no crash in list
    assert "eia2.medium" not in {a.type for a in catalog.accelerators_for_region("ap-northeast-1")}
    assert catalog.DEFAULT_ACCELERATOR in catalog.ACCELERATORS


def test_unverified_catalog_prices_are_marked_in_the_output():
    rows = cost.price_setups([cost.Setup("c5.large", "eia2.medium"), cost.Setup("c5.large", "eia1.medium"),
                              cost.Setup("t3.medium")])
    assert [r.verified for r in rows] == [False, True, False]


# ---- sorting and marks --------------------------------------------------------------------------

def priced(*setups: cost.Setup) -> list[cost.Priced]:
    return cost.price_setups(list(setups), manual={"x1.same": 0.2, "x2.same": 0.2})


def test_rows_sort_by_cost_per_100k_and_mark_the_cheapest_and_the_fastest():
    ranking = cost.ranked(priced(cost.Setup("p3.2xlarge", None, 12), cost.Setup("c5.large", "eia2.medium", 45),
                                 cost.Setup("m5.xlarge", "eia1.medium", 30)))
    assert [(r.setup.instance_type, cheapest, fastest) for r, cheapest, fastest in ranking] == [
        ("c5.large", True, False), ("m5.xlarge", False, False), ("p3.2xlarge", False, True)]


def test_setups_without_a_latency_come_last_and_ties_share_a_mark():
    ranking = cost.ranked(priced(cost.Setup("x1.same", None, None), cost.Setup("x1.same", None, 10),
                                 cost.Setup("x2.same", None, 10)))
    assert [(r.setup.instance_type, r.setup.latency_ms, c, f) for r, c, f in ranking] == [
        ("x1.same", 10, True, True), ("x2.same", 10, True, True), ("x1.same", None, False, False)]


def test_without_latencies_the_cheapest_is_by_the_hour_and_none_is_fastest():
    ranking = cost.ranked(priced(cost.Setup("m5.large"), cost.Setup("c5.large"), cost.Setup("g4dn.xlarge")))
    assert [(r.setup.instance_type, c, f) for r, c, f in ranking] == [
        ("c5.large", True, False), ("m5.large", False, False), ("g4dn.xlarge", False, False)]


# ---- the table ----------------------------------------------------------------------------------

LONG = [cost.Setup("inf2.8xlarge", "eia2.xlarge", 7.5), cost.Setup("c5.large", "eia2.medium", 45),
        cost.Setup("p3.2xlarge", None, 12), cost.Setup("m5.4xlarge", "eia1.xlarge", 0.25),
        cost.Setup("g4dn.xlarge", None, None)]


def screen(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width)
    console.print(renderable)
    return console.file.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_the_comparison_fits_the_width_with_every_name_whole(width):
    console = Console(file=io.StringIO(), width=width)
    text = screen(render.cost_comparison(cost.price_setups(LONG), "us-west-2", console), width)
    assert all(cell_len(line) <= width for line in text.splitlines()), text
    for name in ("inf2.8xlarge", "eia2.xlarge", "c5.large", "eia2.medium", "p3.2xlarge", "m5.4xlarge",
                 "eia1.xlarge", "g4dn.xlarge", "cheapest", "fastest", "$/100k"):
        assert name in text, (name, text)
    assert ESC not in text  # not a terminal: no escape codes


def test_the_wide_layout_keeps_a_setup_on_one_line_when_it_fits():
    rows = cost.price_setups([cost.Setup("c5.large", "eia2.medium", 45), cost.Setup("p3.2xlarge", None, 12)])
    text = screen(render.cost_comparison(rows, "us-west-2", Console(width=120)), 120)
    assert "c5.large + eia2.medium" in text
    narrow = screen(render.cost_comparison(cost.price_setups(LONG), "us-west-2", Console(width=80)), 80)
    assert "+ eia2.xlarge" in narrow  # the accelerator under its instance, whole


def test_the_table_shows_the_figures_and_the_unverified_star():
    text = screen(render.cost_comparison(cost.price_setups(LONG[1:3]), "us-west-2", Console(width=80)), 80)
    assert "0.2050*" in text and "0.2563" in text and "1.0200" in text  # c5.large+eia2.medium, p3.2xlarge
    assert "no source confirmed" in " ".join(text.split())


def test_the_single_setup_panel_fits_80_columns():
    row = cost.price_setups([cost.Setup("c5.large", "eia2.medium", 40)])[0]
    text = screen(render.cost_summary(row, "us-west-2"), 80)
    assert all(cell_len(line) <= 80 for line in text.splitlines()), text
    flat = " ".join(text.split())
    assert "$0.2278 per 100,000 inferences" in flat and "90,000 inferences/h" in flat and "$147.60" in flat


# ---- the command without AWS ---------------------------------------------------------------------

def test_cost_needs_no_aws_account_and_makes_no_call(no_aws_at_all, no_network):
    result = run("--instance-type", "c5.large", "--accelerator-type", "eia2.medium", "--latency-ms", "40",
                 "--output", "json")
    assert result.code == 0, result.stderr
    row = result.json["result"]["rows"][0]
    assert (row["hourly_usd"], row["per_100k_usd"], row["inferences_per_hour"]) == (0.205, 0.2278, 90000.0)
    assert row["prices"] == {"instance": "catalog", "accelerator": "catalog"} and row["price_verified"] is False
    assert no_network == []


def test_json_is_one_document_on_stdout_and_no_table_anywhere(no_aws_at_all):
    result = run("--compare", "--instance-type", "c5.large", "--accelerator-type", "eia2.medium",
                 "--latency-ms", "45", "--instance-type", "p3.2xlarge", "--accelerator-type", "none",
                 "--latency-ms", "12", "--output", "json")
    assert result.code == 0, result.stderr
    document = result.json
    assert (document["version"], document["command"], document["status"]) == (1, "cost", "success")
    rows = document["result"]["rows"]
    assert {"hourly_usd", "per_100k_usd", "inferences_per_hour", "inferences_per_usd", "cheapest",
            "fastest"} <= set(rows[0])
    assert [(r["instance_type"], r["per_100k_usd"], r["cheapest"], r["fastest"]) for r in rows] == [
        ("c5.large", 0.2563, True, False), ("p3.2xlarge", 1.02, False, True)]
    assert document["result"]["formula"] == cost.FORMULA
    # The JSON is the result: the human table is not also drawn on stderr (it was, before issue 15).
    assert "cheapest" not in result.stderr and "{" not in result.stderr


def test_the_comparison_through_the_cli_fits_80_columns_without_escape_codes(no_aws_at_all, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    argv = ["--compare"]
    for s in LONG[:4]:
        argv += ["--instance-type", s.instance_type, "--accelerator-type", s.accelerator_type or "none",
                 "--latency-ms", str(s.latency_ms)]
    result = run(*argv)
    assert result.code == 0, result.stderr
    assert "cheapest" in result.stdout and "fastest" in result.stdout  # the table is the result: stdout
    assert all(cell_len(line) <= 80 for line in result.stdout.splitlines()), result.stdout
    assert ESC not in result.stderr + result.stdout


def test_the_price_is_the_result_on_stdout_and_stderr_stays_quiet(no_aws_at_all):
    """`cost ... > prices.txt` keeps the prices: the panel goes to stdout, nothing to stderr."""
    result = run("--instance-type", "c5.large", "--accelerator-type", "eia2.medium", "--latency-ms", "40")
    assert result.code == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "Cost of c5.large + eia2.medium in us-west-2" in flat and "$0.2278 per 100,000 inferences" in flat
    assert result.stderr == ""
    assert "╭" not in result.stdout and "│" not in result.stdout, "not a terminal: no box to grep through"


def test_without_an_accelerator_flag_cost_prices_what_setup_would_create(no_aws_at_all):
    """setup --instance-type m5.xlarge attaches eia2.medium; cost of the same choice says so and prices it."""
    result = run("--instance-type", "m5.xlarge", "--output", "json")
    [row] = result.json["result"]["rows"]
    assert (row["accelerator_type"], row["accelerator_defaulted"], row["hourly_usd"]) == ("eia2.medium", True, 0.312)
    text = " ".join(run("--instance-type", "m5.xlarge").stdout.split())
    assert "Cost of m5.xlarge + eia2.medium" in text and "$0.3120/h" in text
    assert "setup's default (--accelerator-type none prices the instance alone)" in text
    alone = run("--instance-type", "m5.xlarge", "--accelerator-type", "none", "--output", "json")
    assert alone.json["result"]["rows"][0]["hourly_usd"] == 0.192
    # An inf2/gpu type carries its accelerator: setup attaches no EI to it, and cost adds none.
    [family] = run("--instance-type", "inf2.xlarge", "--output", "json").json["result"]["rows"]
    assert family["accelerator_type"] is None and family["accelerator_defaulted"] is True


def test_cost_and_the_setup_plan_agree_on_the_default_hourly_price(cli):
    from tests.conftest import REGION, SSH_CIDR

    planned = cli("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--ssh-cidr", SSH_CIDR, "--dry-run",
                  "--output", "json")
    priced = cli("cost", "--region", REGION, "--instance-type", "m5.xlarge", "--output", "json")
    plan = planned.json["result"]["plan"]
    [row] = priced.json["result"]["rows"]
    assert (row["accelerator_type"], row["hourly_usd"]) == (plan["accelerator_type"], plan["hourly_usd"])


def test_one_flag_value_applies_to_every_setup(no_aws_at_all):
    result = run("--instance-type", "c5.large", "--accelerator-type", "eia2.medium", "--accelerator-type",
                 "eia2.large", "--accelerator-type", "none", "--latency-ms", "40", "--output", "json")
    assert result.code == 0, result.stderr
    setups = {(r["instance_type"], r["accelerator_type"], r["latency_ms"]) for r in result.json["result"]["rows"]}
    assert setups == {("c5.large", "eia2.medium", 40.0), ("c5.large", "eia2.large", 40.0), ("c5.large", None, 40.0)}


def test_sandbox_is_not_needed(no_aws_at_all, monkeypatch):
    monkeypatch.setattr("amazonei_setup.sandbox.account.Sandbox.__init__",
                        lambda *a, **k: pytest.fail("sandbox started"))
    for opening in ("connect", "find"):
        monkeypatch.setattr(f"amazonei_setup.sandbox.server.{opening}", lambda *a, **k: pytest.fail("sandbox used"))
    assert run("--sandbox", "--instance-type", "m5.xlarge").code == 0
    result = run("--sandbox", "--live-prices", "--instance-type", "m5.xlarge", "--output", "json")
    assert result.code == 0 and "sandbox" in said(result)
    assert result.json["result"]["rows"][0]["prices"]["instance"] == "catalog"


def test_help_is_fast_because_loading_cost_imports_no_sdk():
    probe = ("import sys, amazonei_setup.core.cost, amazonei_setup.cli.main as c; c.build_parser(); "
             "print(sorted(m for m in ('boto3', 'botocore', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert run("--help").code == 0


# ---- bad input: exit 2, a sentence naming the flag -------------------------------------------------

def test_unknown_instance_type_names_hourly_usd(no_aws_at_all):
    result = run("--instance-type", "g6e.xlarge", "--latency-ms", "9", "--output", "json")
    assert result.code == 2
    assert "--hourly-usd g6e.xlarge=" in said(result) and "--live-prices" in said(result)
    assert result.json["error"]["code"] == "usage"
    priced_by_hand = run("--instance-type", "g6e.xlarge", "--accelerator-type", "none", "--hourly-usd", "0.8048",
                         "--latency-ms", "9", "--output", "json")
    row = priced_by_hand.json["result"]["rows"][0]
    assert (row["hourly_usd"], row["per_100k_usd"], row["prices"]["instance"]) == (0.8048, 0.2012, "by hand")


def test_unknown_accelerator_lists_the_valid_ones(no_aws_at_all):
    result = run("--instance-type", "c5.large", "--accelerator-type", "eia3.large")
    assert result.code == 2
    assert "--accelerator-type 'eia3.large'" in said(result)
    assert all(a in said(result) for a in catalog.ACCELERATORS) and "none" in said(result)


@pytest.mark.parametrize("latency", ["0", "-3", "abc", "nan", "inf", ""])
def test_a_latency_must_be_milliseconds_above_zero(no_aws_at_all, latency):
    result = run("--instance-type", "c5.large", f"--latency-ms={latency}")
    assert result.code == 2 and "--latency-ms" in said(result)


@pytest.mark.parametrize(("argv", "expected"), [
    ([], "--instance-type T"),
    (["--instance-type", "foo"], "'foo' is not an instance type"),
    (["--instance-type", "c5.large", "--instance-type", "m5.large", "--instance-type", "p3.2xlarge",
      "--latency-ms", "3", "--latency-ms", "4"], "2 --latency-ms values for 3 setups"),
    (["--instance-type", "c5.large", "--instance-type", "m5.large", "--hourly-usd", "0.1"],
     "write it as TYPE=USD"),
    (["--instance-type", "c5.large", "--hourly-usd", "m5.large=0.1"], "no setup uses"),
    (["--instance-type", "c5.large", "--hourly-usd", "cheap"], "--hourly-usd"),
    (["--instance-type", "c5.large", "--hourly-usd", "c5.large=0.1", "--hourly-usd", "c5.large=0.2"],
     "two prices"),
    (["--instance-type", "c5.large", "--latencies", "x.csv"], "already names the setups"),
])
def test_flag_mistakes_are_usage_errors_naming_the_fix(no_aws_at_all, argv, expected):
    result = run(*argv)
    assert result.code == 2 and expected in said(result), said(result)
    assert "Traceback" not in result.stderr


def test_hourly_usd_prices_each_named_type(no_aws_at_all):
    result = run("--instance-type", "g6.xlarge", "--instance-type", "c5.large", "--hourly-usd", "g6.xlarge=0.8048",
                 "--hourly-usd", "c5.large=0.09", "--accelerator-type", "none", "--output", "json")
    assert result.code == 0, result.stderr
    prices = {r["instance_type"]: (r["hourly_usd"], r["prices"]["instance"]) for r in result.json["result"]["rows"]}
    assert prices == {"g6.xlarge": (0.8048, "by hand"), "c5.large": (0.09, "by hand")}


# ---- --latencies CSV -------------------------------------------------------------------------------

def write(tmp_path, text: str, name: str = "measured.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


def test_a_csv_of_measured_latencies_is_compared(no_aws_at_all, tmp_path):
    path = write(tmp_path, "\ufeffInstance_Type, accelerator_type ,latency_ms,notes\n"
                           "# measured 2019-06, resnet50\n"
                           "c5.large,eia2.medium,45,\n\n"
                           "p3.2xlarge,none,12,gpu\n"
                           "m5.xlarge,,80\n")
    result = run("--latencies", path, "--output", "json")
    assert result.code == 0, result.stderr
    rows = [(r["instance_type"], r["accelerator_type"], r["latency_ms"]) for r in result.json["result"]["rows"]]
    assert rows == [("c5.large", "eia2.medium", 45.0), ("m5.xlarge", None, 80.0), ("p3.2xlarge", None, 12.0)]
    assert "Cost per 100k inferences" not in result.stdout + result.stderr  # JSON mode: the JSON only
    table = run("--latencies", path)
    assert "Cost per 100k inferences" in table.stdout and "c5.large + eia2.medium" in table.stdout


@pytest.mark.parametrize(("text", "expected"), [
    ("instance_type,accelerator_type\nc5.large,eia2.medium\n", "line 1: the header row needs the columns"),
    ("instance_type,accelerator_type,latency_ms\nc5.large,eia2.medium,45\nm5.large,,fast\n",
     "line 3: latency_ms 'fast' is not a latency"),
    ("instance_type,accelerator_type,latency_ms\nc5.large,eia9.huge,45\n", "line 2: accelerator_type 'eia9.huge'"),
    ("instance_type,accelerator_type,latency_ms\nc5.large,eia2.medium,45,7\n", "line 2: 4 fields"),
    ("instance_type,accelerator_type,latency_ms\n,eia2.medium,45\n", "line 2: instance_type is empty"),
    ("instance_type,accelerator_type,latency_ms\nbanana,,45\n", "line 2: 'banana' is not an instance type"),
    ("instance_type,accelerator_type,latency_ms\nc5.large,,-1\n", "line 2: latency_ms '-1'"),
    ("instance_type,accelerator_type,latency_ms\n# nothing measured yet\n", "no setups in it"),
    ("", "no setups in it"),
    (b"\xff\xfe\x00\x01binary", "not a text (UTF-8) CSV file"),
    ('instance_type,accelerator_type,latency_ms\n"c5.large,eia2.medium,45\n', "line"),
])
def test_a_bad_csv_names_the_flag_and_the_line(no_aws_at_all, tmp_path, text, expected):
    path = write(tmp_path, text)
    result = run("--latencies", path, width=WIDE)
    assert result.code == 2, result.stderr
    assert f"--latencies {path}" in said(result) and expected in said(result), said(result)


def test_a_missing_csv_names_the_flag(no_aws_at_all, tmp_path):
    result = run("--latencies", str(tmp_path / "nope.csv"))
    assert result.code == 2 and "--latencies" in said(result) and "cannot read it" in said(result)


# ---- the Pricing API, with Stubber -----------------------------------------------------------------

def test_live_instance_price_asks_for_on_demand_linux_in_the_region():
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(ec2_item("m5.xlarge", "0.1920000000")),
                          expected_params=ec2_params("m5.xlarge"))
        assert cost.live_instance_price(client, "m5.xlarge", "us-west-2") == 0.192
        stub.assert_no_pending_responses()


def test_live_instance_price_follows_pages_and_skips_byol_and_other_usage():
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(ec2_item("c5.large", "0.05", license_model="Bring your own license"),
                                               token="t1"), expected_params=ec2_params("c5.large"))
        stub.add_response("get_products", page(ec2_item("c5.large", "0.5", usagetype="USW2-HostBoxUsage:c5"),
                                               ec2_item("c5.large", "0.0850000000")),
                          expected_params=ec2_params("c5.large", NextToken="t1"))
        assert cost.live_instance_price(client, "c5.large", "us-west-2") == 0.085


def test_live_prices_are_none_when_the_api_has_none_or_the_region_is_unnamed():
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(), expected_params=ec2_params("x9.large"))
        assert cost.live_instance_price(client, "x9.large", "us-west-2") is None
        assert cost.live_instance_price(client, "m5.large", "mars-north-1") is None  # no call made
        stub.add_response("get_products", page(ei_item("eia2.xlarge", "0.34")), expected_params=ei_params())
        assert cost.live_accelerator_price(client, "eia2.large", "us-west-2") is None  # xlarge is not large


def test_live_accelerator_price_uses_the_amazonei_service_code():
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(ei_item("eia2.xlarge", "0.34"), ei_item("eia2.medium", "0.1200000000")),
                          expected_params=ei_params())
        assert cost.live_accelerator_price(client, "eia2.medium", "us-west-2") == 0.12


def live_run(client, *argv: str, width: int = 200) -> tuple[CliResult, list[str]]:
    asked: list[str] = []
    return run(*argv, "--live-prices", "--output", "json", width=width, aws=FakeAws(client, asked=asked)), asked


def test_live_prices_through_the_cli(no_network):
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(ec2_item("c5.large", "0.0851")), expected_params=ec2_params("c5.large"))
        stub.add_response("get_products", page(ei_item("eia2.medium", "0.1199")), expected_params=ei_params())
        result, asked = live_run(client, "--instance-type", "c5.large", "--accelerator-type", "eia2.medium",
                                 "--latency-ms", "40")
        stub.assert_no_pending_responses()
    assert result.code == 0, result.stderr
    row = result.json["result"]["rows"][0]
    assert (row["hourly_usd"], row["prices"]) == (0.205, {"instance": "live", "accelerator": "live"})
    assert row["price_verified"] is True and result.json["result"]["warnings"] == []
    assert asked == ["us-east-1"] and no_network == []


@pytest.mark.parametrize(("code", "reason"), [("ThrottlingException", "throttling"),
                                              ("AccessDeniedException", "denied")])
def test_throttled_or_denied_warns_once_and_uses_the_catalog(code, reason):
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_products", service_error_code=code, http_status_code=400)
        result, _ = live_run(client, "--instance-type", "c5.large", "--instance-type", "m5.large",
                             "--accelerator-type", "eia2.medium")
        stub.assert_no_pending_responses()  # one failed call, and no more asked after it
    assert result.code == 0, result.stderr
    warnings = result.json["result"]["warnings"]
    assert len(warnings) == 1 and reason in warnings[0] and "catalog" in warnings[0]
    assert result.stderr.count("! ") == 1
    assert {r["prices"]["instance"] for r in result.json["result"]["rows"]} == {"catalog"}
    assert [r["hourly_usd"] for r in result.json["result"]["rows"]] == [0.205, 0.216]


def test_unreachable_pricing_api_falls_back_to_the_catalog():
    from botocore.exceptions import EndpointConnectionError

    client = pricing_client()

    def unreachable(**_):
        raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")

    client.meta.events.register("before-call.pricing.GetProducts", unreachable)
    result, _ = live_run(client, "--instance-type", "p3.2xlarge", "--accelerator-type", "none", "--latency-ms", "12")
    assert result.code == 0, result.stderr
    assert "could not be reached" in result.json["result"]["warnings"][0]
    assert result.json["result"]["rows"][0]["per_100k_usd"] == 1.02


def test_no_live_result_falls_back_to_the_catalog_or_names_hourly_usd():
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(), expected_params=ec2_params("m5.large"))
        result, _ = live_run(client, "--instance-type", "m5.large", "--accelerator-type", "none")
    assert result.code == 0 and result.json["result"]["rows"][0]["hourly_usd"] == 0.096
    assert "no us-west-2 price for m5.large" in result.json["result"]["warnings"][0]
    with Stubber(client) as stub:
        stub.add_response("get_products", page(), expected_params=ec2_params("g6e.xlarge"))
        unknown, _ = live_run(client, "--instance-type", "g6e.xlarge")
    assert unknown.code == 2 and "--hourly-usd g6e.xlarge=" in said(unknown)


def test_live_prices_use_the_regions_location_name():
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(ec2_item("c5.large", "0.096")),
                          expected_params=ec2_params("c5.large", location="EU (Ireland)"))
        result, _ = live_run(client, "--region", "eu-west-1", "--instance-type", "c5.large", "--accelerator-type",
                             "none")
    assert result.code == 0 and result.json["result"]["rows"][0]["hourly_usd"] == 0.096
    assert result.json["result"]["region"] == "eu-west-1" and result.json["result"]["warnings"] == []


def test_without_credentials_live_prices_fall_back_without_a_network_call(no_credentials, no_network):
    result = run("--instance-type", "c5.large", "--live-prices", "--output", "json")
    assert result.code == 0, result.stderr
    assert "no AWS credentials" in result.json["result"]["warnings"][0]
    assert no_network == []


def test_catalog_prices_for_another_region_say_so(no_aws_at_all):
    result = run("--region", "eu-west-1", "--instance-type", "c5.large", "--output", "json")
    assert result.code == 0
    warning = result.json["result"]["warnings"][0]
    assert "us-west-2" in warning and "--live-prices" in warning


# ---- any argv: a clean exit --------------------------------------------------------------------------

COST_VALUES = {
    "--instance-type": ["c5.large", "g6.xlarge", "P3.2XLARGE", "foo", ""],
    "--accelerator-type": ["eia2.medium", "none", "eia9.bad", ""],
    "--latency-ms": ["40", "0.5", "0", "-1", "x", "1e999"],
    "--hourly-usd": ["0.5", "g6.xlarge=0.8", "c5.large=0", "=1", "a=b=c"],
    "--accelerator": ["inf2", "gpu", "ei", "eia2.medium", "g5.xlarge", "x"],
    "--region": ["us-west-2", "eu-west-1", "mars-north-1"],
    "--output": ["text", "json"],
}


def cost_argv():
    from hypothesis import strategies as st

    junk = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N", "P")), max_size=8)
    option = st.sampled_from(sorted(COST_VALUES)).flatmap(
        lambda flag: st.tuples(st.just(flag), st.one_of(st.sampled_from(COST_VALUES[flag]), junk)))
    token = st.one_of(option.map(list), option.map(list),
                      st.sampled_from(["--compare", "--live-prices", "--sandbox", "--debug"]).map(lambda s: [s]))
    # half the time from a runnable start, so random extras reach pricing and rendering, not only argparse
    start = st.sampled_from([[], ["--instance-type", "c5.large"], ["--instance-type", "m5.large", "--latency-ms", "9"]])
    return st.tuples(start, st.lists(token, max_size=6)).map(
        lambda drawn: drawn[0] + [piece for group in drawn[1] for piece in group])


def test_any_cost_argv_exits_cleanly(no_credentials, no_network):
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(argv=cost_argv())
    def check(argv):
        result = run(*argv)
        assert result.code in (0, 2), (argv, result)
        if result.code:
            assert result.stderr.startswith("error: ") or "\nerror: " in result.stderr, (argv, result.stderr)
        if "--debug" not in argv:
            assert "Traceback" not in result.stderr, (argv, result.stderr)
        if "--output" in argv and argv[argv.index("--output") + 1:][:1] == ["json"] and argv.count("--output") == 1:
            assert json.loads(result.stdout)["command"] == "cost", (argv, result.stdout)

    check()
    assert no_network == []


@pytest.mark.parametrize(("region", "accelerator", "expected"), [
    ("eu-central-1", "eia1.medium", "Elastic Inference never ran in eu-central-1"),
    ("ap-northeast-1", "eia2.medium", "eia2 accelerators were never offered in ap-northeast-1"),
])
def test_accelerators_where_ei_never_ran_are_pointed_out(no_aws_at_all, region, accelerator, expected):
    result = run("--region", region, "--instance-type", "c5.large", "--accelerator-type", accelerator,
                 "--output", "json")
    assert result.code == 0 and any(expected in w for w in result.json["result"]["warnings"])


# ---- cost --compare alone: each accelerator option's $/hour by region (issue 17) ----------------------------

BOX = set("─│┌┐└┘├┤┬┴┼━┃╭╮╯╰═║╔╗╚╝")


def by_region(*argv: str, width: int = 100) -> CliResult:
    return run("--compare", *argv, width=width)


def priced_regions(result: CliResult) -> dict[tuple[str, str | None, str], float | None]:
    return {(p["instance_type"], p["accelerator_type"], p["region"]): p["hourly_usd"]
            for p in result.json["result"]["prices"]}


def test_g6_xlarge_is_in_the_catalog_with_its_dated_source():
    entry = catalog.INSTANCE_PRICES["g6.xlarge"]
    assert (entry.hourly_usd, entry.as_of, entry.verified) == (0.8048, "2026-08-26", True)
    assert "vantage" in entry.source and "g6" in entry.source


def test_the_regional_figures_agree_with_the_catalog_in_its_region_and_name_real_regions():
    from amazonei_setup.aws import regions

    for instance_type, prices in catalog.REGIONAL_INSTANCE_PRICES.items():
        assert prices[catalog.CATALOG_REGION] == catalog.INSTANCE_HOURLY_USD[instance_type], instance_type
        for region in prices:
            regions.check(region)  # a real region (botocore's data), no Local Zone or made-up name
            assert not region.startswith("us-gov-"), region
    families = {t for f in catalog.FAMILIES.values() for t in f.instance_types}
    assert set(catalog.REGIONAL_INSTANCE_PRICES) == families  # every alternative has its regions
    assert catalog.REGIONAL_DATE == "2026-08-26" and "vantage" in catalog.REGIONAL_SOURCE


def test_the_ei_host_of_the_regions_view_is_setups_default_host():
    from amazonei_setup.core.catalog import DEFAULT_EI_HOST

    assert cost.EI_HOST == DEFAULT_EI_HOST


def test_compare_alone_lists_every_option_in_the_regions_that_offer_it(no_aws_at_all):
    result = by_region("--output", "json")
    assert result.code == 0, result.stderr
    document = result.json
    assert (document["command"], document["status"], document["result"]["view"]) == ("cost", "success", "regions")
    prices = priced_regions(result)
    # EI: each type on setup's default host, in the regions EI ran in (eia2 never in Tokyo); priced in the
    # catalog's region only, never made up elsewhere
    assert prices[("m5.xlarge", "eia2.medium", "us-west-2")] == 0.312
    assert prices[("m5.xlarge", "eia1.medium", "us-west-2")] == 0.322
    assert prices[("m5.xlarge", "eia2.medium", "eu-west-1")] is None
    assert ("m5.xlarge", "eia2.medium", "ap-northeast-1") not in prices
    assert ("m5.xlarge", "eia1.medium", "ap-northeast-1") in prices
    assert {r for (t, a, r) in prices if a == "eia1.large"} == set(catalog.EI_REGIONS)
    # the alternatives, in every region the catalog's source lists, at that region's price
    assert prices[("g6.xlarge", None, "us-west-2")] == 0.8048
    assert prices[("inf2.xlarge", None, "eu-west-1")] == 0.9478  # 0.94775, rounded half-up to 4 places
    assert prices[("g4dn.xlarge", None, "ap-south-1")] == 0.579
    assert ("inf2.xlarge", None, "us-west-1") not in prices  # no inf2 in N. California
    assert {r for (t, _, r) in prices if t == "g5.xlarge"} == set(catalog.REGIONAL_INSTANCE_PRICES["g5.xlarge"])
    first = document["result"]["prices"][0]
    assert set(first) == {"option", "instance_type", "accelerator_type", "region", "hourly_usd", "usd_30_days",
                          "price", "price_verified"}
    unpriced = next(p for p in document["result"]["prices"] if p["hourly_usd"] is None)
    assert (unpriced["price"], unpriced["usd_30_days"], unpriced["price_verified"]) == (None, None, None)


def test_each_options_regions_come_cheapest_first(no_aws_at_all):
    rows = by_region("--accelerator", "g5.xlarge", "--output", "json").json["result"]["prices"]
    usd = [r["hourly_usd"] for r in rows]
    assert usd == sorted(usd) and rows[0]["region"] in ("us-east-1", "us-east-2", "us-west-2")
    assert rows[-1]["region"] == "sa-east-1"  # the dearest g5.xlarge region in the source


@pytest.mark.parametrize(("chosen", "types"), [
    (["inf2"], {"inf2.xlarge", "inf2.8xlarge"}),
    (["gpu"], {"g4dn.xlarge", "g5.xlarge", "g6.xlarge"}),
    (["g6.xlarge", "inf2.xlarge"], {"g6.xlarge", "inf2.xlarge"}),
    (["ei"], {"eia2.medium", "eia2.large", "eia2.xlarge", "eia1.medium", "eia1.large", "eia1.xlarge"}),
    (["eia1.large"], {"eia1.large"}),
])
def test_accelerator_narrows_the_regions_view(no_aws_at_all, chosen, types):
    argv = [piece for c in chosen for piece in ("--accelerator", c)]
    result = run(*argv, "--output", "json")  # --accelerator alone implies the regions view
    assert result.code == 0, result.stderr
    assert {p["accelerator_type"] or p["instance_type"] for p in result.json["result"]["prices"]} == types
    assert result.json["result"]["accelerator"] == chosen


def test_the_regions_table_names_each_option_once_with_dashes_for_unknown_prices(no_aws_at_all):
    result = by_region("--accelerator", "eia2.medium", "--accelerator", "inf2.xlarge", "--region", "eu-west-1")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "$/hour by region" in lines[0] and "Region" in lines[1] and "$/hour" in lines[1]
    rows = {tuple(line.split()[:4]) for line in lines}
    assert ("eia2.medium", "+", "m5.xlarge", "us-west-2") in rows
    assert sum("inf2.xlarge" in line for line in lines) == 1  # the option on its first row only
    # EI in eu-west-1: no dated price, none invented; the user's --region is marked
    assert any(line.split() == ["eu-west-1", "-", "-", "your", "region"] for line in lines), result.stdout
    assert any(line.split()[:4] == ["eu-west-1", "0.9478", "682.38", "your"] for line in lines)  # inf2 there
    flat = " ".join(result.stdout.split())
    assert "0.3120*" in flat and "no source confirmed" in flat
    assert "AWS retired EI in April 2024" in flat and "--accelerator inf2|gpu" in flat
    assert "- : no dated price for that region (--live-prices asks AWS)" in flat


def test_a_piped_regions_table_is_plain_text(no_aws_at_all):
    result = by_region(width=80)
    assert result.code == 0, result.stderr
    assert not BOX & set(result.stdout) and ESC not in result.stdout + result.stderr
    assert all(cell_len(line) <= 80 for line in result.stdout.splitlines())
    assert result.stderr == ""
    for option in ("eia2.medium + m5.xlarge", "inf2.8xlarge", "g4dn.xlarge", "g5.xlarge", "g6.xlarge"):
        assert option in result.stdout


def test_the_json_regions_view_is_one_document_and_no_table(no_aws_at_all):
    result = by_region("--accelerator", "gpu", "--output", "json")
    assert result.code == 0 and result.stderr == ""
    assert json.loads(result.stdout)["result"]["live_prices"] is False
    assert "$/hour by region" not in result.stdout


@pytest.mark.parametrize(("argv", "expected"), [
    (["--compare", "--latency-ms", "9"], "--latency-ms prices a setup: add --instance-type T"),
    (["--compare", "--accelerator-type", "eia2.medium"], "--accelerator-type prices a setup"),
    (["--compare", "--accelerator", "tpu"], "'tpu' is not an accelerator option: use ei, inf2, gpu"),
    (["--instance-type", "c5.large", "--accelerator", "inf2"], "--accelerator inf2 with setups to price"),
])
def test_regions_view_mistakes_name_the_fix(no_aws_at_all, argv, expected):
    result = run(*argv, width=WIDE)
    assert result.code == 2 and expected in said(result), said(result)
    assert "Traceback" not in result.stderr


def test_an_ei_type_given_as_accelerator_prices_a_setup_as_in_setup(no_aws_at_all):
    result = run("--instance-type", "c5.large", "--accelerator", "eia2.medium", "--output", "json")
    assert result.code == 0, result.stderr
    assert result.json["result"]["rows"][0]["accelerator_type"] == "eia2.medium"


def test_compare_with_setups_still_compares_them(no_aws_at_all):
    result = run("--compare", "--instance-type", "c5.large", "--output", "json")
    assert result.code == 0 and "rows" in result.json["result"] and "prices" not in result.json["result"]


def product(instance_type: str, region: str, usd: str) -> str:
    item = json.loads(ec2_item(instance_type, usd))
    item["product"]["attributes"].update(regionCode=region, location=cost.REGION_LOCATIONS.get(region, region))
    return json.dumps(item)


def regional_params(instance_type: str) -> dict:
    fields = [("instanceType", instance_type), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
              ("preInstalledSw", "NA"), ("capacitystatus", "Used")]
    return {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1", "MaxResults": 100,
            "Filters": [{"Type": "TERM_MATCH", "Field": f, "Value": v} for f, v in fields]}


def test_live_prices_fill_the_regions_view_one_query_per_type(no_network):
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", page(product("m5.xlarge", "us-east-1", "0.192"),
                                               product("m5.xlarge", "eu-west-1", "0.214")),
                          expected_params=regional_params("m5.xlarge"))
        ei = json.loads(ei_item("eia2.medium", "0.12"))
        ei["product"]["attributes"]["regionCode"] = "us-east-1"
        stub.add_response("get_products", page(json.dumps(ei)), expected_params={
            "ServiceCode": "AmazonEI", "FormatVersion": "aws_v1", "MaxResults": 100,
            "Filters": [{"Type": "TERM_MATCH", "Field": "productFamily", "Value": "Elastic Inference"}]})
        result = run("--compare", "--accelerator", "eia2.medium", "--live-prices", "--output", "json",
                     aws=FakeAws(client))
        stub.assert_no_pending_responses()
    assert result.code == 0, result.stderr
    rows = {p["region"]: (p["hourly_usd"], p["price"]) for p in result.json["result"]["prices"]}
    assert rows["us-east-1"] == (0.312, "live")  # host and accelerator both from the Pricing API
    assert rows["us-west-2"] == (0.312, "catalog")  # the API had nothing there: the catalog's figure
    assert rows["eu-west-1"] == (None, None)  # a host price alone is not the option's price
    assert no_network == []


def test_live_prices_refused_warn_once_and_keep_the_catalog(no_network):
    from botocore.stub import Stubber

    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_products", service_error_code="AccessDeniedException", http_status_code=400)
        result = run("--compare", "--accelerator", "inf2.xlarge", "--live-prices", "--output", "json",
                     aws=FakeAws(client))
    assert result.code == 0, result.stderr
    [warning] = result.json["result"]["warnings"]
    assert "denied" in warning and "catalog" in warning
    assert priced_regions(result)[("inf2.xlarge", None, "us-east-1")] == 0.7582
