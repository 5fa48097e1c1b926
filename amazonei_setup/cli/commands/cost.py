"""`cost`: price the setups named by flags or a CSV (catalog, --hourly-usd, or --live-prices); the result is
the priced rows, shown as one setup's summary or a comparison (render.py). `cost --compare` without setups:
each accelerator option's $/hour in the regions that offer it (the regions view)."""
from __future__ import annotations

from amazonei_setup.cli.commands import Result
from amazonei_setup.core import catalog
from amazonei_setup.core.cost import (
    FORMULA,
    LATENCIES_FLAG,
    REGIONAL_NOTE,
    compared_options,
    live_prices,
    live_regional_prices,
    manual_prices,
    price_setups,
    ranked,
    read_latencies,
    region_notes,
    regional_prices,
    setups_from_flags,
)
from amazonei_setup.core.errors import UsageError


def run(args, env, ui, open_aws) -> Result:
    """`open_aws`: a context manager factory for an Aws, opened only for --live-prices."""
    if not args.instance_type and not args.latencies and (args.compare or args.accelerator):
        if getattr(args, "spot", False):  # Spot prices are one region's, per zone: a table of regions has no place
            raise UsageError("--spot prices types in one region: name them, e.g. `cost --compare --spot "
                             "--instance-type g4dn.xlarge --instance-type g5.xlarge --region us-west-2`, or drop "
                             "--spot to see each option's On-Demand $/hour by region.")
        return _regions_view(args, ui, open_aws)
    if args.accelerator:  # as in setup, an EI type given as --accelerator is the setup's --accelerator-type
        other = next((a for a in args.accelerator if a not in catalog.ACCELERATORS), None)
        if other or args.accelerator_type:
            raise UsageError(f"--accelerator {other or args.accelerator[0]} with setups to price: pass "
                             "--accelerator-type (an EI type, or none) for each setup, or drop --instance-type to "
                             "list each accelerator option's $/hour by region.")
        args.accelerator_type = args.accelerator
    region = args.region or catalog.CATALOG_REGION
    if args.latencies:
        if args.instance_type or args.accelerator_type or args.latency_ms:
            raise UsageError(f"{LATENCIES_FLAG} FILE already names the setups: drop --instance-type, "
                             f"--accelerator-type and --latency-ms, or drop {LATENCIES_FLAG}.")
        setups = read_latencies(args.latencies)
    else:
        setups = setups_from_flags(args.instance_type, args.accelerator_type, args.latency_ms)
    manual = manual_prices(args.hourly_usd, setups)
    warnings: list[str] = []

    live_instances: dict[str, float] = {}
    live_accelerators: dict[str, float] = {}
    if args.live_prices and args.sandbox:  # moto has no Pricing API: no server started just to be refused
        warnings.append(f"No live prices in the sandbox (it emulates no Pricing API): using the catalog "
                        f"({catalog.CATALOG_REGION} on-demand, {catalog.CATALOG_DATE}).")
    elif args.live_prices:
        args.region = region  # the Aws behind the lookup needs a region; the catalog's is the default
        instance_types = [t for t in dict.fromkeys(s.instance_type for s in setups) if t not in manual]
        accelerator_types = list(dict.fromkeys(s.accelerator_type for s in setups if s.accelerator_type))
        with ui.status("Asking the AWS Pricing API"):
            live_instances, live_accelerators = live_prices(open_aws, instance_types, accelerator_types, region,
                                                            warnings.append)
    asked = args.live_prices and not args.sandbox
    rows = price_setups(setups, manual=manual, live_instances=live_instances,
                        live_accelerators=live_accelerators, live_asked=asked, region=region)
    if not asked and region != catalog.CATALOG_REGION and any(
            (r.instance_source == "catalog" and catalog.regional_price(r.setup.instance_type, region) is None)
            or r.accelerator_source == "catalog" for r in rows):
        warnings.append(f"Catalog prices are {catalog.CATALOG_REGION}'s; {region} may differ: add --live-prices to "
                        "ask AWS.")
    warnings += region_notes(setups, region)
    spot = _spot_prices(args, open_aws, rows, region, warnings) if getattr(args, "spot", False) else None
    return Result("cost", {
        "region": region,
        "catalog": {"region": catalog.CATALOG_REGION, "date": catalog.CATALOG_DATE},
        "live_prices": bool(args.live_prices),
        "formula": FORMULA,
        "rows": [r.to_dict(cheapest=c, fastest=f) for r, c, f in ranked(rows)],
        "warnings": warnings,
        **({"spot": spot} if spot is not None else {}),
    }, warnings=warnings, context={"rows": rows, "compare": args.compare or len(rows) > 1})


