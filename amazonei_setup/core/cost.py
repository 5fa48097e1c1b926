"""`cost`: what a setup costs per hour and per 100k inferences, and setups compared.

Hourly cost = the instance's on-demand Linux price + the accelerator's (nothing for CPU/GPU only).
With a measured single-request latency L in ms (batch 1, requests back to back) one instance serves
3 600 000 / L inferences an hour, so 100 000 of them cost hourly x L x 100 000 / 3 600 000.

Prices come from the dated catalog (`catalog.py`, us-west-2) or, with --live-prices, from the AWS
Pricing API (us-east-1 endpoint), with the catalog as the fallback. Money is computed in Decimal
and rounded half-up, so the JSON figures are the ones a person gets by hand.

This module holds the inputs, the prices and the formula; render.py draws the panel and the table, and
commands/cost.py runs the command. Loading it imports neither boto3/botocore nor rich: cli.py imports it
to build its parser.
"""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from amazonei_setup.core import catalog, rules
from amazonei_setup.core.errors import UsageError

MS_PER_HOUR = 3_600_000
PER = 100_000  # the "100k" of cost per 100k inferences
HOURS_30_DAYS = 24 * 30
USD_PLACES = 4  # JSON money: rounded half-up to this many decimals
PRICING_REGION = "us-east-1"  # the Pricing API's endpoint region (it serves every region's prices)
FORMULA = "per_100k_usd = hourly_usd * latency_ms * 100000 / 3600000"
LATENCIES_FLAG = "--latencies"
CSV_COLUMNS = ("instance_type", "accelerator_type", "latency_ms")

# The Pricing API names regions by their long names (its `location` attribute).
REGION_LOCATIONS = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "ca-central-1": "Canada (Central)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "sa-east-1": "South America (Sao Paulo)",
}

_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}

DESCRIPTION = """\
What a setup costs per hour (instance + accelerator, on-demand Linux) and, with
a measured latency, per 100,000 inferences; several setups are compared in a
table sorted by cost per 100k, the cheapest and the fastest marked. Prices come
from a dated us-west-2 catalog (--region defaults to us-west-2 here); no AWS
account is needed unless --live-prices is given.
"""

EPILOG = """\
examples:
  amazonei_setup.py cost --instance-type c5.large \\
      --accelerator-type eia2.medium --latency-ms 45
  amazonei_setup.py cost --instance-type c5.large \\
      --accelerator-type eia2.medium --latency-ms 45 \\
      --instance-type p3.2xlarge --accelerator-type none --latency-ms 12
  amazonei_setup.py cost --latencies measured.csv --output json
  amazonei_setup.py cost --instance-type g6e.xlarge --hourly-usd 1.861
  amazonei_setup.py cost --compare                      (every option, every region)
  amazonei_setup.py cost --compare --accelerator inf2   (Inferentia2's regions, cheapest first)

Repeated flags pair up in order, like the columns of a table: the n-th
--accelerator-type and --latency-ms belong to the n-th --instance-type; a flag
given once applies to every setup. A --latencies CSV has a header row with the
columns instance_type,accelerator_type,latency_ms (accelerator_type may be empty
or none); lines starting with # are skipped. --hourly-usd USD prices the one
instance type given; with several, write TYPE=USD (once per type).

--compare without --instance-type lists each accelerator option (the EI types on
setup's default host, the inf2 and gpu types) in every region the catalog knows
offers it, cheapest first: where to go when a region refuses (no quota, no
capacity). A region without a dated price shows "-" (--live-prices asks AWS).
"""


# ---- arguments -------------------------------------------------------------------------------

def _instance_problem(value: str) -> str | None:
    try:
        rules.instance_type(value, catalog.known_instance_types())
    except rules.RuleError as err:
        return str(err)
    return None


def _instance_arg(value: str) -> str:
    value = value.strip().lower()
    problem = _instance_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def _accelerator_arg(value: str) -> str:
    value = value.strip().lower()
    if not value:
        raise argparse.ArgumentTypeError("an empty value is not allowed (write none for no accelerator)")
    return value


