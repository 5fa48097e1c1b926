"""moto answering faster, with the same answers: for the sandbox (its server) and the tests (in-process moto).

Each patch memoizes a step moto repeats on every request although its result cannot change, and gives way to
moto's own code wherever that is not certain. `apply()` is idempotent, and does nothing for a moto whose
internals differ from the ones this was written against (5.2), so a moto upgrade costs speed, never answers.
tests/test_moto_speed.py and tests/test_sandbox.py compare the answers with moto's own (each patched function
keeps moto's as `moto_original`).
"""
from __future__ import annotations

import functools
import threading
from typing import Any

PATCHES = ("_methods_listed_once_per_class", "_serializer_finds_each_attribute_once",
           "_instance_type_offerings_filtered_once", "_endpoint_services_by_name_listed_alone")


def apply() -> None:
    """Each patch on its own: one whose moto insides are missing (a module, class or name moved) is skipped."""
    for name in PATCHES:
        try:
            globals()[name]()
        except (ImportError, AttributeError, TypeError):
            continue


def _methods_listed_once_per_class() -> None:
    """moto lists its response class's methods (`inspect.getmembers`) on every request to check the action is one:
    ~10 ms each. A class's methods do not change, so once per class."""
    from moto.core import responses

    if not hasattr(responses.method_names_from_class, "cache_info"):
        responses.method_names_from_class = functools.cache(responses.method_names_from_class)


def _serializer_finds_each_attribute_once() -> None:
    """moto's response serializer walks the botocore output shape and looks each member up on moto's object under
    up to a dozen candidate names (the member name, an explicit alias, the shape's name, prefixes stripped, each
    also in snake_case), built anew by six alias providers for every member of every object: ~70% of the time
    of a DescribeInstances. The candidates depend only on the object's class, the member and its shape (and the
    shape's parent structure), so they are worked out once for each; the lookup itself still runs every time.
    Objects whose `Meta` could differ from their class's (their own `Meta`, or a `__getattr__`) take moto's
    path, as do pickers configured with other alias providers."""
    from moto.core import serialize

    get_value = serialize.ResponseSerializer.get_value
    if getattr(get_value, "finds_each_attribute_once", False):
        return
    needed = ("AttributePicker", "XFormedAttributePicker", "AttributePickerContext", "DEFAULT_ALIAS_PROVIDERS",
              "MISSING", "get_value")
    if not all(hasattr(serialize, name) for name in needed):
        return
    pickers = (serialize.AttributePicker, serialize.XFormedAttributePicker)
    providers = serialize.DEFAULT_ALIAS_PROVIDERS
    missing, lookup = serialize.MISSING, serialize.get_value
    found: dict[tuple, tuple] = {}

    def candidates(picker: Any, obj: Any, key: str, shape: Any) -> tuple[str, ...]:
        parent = getattr(shape, "parent", None)
        cache_key = (type(picker), type(obj), key, id(shape), id(parent))
        entry = found.get(cache_key)
        if entry is None or entry[0] is not shape or entry[1] is not parent:  # an id reused by a new shape
            context = serialize.AttributePickerContext(obj=obj, key=key, shape=shape)
            names = tuple(picker.get_possible_keys(context))
            entry = found[cache_key] = (shape, parent, names)
        return entry[2]

    plain_classes: dict[type, bool] = {}  # classes without a __getattr__, whose Meta is their class's

    def transforms(picker: Any, key: str) -> tuple:
        """The response transformers whose path can end the member's key path, in the picker's order. A path
        without a dot ends `<path>.<key>` only if it ends the key (a member name has no dot); one with a dot
        only if its last part is the key, and then the whole key path decides. Read anew on every call: moto
        changes a path's transformer in place per request (DescribeKeyPairs' IncludePublicKey includes or
        excludes PublicKey in the one class-wide dict), so a remembered transformer answers the last request's
        way; the dict holds a few entries."""
        return tuple((path, transform, "." in path) for path, transform in picker.response_transformers.items()
                     if (path.rpartition(".")[2] == key if "." in path else key.endswith(path)))

    def quick_get_value(self, value: Any, key: str, shape: Any) -> Any:
        picker = self._value_picker
        kind = type(value)
        plain = plain_classes.get(kind)
        if plain is None:
            plain = plain_classes[kind] = not hasattr(kind, "__getattr__")
        if (not plain or type(picker) not in pickers or picker.alias_providers is not providers
                or "Meta" in getattr(value, "__dict__", ())):
            return get_value(self, value, key, shape)
        for name in candidates(picker, value, key, shape):
            result = lookup(value, name, missing)
            if result is not missing:
                break
        else:
            result = None
        if picker.response_transformers:
            for path, transform, whole_path in transforms(picker, key):
                if not whole_path or f"{'.'.join(self.path)}.{key}".endswith(path):
                    return transform(result)
        return result

    quick_get_value.finds_each_attribute_once = True
    quick_get_value.moto_original = get_value
    serialize.ResponseSerializer.get_value = quick_get_value


