"""moto answering faster, with the same answers: for the sandbox (its server) and the tests (in-process moto).

Each patch memoizes a step moto repeats on every request although its result cannot change, and gives way to
moto's own code wherever that is not certain. `apply()` is idempotent, and does nothing for a moto whose
internals differ from the ones this was written against (5.2), so a moto upgrade costs speed, never answers.
tests/test_moto_speed.py compares every answer that two setups, a status and a list read with moto's own (each patched
function keeps moto's as `moto_original`).
"""
from __future__ import annotations

from typing import Any


def apply() -> None:
    _serializer_finds_each_attribute_once()
    _instance_type_offerings_filtered_once()


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
    transforms_of: dict[tuple, tuple] = {}

    def transforms(picker: Any, key: str) -> tuple:
        """The response transformers whose path can end the member's key path, in the picker's order. A path
        without a dot ends `<path>.<key>` only if it ends the key (a member name has no dot); one with a dot
        only if its last part is the key, and then the whole key path decides."""
        cache_key = (id(picker.response_transformers), key)
        entry = transforms_of.get(cache_key)
        if entry is None or entry[0] is not picker.response_transformers:
            fitting = tuple((path, transform, "." in path) for path, transform in picker.response_transformers.items()
                            if (path.rpartition(".")[2] == key if "." in path else key.endswith(path)))
            entry = transforms_of[cache_key] = (picker.response_transformers, fitting)
        return entry[1]

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
