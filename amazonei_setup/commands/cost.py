"""`cost`: price the setups named by flags or a CSV (catalog, --hourly-usd, or --live-prices); the result is
the priced rows, shown as one setup's summary or a comparison (render.py)."""
from __future__ import annotations

from amazonei_setup import catalog
from amazonei_setup.commands import Result
from amazonei_setup.cost import (
    FORMULA,
    LATENCIES_FLAG,
    live_prices,
    manual_prices,
    price_setups,
    ranked,
    read_latencies,
    region_notes,
    setups_from_flags,
)
from amazonei_setup.errors import UsageError


def run(args, env, ui, open_aws) -> Result:
    """`open_aws`: a context manager factory for an Aws, opened only for --live-prices."""
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
                        live_accelerators=live_accelerators, live_asked=asked)
    if not asked and region != catalog.CATALOG_REGION and any(
            r.instance_source == "catalog" or r.accelerator_source == "catalog" for r in rows):
        warnings.append(f"Catalog prices are {catalog.CATALOG_REGION}'s; {region} may differ: add --live-prices to "
                        "ask AWS.")
    warnings += region_notes(setups, region)
    return Result("cost", {
        "region": region,
        "catalog": {"region": catalog.CATALOG_REGION, "date": catalog.CATALOG_DATE},
        "live_prices": bool(args.live_prices),
        "formula": FORMULA,
        "rows": [r.to_dict(cheapest=c, fastest=f) for r, c, f in ranked(rows)],
        "warnings": warnings,
    }, warnings=warnings, context={"rows": rows, "compare": args.compare or len(rows) > 1})