def _positive_number(value: str) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _latency_arg(value: str) -> float:
    number = _positive_number(value)
    if number is None:
        raise argparse.ArgumentTypeError(f"'{value}' is not a latency: give milliseconds above 0, e.g. 42.5")
    return number


def _hourly_arg(value: str) -> tuple[str | None, float]:
    name, _, price = value.strip().rpartition("=")
    name = name.strip().lower() or None
    if name is not None and _instance_problem(name):
        raise argparse.ArgumentTypeError(f"{_instance_problem(name)} (write TYPE=USD)")
    number = _positive_number(price)
    if number is None:
        raise argparse.ArgumentTypeError(f"'{value}' is not a price: give USD per hour above 0, e.g. 0.192, "
                                         "or TYPE=USD like g6.xlarge=0.8048")
    return name, number


def compare_options() -> dict[str, tuple[str, ...]]:
    """What --accelerator takes in the regions view -> the instance types / EI types it keeps."""
    options: dict[str, tuple[str, ...]] = {"ei": tuple(catalog.ACCELERATORS)}
    for family in catalog.FAMILIES.values():
        options[family.key] = family.instance_types
        options.update({t: (t,) for t in family.instance_types})
    options.update({a: (a,) for a in catalog.ACCELERATORS})
    return options


def _option_arg(value: str) -> str:
    value = value.strip().lower()
    if value not in compare_options():
        raise argparse.ArgumentTypeError(
            f"'{value}' is not an accelerator option: use ei, {', '.join(catalog.FAMILIES)}, one of "
            f"{', '.join(catalog.ACCELERATORS)}, or one of "
            f"{', '.join(t for f in catalog.FAMILIES.values() for t in f.instance_types)}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    what = parser.add_argument_group("what to price")
    what.add_argument("--instance-type", action="append", type=_instance_arg, metavar="T",
                      help="EC2 instance type, e.g. c5.large; repeat to compare")
    what.add_argument("--accelerator-type", action="append", type=_accelerator_arg, metavar="A",
                      help=f"{', '.join(catalog.ACCELERATORS)} or none (default: what setup creates for the type: "
                           f"{catalog.DEFAULT_ACCELERATOR}, none for an inf2/gpu type); repeat to compare")
    what.add_argument("--latency-ms", action="append", type=_latency_arg, metavar="L",
                      help="measured single-request latency in ms (batch 1, requests back to back)")
    what.add_argument(LATENCIES_FLAG, metavar="FILE",
                      help="CSV of measured setups: instance_type,accelerator_type,latency_ms")
    what.add_argument("--compare", action="store_true",
                      help="with setups: a table sorted by cost per 100k (implied by several setups); alone: "
                           "each accelerator option's $/hour in every region that offers it (where to go when a "
                           "region says no)")
    what.add_argument("--accelerator", action="append", type=_option_arg, metavar="A",
                      help=f"with --compare alone: only this option: ei, {', '.join(catalog.FAMILIES)}, an EI type "
                           "(eia2.medium) or an instance type (g5.xlarge); repeat for several")
    prices = parser.add_argument_group("prices")
    prices.add_argument("--live-prices", action="store_true",
                        help="ask the AWS Pricing API (needs credentials); the catalog is the fallback")
    prices.add_argument("--spot", action="store_true",
                        help="also today's Spot price of each instance type in the region (EC2 "
                             "DescribeSpotPriceHistory: the cheapest zone's latest; needs credentials), next to "
                             "On-Demand; `setup --spot` launches on Spot")
    prices.add_argument("--hourly-usd", action="append", type=_hourly_arg, metavar="[TYPE=]USD",
                        help="the instance's price per hour by hand (for types the catalog lacks)")


# ---- the setups to price ---------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    instance_type: str
    accelerator_type: str | None = None
    latency_ms: float | None = None
    accelerator_defaulted: bool = False  # no --accelerator-type: priced with what setup would attach

    @property
    def label(self) -> str:
        return f"{self.instance_type} + {self.accelerator_type}" if self.accelerator_type else self.instance_type


def _accelerator(value: str | None) -> str | None:
    """None for no accelerator; ValueError naming the valid ones for an unknown one."""
    if value is None or value.strip().lower() in ("", "none"):
        return None
    value = value.strip().lower()
    if value not in catalog.ACCELERATORS:
        raise ValueError(f"accelerator_type '{value}' is unknown: use one of {', '.join(catalog.ACCELERATORS)}, "
                         "or none")
    return value


def setups_from_flags(instance_types, accelerator_types, latencies) -> list[Setup]:
    """Pair the repeated flags in order; a flag given once applies to every setup."""
    if not instance_types:
        raise UsageError("Name the instance to price: --instance-type T (e.g. --instance-type c5.large), repeated "
                         f"to compare, or {LATENCIES_FLAG} FILE.")
    unknown = [a for a in accelerator_types or [] if a != "none" and a not in catalog.ACCELERATORS]
    if unknown:
        raise UsageError(f"Unknown --accelerator-type '{unknown[0]}': use one of {', '.join(catalog.ACCELERATORS)}, "
                         "or none (no accelerator).")
    defaulted = not accelerator_types
    accelerators = [_accelerator(a) for a in accelerator_types or [None]]
    latencies = list(latencies or [None])
    count = max(len(instance_types), len(accelerators), len(latencies))
    for flag, values in (("--instance-type", instance_types), ("--accelerator-type", accelerators),
                         ("--latency-ms", latencies)):
        if len(values) not in (1, count):
            raise UsageError(f"{len(values)} {flag} values for {count} setups: give {flag} once (it then applies "
                             "to every setup) or once per setup, in the same order as the other flags.")

    def nth(values, i):
        return values[0] if len(values) == 1 else values[i]

    if defaulted:
        return [Setup(t, default_accelerator(t), nth(latencies, i), accelerator_defaulted=True)
                for i, t in ((i, nth(instance_types, i)) for i in range(count))]
    return [Setup(nth(instance_types, i), nth(accelerators, i), nth(latencies, i)) for i in range(count)]


def default_accelerator(instance_type: str) -> str | None:
    """What `setup --instance-type T` attaches without an accelerator flag: the default EI accelerator, or
    nothing for a type of today's alternatives (inf2, gpu: the accelerator is in the instance)."""
    return None if catalog.family_of(instance_type) else catalog.DEFAULT_ACCELERATOR


def read_latencies(path: str) -> list[Setup]:
    """The setups of a CSV file (header: instance_type, accelerator_type, latency_ms); UsageError naming
    the flag and the line for anything wrong in it."""
    import csv

    where = f"{LATENCIES_FLAG} {path}"
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # utf-8-sig: spreadsheets write a BOM
    except OSError as err:
        raise UsageError(f"{where}: cannot read it ({err.strerror or err}): check the path.") from None
    setups: list[Setup] = []
    header: list[str] | None = None
    with handle:
        reader = csv.reader(handle)
        try:
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                    continue
                if header is None:
                    header = [cell.strip().lower() for cell in row]
                    missing = [c for c in ("instance_type", "latency_ms") if c not in header]
                    if missing:
                        raise UsageError(f"{where}, line {line}: the header row needs the columns "
                                         f"{', '.join(CSV_COLUMNS)} (missing: {', '.join(missing)}).")
                    continue
                setups.append(_csv_setup(row, header, f"{where}, line {line}"))
        except UnicodeDecodeError:
            raise UsageError(f"{where}: not a text (UTF-8) CSV file: export it as CSV and try again.") from None
        except csv.Error as err:
            raise UsageError(f"{where}, line {reader.line_num}: {err}: fix that line.") from None
    if not setups:
        raise UsageError(f"{where}: no setups in it: one row per setup under the header {','.join(CSV_COLUMNS)}.")
    return setups


def _csv_setup(row: list[str], header: list[str], where: str) -> Setup:
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
        raise UsageError(f"{where}: {len(row)} fields, the header has {len(header)}: check for a stray comma.")
    values = dict(zip(header, (cell.strip() for cell in row), strict=False))
    instance = values.get("instance_type", "").lower()
    if not instance:
        raise UsageError(f"{where}: instance_type is empty: name the instance, e.g. c5.large.")
    problem = _instance_problem(instance)
    if problem:
        raise UsageError(f"{where}: {problem}.")
    try:
        accelerator = _accelerator(values.get("accelerator_type"))
    except ValueError as err:
        raise UsageError(f"{where}: {err}.") from None
    raw_latency = values.get("latency_ms", "")
    latency = _positive_number(raw_latency)
    if latency is None:
        raise UsageError(f"{where}: latency_ms '{raw_latency}' is not a latency: give milliseconds above 0, "
                         "e.g. 42.5.")
    return Setup(instance, accelerator, latency)


def manual_prices(values, setups: list[Setup]) -> dict[str, float]:
    """--hourly-usd: USD (the one instance type) or TYPE=USD (any of them) -> {instance type: USD/hour}."""
    types = list(dict.fromkeys(s.instance_type for s in setups))
    prices: dict[str, float] = {}
    for name, usd in values or []:
        if name is None:
            if len(types) != 1:
                raise UsageError(f"--hourly-usd {usd:g} does not say which of {', '.join(types)} it prices: write "
                                 f"it as TYPE=USD, e.g. --hourly-usd {types[0]}={usd:g}.")
            name = types[0]
        if name not in types:
            raise UsageError(f"--hourly-usd names {name}, which no setup uses: add --instance-type {name}, or fix "
                             "the name.")
        if name in prices and prices[name] != usd:
            raise UsageError(f"--hourly-usd gives {name} two prices ({prices[name]:g} and {usd:g}): keep one.")
        prices[name] = usd
    return prices


# ---- the formula -----------------------------------------------------------------------------

def _d(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def hourly_cost(instance_usd, accelerator_usd=0) -> Decimal:
    """Instance + accelerator, USD per hour."""
    return _d(instance_usd) + _d(accelerator_usd or 0)


def per_100k_usd(hourly_usd, latency_ms) -> Decimal:
    """What 100 000 back-to-back single requests cost: hourly x L x 100 000 / 3 600 000."""
    return _d(hourly_usd) * _d(latency_ms) * PER / MS_PER_HOUR


def inferences_per_hour(latency_ms) -> Decimal:
    return Decimal(MS_PER_HOUR) / _d(latency_ms)


def inferences_per_usd(hourly_usd, latency_ms) -> Decimal:
    return inferences_per_hour(latency_ms) / _d(hourly_usd)


def rounded(value, places: int = USD_PLACES) -> float:
    """Half-up rounding (0.00005 -> 0.0001), not float's banker's-and-binary rounding."""
    return float(_d(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Priced:
    setup: Setup
    instance_usd: Decimal
    accelerator_usd: Decimal
    instance_source: str  # "catalog", "live" or "by hand"
    accelerator_source: str | None  # None: no accelerator
    verified: bool  # False when a catalog figure used here is not confirmed by a source

    @property
    def hourly_usd(self) -> Decimal:
        return hourly_cost(self.instance_usd, self.accelerator_usd)

    @property
    def per_100k_usd(self) -> Decimal | None:
        return per_100k_usd(self.hourly_usd, self.setup.latency_ms) if self.setup.latency_ms else None

    def to_dict(self, *, cheapest: bool = False, fastest: bool = False) -> dict:
        latency = self.setup.latency_ms
        return {
            "instance_type": self.setup.instance_type,
            "accelerator_type": self.setup.accelerator_type,
            "accelerator_defaulted": self.setup.accelerator_defaulted,
            "latency_ms": latency,
            "instance_hourly_usd": rounded(self.instance_usd),
            "accelerator_hourly_usd": rounded(self.accelerator_usd),
            "hourly_usd": rounded(self.hourly_usd),
            "usd_30_days": rounded(self.hourly_usd * HOURS_30_DAYS, 2),
            "per_100k_usd": rounded(self.per_100k_usd) if latency else None,
            "inferences_per_hour": rounded(inferences_per_hour(latency), 2) if latency else None,
            "inferences_per_usd": rounded(inferences_per_usd(self.hourly_usd, latency), 2) if latency else None,
            "prices": {"instance": self.instance_source, "accelerator": self.accelerator_source},
            "price_verified": self.verified,
            "cheapest": cheapest,
            "fastest": fastest,
        }


def price_setups(setups: list[Setup], *, manual: dict[str, float] | None = None,
                 live_instances: dict[str, float] | None = None, live_accelerators: dict[str, float] | None = None,
                 live_asked: bool = False, region: str = catalog.CATALOG_REGION) -> list[Priced]:
    """Each setup's prices: by hand, else live, else the catalog (the region's own figure where it has one, as
    `cost --compare` shows it); UsageError naming --hourly-usd for an instance type none of them prices."""
    manual, live_instances, live_accelerators = manual or {}, live_instances or {}, live_accelerators or {}
    unknown = [t for t in dict.fromkeys(s.instance_type for s in setups)
               if t not in manual and t not in live_instances and t not in catalog.INSTANCE_PRICES]
    if unknown:
        names = ", ".join(unknown)
        where = f"the catalog ({catalog.CATALOG_REGION} on-demand, {catalog.CATALOG_DATE})"
        where += " nor from the AWS Pricing API" if live_asked else ""
        fix = f"--hourly-usd {unknown[0]}=USD (its on-demand price per hour)"
        if len(unknown) > 1:
            fix = "--hourly-usd TYPE=USD for each (the on-demand price per hour)"
        raise UsageError(f"No price for {names} in {where}: pass {fix}"
                         f"{'' if live_asked else ', or --live-prices to ask AWS'}.")
    priced = []
    for s in setups:
        verified = True
        if s.instance_type in manual:
            instance, instance_source = _d(manual[s.instance_type]), "by hand"
        elif s.instance_type in live_instances:
            instance, instance_source = _d(live_instances[s.instance_type]), "live"
        else:
            entry = catalog.INSTANCE_PRICES[s.instance_type]
            instance, instance_source = _d(catalog.instance_hourly_usd(s.instance_type, region)), "catalog"
            regional = region != catalog.CATALOG_REGION and catalog.regional_price(s.instance_type, region) is not None
            verified = True if regional else entry.verified
        accelerator, accelerator_source = Decimal(0), None
        if s.accelerator_type in live_accelerators:
            accelerator, accelerator_source = _d(live_accelerators[s.accelerator_type]), "live"
        elif s.accelerator_type:
            entry = catalog.ACCELERATORS[s.accelerator_type]
            accelerator, accelerator_source = _d(entry.hourly_usd), "catalog"
            verified = verified and entry.price_verified
        priced.append(Priced(s, instance, accelerator, instance_source, accelerator_source, verified))
    return priced


def ranked(rows: list[Priced]) -> list[tuple[Priced, bool, bool]]:
    """Cheapest first (per 100k where the latency is known, those first; else per hour), each with its
    cheapest/fastest marks (ties share a mark)."""
    with_latency = [r for r in rows if r.per_100k_usd is not None]
    order = sorted(rows, key=lambda r: (r.per_100k_usd is None, r.per_100k_usd or 0, r.hourly_usd))
    if with_latency:
        best = min(r.per_100k_usd for r in with_latency)
        fastest = min(r.setup.latency_ms for r in with_latency)
        return [(r, r.per_100k_usd == best, r.setup.latency_ms == fastest) if r.per_100k_usd is not None
                else (r, False, False) for r in order]
    best = min(r.hourly_usd for r in rows)
    return [(r, r.hourly_usd == best, False) for r in order]


# ---- live prices (AWS Pricing API) -----------------------------------------------------------

def _products(pricing_client, service_code: str, filters: list[tuple[str, str]], max_pages: int = 5):
    """The PriceList items (parsed) of get_products, following NextToken for a few pages."""
    import json

    kwargs = {"ServiceCode": service_code, "FormatVersion": "aws_v1", "MaxResults": 100,
              "Filters": [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in filters]}
    for _ in range(max_pages):
        page = pricing_client.get_products(**kwargs)
        for raw in page.get("PriceList", []):
            yield json.loads(raw) if isinstance(raw, str) else raw
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def _on_demand_usd(item: dict) -> float | None:
    """The positive hourly USD price of a PriceList item's OnDemand terms, or None."""
    for offer in (item.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in (offer.get("priceDimensions") or {}).values():
            usd = _positive_number(dimension.get("pricePerUnit", {}).get("USD"))
            if usd is not None and str(dimension.get("unit", "Hrs")).lower().startswith("hr"):
                return usd
    return None


def live_instance_price(pricing_client, instance_type: str, region: str) -> float | None:
    """On-demand Linux (shared tenancy, no pre-installed software) USD/hour in `region`, or None."""
    location = REGION_LOCATIONS.get(region)
    if location is None:
        return None
    filters = [("instanceType", instance_type), ("location", location), ("operatingSystem", "Linux"),
               ("tenancy", "Shared"), ("preInstalledSw", "NA"), ("capacitystatus", "Used")]
    found = []
    for item in _products(pricing_client, "AmazonEC2", filters):
        attributes = item.get("product", {}).get("attributes", {})
        if attributes.get("licenseModel", "No License required") != "No License required":
            continue
        usd = _on_demand_usd(item)
        if usd is not None:  # prefer the plain BoxUsage line over any other that slipped through
            found.append(("BoxUsage" not in attributes.get("usagetype", ""), usd))
    return min(found)[1] if found else None


def live_accelerator_price(pricing_client, accelerator_type: str, region: str) -> float | None:
    """An EI accelerator's USD/hour in `region` (ServiceCode AmazonEI, product family "Elastic Inference",
    the type in the usage type, as infracost prices it), or None."""
    location = REGION_LOCATIONS.get(region)
    if location is None:
        return None
    pattern = re.compile(rf"(^|[^a-z0-9.]){re.escape(accelerator_type)}($|[^a-z0-9])")
    for item in _products(pricing_client, "AmazonEI", [("location", location),
                                                        ("productFamily", "Elastic Inference")]):
        usage = str(item.get("product", {}).get("attributes", {}).get("usagetype", "")).lower()
        if pattern.search(usage):
            usd = _on_demand_usd(item)
            if usd is not None:
                return usd
    return None


def _why(err: BaseException) -> str:
    """A few words on why the Pricing API did not answer."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        if code in _THROTTLED:
            return "the AWS Pricing API is throttling requests"
        if code in _DENIED:
            return "access to pricing:GetProducts was denied"
        return f"the AWS Pricing API answered {code or 'an error'}"
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials"
    if isinstance(err, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return "the AWS Pricing API could not be reached"
    return f"{type(err).__name__}: {err}"[:120]


def live_prices(open_aws, instance_types: list[str], accelerator_types: list[str], region: str,
                warn) -> tuple[dict[str, float], dict[str, float]]:
    """Ask the Pricing API for each type; on the first failure warn once and stop asking (the catalog
    answers for the rest). Returns ({instance type: USD}, {accelerator type: USD})."""
    found_instances: dict[str, float] = {}
    found_accelerators: dict[str, float] = {}
    fallback = f"using the catalog ({catalog.CATALOG_REGION} on-demand, {catalog.CATALOG_DATE})"
    if region not in REGION_LOCATIONS:
        warn(f"No live prices: this tool does not know the Pricing API's name for {region}; {fallback}.")
        return found_instances, found_accelerators
    missing = []
    try:
        with open_aws() as aws:
            client = aws.in_region(PRICING_REGION).client("pricing")
            for names, lookup, found in ((instance_types, live_instance_price, found_instances),
                                         (accelerator_types, live_accelerator_price, found_accelerators)):
                for name in names:
                    usd = lookup(client, name, region)
                    if usd is None:
                        missing.append(name)
                    else:
                        found[name] = usd
    except UsageError:
        raise  # a bad --profile or --endpoint-url: the user's to fix, not a reason to fall back
    except Exception as err:  # noqa: BLE001 - throttled, unreachable, denied, no credentials, a sandbox without pricing
        warn(f"No live prices ({_why(err)}): {fallback}.")
        return found_instances, found_accelerators
    if missing:
        warn(f"The AWS Pricing API has no {region} price for {', '.join(missing)}: {fallback} for "
             f"{'it' if len(missing) == 1 else 'them'}.")
    return found_instances, found_accelerators


def region_notes(setups: list[Setup], region: str) -> list[str]:
    """Where the accelerators priced never ran."""
    accelerators = {s.accelerator_type for s in setups if s.accelerator_type}
    if accelerators and region not in catalog.EI_REGIONS:
        return [f"Elastic Inference never ran in {region} (it ran in {', '.join(catalog.EI_REGIONS)})."]
    if region in catalog.EIA2_UNAVAILABLE_REGIONS and any(a.startswith("eia2.") for a in accelerators):
        return [f"eia2 accelerators were never offered in {region}; eia1 were."]
    return []


# ---- the regions view: each accelerator option's $/hour where it runs (cost --compare alone) -------------------

# The host an EI option is priced with: setup's --yes host (wizard.DEFAULT_EI_HOST, a test keeps them equal; not
# imported: loading this module must not load the wizard's AWS modules).
EI_HOST = "m5.xlarge"


@dataclass(frozen=True)
class RegionalPrice:
    """One accelerator option in one region: USD/hour (instance + EI accelerator), or None where no dated price
    is known; `source` is "catalog" or "live" (None without a price)."""

    option: str  # "ei", or the family key
    instance_type: str
    accelerator_type: str | None  # the EI type; None for a family's own accelerator
    region: str
    hourly_usd: Decimal | None
    source: str | None
    verified: bool = True

    @property
    def label(self) -> str:
        return f"{self.accelerator_type} + {self.instance_type}" if self.accelerator_type else self.instance_type

    def to_dict(self) -> dict:
        return {"option": self.option, "instance_type": self.instance_type, "accelerator_type": self.accelerator_type,
                "region": self.region, "hourly_usd": rounded(self.hourly_usd) if self.hourly_usd is not None else None,
                "usd_30_days": rounded(self.hourly_usd * HOURS_30_DAYS, 2) if self.hourly_usd is not None else None,
                "price": self.source, "price_verified": self.verified if self.hourly_usd is not None else None}


def compared_options(chosen: list[str] | None) -> list[tuple[str, str, str | None]]:
    """(option, instance type, EI type) in catalog order, narrowed to --accelerator's choices."""
    keep = None
    if chosen:
        options = compare_options()
        keep = {name for c in chosen for name in options[c]}
    entries = [("ei", EI_HOST, a) for a in catalog.ACCELERATORS]
    entries += [(f.key, t, None) for f in catalog.FAMILIES.values() for t in f.instance_types]
    return [e for e in entries if keep is None or (e[2] or e[1]) in keep]


def regional_prices(chosen: list[str] | None = None, *, live_instances: dict[tuple[str, str], float] | None = None,
                    live_accelerators: dict[tuple[str, str], float] | None = None) -> list[RegionalPrice]:
    """Each option in each region the catalog knows offers it, cheapest first within an option (regions without
    a price after, by name). Live prices ({(type, region): USD}) win over the catalog's; a price is never made
    up: an EI option has one only where both its host and its accelerator have one."""
    live_instances, live_accelerators = live_instances or {}, live_accelerators or {}
    rows: list[RegionalPrice] = []
    for option, instance_type, accelerator in compared_options(chosen):
        regions = catalog.ei_regions_for(accelerator) if accelerator else catalog.regions_offering(instance_type)
        option_rows = []
        for region in regions:
            verified, sources = True, set()
            instance = live_instances.get((instance_type, region))
            if instance is not None:
                sources.add("live")
            else:
                instance = catalog.catalog_price(instance_type, region)
                if instance is not None:
                    sources.add("catalog")
                    entry = catalog.INSTANCE_PRICES.get(instance_type)
                    verified = entry.verified if entry and region == catalog.CATALOG_REGION else True
            usd = _d(instance) if instance is not None else None
            if accelerator and usd is not None:
                extra = live_accelerators.get((accelerator, region))
                if extra is not None:
                    sources.add("live")
                elif region == catalog.CATALOG_REGION:
                    extra = catalog.ACCELERATORS[accelerator].hourly_usd
                    verified = verified and catalog.ACCELERATORS[accelerator].price_verified
                    sources.add("catalog")
                usd = hourly_cost(usd, extra) if extra is not None else None
            source = None if usd is None else "live" if sources == {"live"} else "catalog" if sources == {
                "catalog"} else "live+catalog"
            option_rows.append(RegionalPrice(option, instance_type, accelerator, region, usd, source, verified))
        option_rows.sort(key=lambda r: (r.hourly_usd is None, r.hourly_usd or 0, r.region))
        rows += option_rows
    return rows


def _region_of(attributes: dict) -> str | None:
    """A Price List product's region: its regionCode, else its location's long name."""
    if attributes.get("regionCode"):
        return attributes["regionCode"]
    return next((r for r, name in REGION_LOCATIONS.items() if name == attributes.get("location")), None)


def live_instance_prices_by_region(pricing_client, instance_type: str) -> dict[str, float]:
    """On-demand Linux (shared, no pre-installed software) USD/hour of a type in every region, one query."""
    filters = [("instanceType", instance_type), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
               ("preInstalledSw", "NA"), ("capacitystatus", "Used")]
    found: dict[str, tuple[bool, float]] = {}
    for item in _products(pricing_client, "AmazonEC2", filters, max_pages=10):
        attributes = item.get("product", {}).get("attributes", {})
        region = _region_of(attributes)
        usd = _on_demand_usd(item)
        if region is None or usd is None:
            continue
        if attributes.get("licenseModel", "No License required") != "No License required":
            continue
        candidate = ("BoxUsage" not in attributes.get("usagetype", ""), usd)  # the plain BoxUsage line first
        found[region] = min(found.get(region, candidate), candidate)
    return {region: usd for region, (_, usd) in found.items()}


def live_accelerator_prices_by_region(pricing_client, accelerator_types: list[str]) -> dict[tuple[str, str], float]:
    """Each EI type's USD/hour in every region the Price List still has it, one query."""
    found: dict[tuple[str, str], float] = {}
    patterns = {a: re.compile(rf"(^|[^a-z0-9.]){re.escape(a)}($|[^a-z0-9])") for a in accelerator_types}
    for item in _products(pricing_client, "AmazonEI", [("productFamily", "Elastic Inference")], max_pages=10):
        attributes = item.get("product", {}).get("attributes", {})
        region, usd = _region_of(attributes), _on_demand_usd(item)
        usage = str(attributes.get("usagetype", "")).lower()
        for accelerator, pattern in patterns.items():
            if region and usd is not None and pattern.search(usage):
                found.setdefault((accelerator, region), usd)
    return found


def live_regional_prices(open_aws, instance_types: list[str], accelerator_types: list[str],
                         warn) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """The Pricing API's prices of these types in every region (one query per instance type, one for EI); on a
    failure warn once and return what was found (the catalog answers for the rest)."""
    instances: dict[tuple[str, str], float] = {}
    accelerators: dict[tuple[str, str], float] = {}
    try:
        with open_aws() as aws:
            client = aws.in_region(PRICING_REGION).client("pricing")
            for instance_type in instance_types:
                for region, usd in live_instance_prices_by_region(client, instance_type).items():
                    instances[(instance_type, region)] = usd
            if accelerator_types:
                accelerators = live_accelerator_prices_by_region(client, accelerator_types)
    except UsageError:
        raise
    except Exception as err:  # noqa: BLE001 - throttled, unreachable, denied, no credentials
        warn(f"No live prices ({_why(err)}): using the catalog ({REGIONAL_NOTE}).")
    return instances, accelerators


REGIONAL_NOTE = (f"{catalog.CATALOG_REGION} on-demand for EI, reviewed {catalog.CATALOG_DATE}; the inf2/gpu types "
                 f"in every region, {catalog.REGIONAL_DATE}")