def _instance_type_offerings_filtered_once() -> None:
    """DescribeInstanceTypeOfferings filters moto's static list of the region's offerings (thousands of entries,
    a closure per entry) on every call: ~20 ms each. The list never changes in a process, so each region,
    location type and filter set is filtered once."""
    from moto.ec2.models.instance_types import InstanceTypeOfferingBackend

    describe = InstanceTypeOfferingBackend.describe_instance_type_offerings
    if getattr(describe, "filtered_once", False):
        return

    filtered: dict[tuple, list] = {}

    def describe_instance_type_offerings(self, location_type=None, filters=None, *more, **named):
        if more or named:  # a moto that asks for more than this was written for
            return describe(self, location_type, filters, *more, **named)
        try:
            key = (self.region_name, location_type,
                   tuple(sorted((name, tuple(values)) for name, values in (filters or {}).items())))
            hash(key)
        except TypeError:  # a filter moto would read but we cannot key on
            return describe(self, location_type, filters)
        if key not in filtered:
            filtered[key] = describe(self, location_type, filters)
        return list(filtered[key])

    describe_instance_type_offerings.filtered_once = True
    describe_instance_type_offerings.moto_original = describe
    InstanceTypeOfferingBackend.describe_instance_type_offerings = describe_instance_type_offerings


def _endpoint_services_by_name_listed_alone() -> None:
    """setup asks EC2 for the EI runtime's endpoint service by name (which AZs offer it). moto answers any such call
    by first listing every endpoint service of the region, for which it imports the model module of each of the
    13 services that describe their own (S3, DynamoDB, ...), and sets up their regions in the account (reading
    each one's botocore model): ~1 s of a sandbox's first setup, and of every process-level sandbox test. A call
    that names only services moto describes generically (the EI runtime is one) gets exactly those generic
    entries (each made once per region, so its id stays put); any other call takes moto's own path."""
    from moto.ec2.models import vpcs

    if getattr(vpcs.VPCBackend.describe_vpc_endpoint_services, "by_name", False):
        return
    describe = vpcs.VPCBackend.describe_vpc_endpoint_services
    collect_all = vpcs.VPCBackend._collect_default_endpoint_services
    # what the patch reads at each request: missing, it is not applied (AttributeError, see apply)
    vpcs.AWS_ENDPOINT_SERVICES, vpcs.COVERED_ENDPOINT_SERVICES, vpcs.DEFAULT_VPC_ENDPOINT_SERVICES  # noqa: B018
    vpcs.RegionsAndZonesBackend.zones, vpcs.BaseBackend.default_vpc_endpoint_service_factory  # noqa: B018
    generic: dict[tuple[str, str], list[dict]] = {}
    lock = threading.Lock()
    asked = threading.local()  # the generic services the current call names, or None: moto's own list

    def generically_described(names: list[str], region: str) -> list[str] | None:
        prefix = f"com.amazonaws.{region}."
        short = [name[len(prefix):] for name in names if name.startswith(prefix)]
        if not names or len(short) != len(names) or any(
                s not in vpcs.AWS_ENDPOINT_SERVICES or s in vpcs.COVERED_ENDPOINT_SERVICES for s in short):
            return None
        return short

    def collect(account_id: str, region: str) -> list[dict]:
        names = getattr(asked, "names", None)
        if names is None or region in vpcs.DEFAULT_VPC_ENDPOINT_SERVICES:  # moto's list, once it exists
            return collect_all(account_id, region)
        zones = [zone.name for zones in vpcs.RegionsAndZonesBackend.zones.values() for zone in zones
                 if zone.name.startswith(region)]
        with lock:
            for name in names:
                if (region, name) not in generic:
                    generic[region, name] = vpcs.BaseBackend.default_vpc_endpoint_service_factory(region, zones, name)
            return [service for name in names for service in generic[region, name]]

    def describe_by_name(self, service_names, filters, max_results, next_token, region):
        asked.names = generically_described(list(service_names or []), region)
        try:
            return describe(self, service_names, filters, max_results, next_token, region)
        finally:
            asked.names = None

    describe_by_name.by_name = True
    describe_by_name.moto_original = describe
    collect.moto_original = collect_all
    vpcs.VPCBackend._collect_default_endpoint_services = staticmethod(collect)
    vpcs.VPCBackend.describe_vpc_endpoint_services = describe_by_name
