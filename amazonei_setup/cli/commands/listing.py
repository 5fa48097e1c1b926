"""`list`: this tool's deployments in a region (or all), found by their tags; the result is the table."""
from __future__ import annotations

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.printed import teardown_command_for
from amazonei_setup.cli.environment import Environment


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.aws.discover import check_region
    from amazonei_setup.flows import deployments

    roles = None
    if args.all_regions:
        roles = deployments.our_roles(aws)
        regions = deployments.regions_to_search(aws, roles)
    else:
        regions = [aws.region]
        check_region(aws.region, ei=False)  # alternatives (inf2, gpu) may run outside the EI regions
    warnings: list[str] = []
    rows = deployments.list_all(aws, regions, roles, warnings)
    data = [r.to_dict() for r in rows]
    for row in data:
        if row.get("left"):  # a run stopped part-way: say how to finish the job
            row["teardown_command"] = teardown_command_for(args, row["region"], row["name"])
    return Result("list", {"regions": regions, "deployments": data}, warnings=warnings)