def _spot_prices(args, open_aws, rows, region: str, warnings: list[str]) -> dict:
    """instance type -> {hourly_usd, zone, on_demand_hourly_usd}: the cheapest zone's latest Spot price in the
    region (where setup --spot would pay about that, in that zone). A price EC2 does not give is a warning."""
    from amazonei_setup.aws.resources import instance as instances

    types = list(dict.fromkeys(r.setup.instance_type for r in rows))
    args.region = region  # the Aws behind the look-up needs a region; the catalog's is the default
    try:
        with open_aws() as aws:
            found = instances.spot_prices(aws.ec2, types)
    except UsageError:
        raise
    except Exception as err:  # noqa: BLE001 - a price is a nicety: the cost stands without it
        warnings.append(f"No Spot prices: EC2 did not answer DescribeSpotPriceHistory in {region} ({err}).")
        return {}
    on_demand = {r.setup.instance_type: float(r.instance_usd) for r in rows}
    spot = {}
    for name in types:
        zones = found.get(name) or {}
        if not zones:
            warnings.append(f"EC2 gives no Spot price for {name} in {region}: it may not be offered on Spot there.")
            continue
        zone = min(zones, key=lambda z: (zones[z], z))
        spot[name] = {"hourly_usd": zones[zone], "zone": zone, "on_demand_hourly_usd": on_demand.get(name)}
    return spot


def _regions_view(args, ui, open_aws) -> Result:
    """Each accelerator option's $/hour in every region the catalog knows offers it (live prices with
    --live-prices), so a user refused in one region sees where to go."""
    given = [flag for flag, value in (("--accelerator-type", args.accelerator_type), ("--latency-ms", args.latency_ms),
                                      ("--hourly-usd", args.hourly_usd)) if value]
    if given:
        raise UsageError(f"{given[0]} prices a setup: add --instance-type T to compare setups, or drop {given[0]} to "
                         "list each accelerator option's $/hour by region (narrow it with --accelerator).")
    region = args.region  # the user's region, marked in the table (none: every region alike)
    warnings: list[str] = []
    live_instances: dict = {}
    live_accelerators: dict = {}
    if args.live_prices and args.sandbox:
        warnings.append(f"No live prices in the sandbox (it emulates no Pricing API): using the catalog "
                        f"({REGIONAL_NOTE}).")
    elif args.live_prices:
        args.region = args.region or catalog.CATALOG_REGION  # the Aws behind the lookup needs one
        options = compared_options(args.accelerator)
        instance_types = list(dict.fromkeys(t for _, t, _ in options))
        accelerator_types = list(dict.fromkeys(a for _, _, a in options if a))
        with ui.status("Asking the AWS Pricing API"):
            live_instances, live_accelerators = live_regional_prices(open_aws, instance_types, accelerator_types,
                                                                     warnings.append)
    rows = regional_prices(args.accelerator, live_instances=live_instances, live_accelerators=live_accelerators)
    return Result("cost", {
        "view": "regions",
        "region": region,
        "accelerator": args.accelerator or [],
        "catalog": {"region": catalog.CATALOG_REGION, "date": catalog.CATALOG_DATE,
                    "regional_source": catalog.REGIONAL_SOURCE, "regional_date": catalog.REGIONAL_DATE},
        "live_prices": bool(args.live_prices),
        "prices": [r.to_dict() for r in rows],
        "warnings": warnings,
    }, view="cost-regions", warnings=warnings, context={"rows": rows})
