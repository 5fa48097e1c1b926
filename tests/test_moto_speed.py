"""moto_speed (the sandbox's and the tests' faster moto) must not change an answer: every read that two setups, a
status and a list make is asked again of moto's own code, and the answers must be the same."""
from __future__ import annotations

import copy

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError
from moto.core import serialize
from moto.ec2.models.instance_types import InstanceTypeOfferingBackend

from amazonei_setup.sandbox.account import seed_alternative_amis
from tests.conftest import ACCOUNT, REGION, setup_args

READS = ("Describe", "Get", "List")


def test_every_read_of_a_deployment_gets_moto_s_own_answer(cli, account, monkeypatch):
    reads: list[tuple[str, str, dict]] = []

    def remember(params, model, **_):
        if model.name.startswith(READS):
            reads.append((model.service_model.service_name, model.name, copy.deepcopy(params)))

    account.session.register("before-parameter-build", remember)
    assert cli(*setup_args("quick", "--idle-stop", "60")).code == 0
    seed_alternative_amis(ACCOUNT, REGION)
    assert cli(*setup_args("quick-gpu", "--accelerator", "gpu", "--instance-type", "g4dn.xlarge")).code == 0
    assert cli("status", "--name", "quick").code == 0
    assert cli("list", "--region", REGION).code == 0
    asked = {operation for _, operation, _ in reads}
    assert {"DescribeInstances", "DescribeSecurityGroups", "DescribeVpcEndpoints", "DescribeImages",
            "DescribeInstanceTypeOfferings", "GetRole", "DescribeAlarms"} <= asked, asked

    # The offerings moto_speed keeps per location type and filter set: ask for neighbours of what the tool asked.
    for location_type in ("region", "availability-zone", "availability-zone-id"):
        for filters in ([{"Name": "instance-type", "Values": ["m5.xlarge"]}],
                        [{"Name": "instance-type", "Values": ["g4dn.xlarge", "inf2.xlarge"]}],
                        [{"Name": "instance-type", "Values": ["m5.xlarge"]},
                         {"Name": "location", "Values": ["us-west-2a"]}]):
            reads.append(("ec2", "DescribeInstanceTypeOfferings", {"LocationType": location_type, "Filters": filters}))

    def answers() -> list:
        found = []
        for service, operation, params in reads:
            client = boto3.client(service, region_name=REGION)
            try:
                answer = getattr(client, xform_name(operation))(**params)
            except ClientError as error:
                answer = error.response["Error"]
            answer.pop("ResponseMetadata", None)
            found.append((operation, answer))
        return found

    quick = answers()
    get_value = serialize.ResponseSerializer.get_value
    describe_offerings = InstanceTypeOfferingBackend.describe_instance_type_offerings
    assert get_value.finds_each_attribute_once and describe_offerings.filtered_once  # moto_speed is on
    monkeypatch.setattr(serialize.ResponseSerializer, "get_value", get_value.moto_original)
    monkeypatch.setattr(InstanceTypeOfferingBackend, "describe_instance_type_offerings",
                        describe_offerings.moto_original)
    own = answers()
    for (operation, mine), (_, moto_s) in zip(quick, own, strict=True):
        assert mine == moto_s, operation


def test_a_field_one_request_leaves_out_is_in_the_next_that_asks_for_it(account):
    """moto includes or excludes a key pair's PublicKey per request by changing one class-wide transformer in place
    (IncludePublicKey): an answer must follow the request it answers, not the one before (teardown compares the
    public key with the .pem it deletes)."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ec2.create_key_pair(KeyName="k")
    assert serialize.ResponseSerializer.get_value.finds_each_attribute_once  # moto_speed is on
    for include in (False, True, False, True):
        (pair,) = ec2.describe_key_pairs(IncludePublicKey=include)["KeyPairs"]
        assert ("PublicKey" in pair) is include
