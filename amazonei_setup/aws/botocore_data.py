"""botocore's bundled data files (service models, endpoints.json), read at a command's speed.

Every command starts a new process, and botocore's plain loader made each one parse the JSON models and
endpoints.json again and, before each first load of a kind of file (service-2, paginators-1, endpoint-rule-set-1,
waiters-2), walk all ~420 service directories with two stat calls per API version, only to see that the one
service asked for is among them. This module loads the same data without either cost (the walk and endpoints.json
were ~0.25 s of every command: `list --sandbox` 1.53 -> 1.28 s). It imports botocore but not boto3, so `regions`
(the decision layer) can use it. One loader per process (`shared`): its cache holds what was read.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading

import botocore.loaders
from botocore.exceptions import DataNotFoundError

from amazonei_setup.local import paths

# Library insides (underscore names of botocore) are used only for speed, each behind a fallback to botocore's
# public behaviour: botocore ships a release almost every weekday and promises nothing about them. A use that fails
# (renamed, removed, another signature) gives way for the rest of the process, once, said in the call log only.
GAVE_WAY: dict[str, str] = {}  # speed-up -> why (the error botocore's insides raised)
_gave_way_lock = threading.Lock()
_FAILURES = (AttributeError, TypeError, ValueError, KeyError)
log = logging.getLogger("amazonei_setup.aws.client")  # the call log (aws.start_call_log), which repeats earlier ones


def give_way(what: str, err: BaseException | None = None) -> None:
    """Record that the speed-up `what` gave way to the library's public behaviour (once per process)."""
    with _gave_way_lock:
        if what in GAVE_WAY:
            return
        GAVE_WAY[what] = repr(err)
    log.info(gave_way_line(what))


def gave_way_line(what: str) -> str:
    return f"speed-up {what} off (the library's insides differ: {GAVE_WAY[what]}); using its public behaviour"


class CachedJSONFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's model files, parsed once per botocore release and kept as pickles in the tool's cache.

    Parsing them (gzip + JSON into OrderedDicts) is ~0.3 s of every command, EC2's model alone 0.25 s; a pickle of
    the same objects loads in well under half that. The key is the file's path, size and mtime, so an upgraded
    botocore reads its own files. A cache that cannot be read or written is skipped: botocore's own parse is the
    answer then."""

    def _load_file(self, full_path, open_method, *more, **named):
        if more or named or "pickled-models" in GAVE_WAY:  # a botocore that calls this otherwise: its own
            return super()._load_file(full_path, open_method, *more, **named)
        try:
            stat = os.stat(full_path)
        except OSError:
            return None
        key = hashlib.sha256(f"{full_path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
        try:
            cached = paths.cache_dir() / f"{key}.pickle"
        except RuntimeError:  # no home directory: nowhere to keep it
            return super()._load_file(full_path, open_method)
        try:
            with open(cached, "rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError):
            pass
        data = super()._load_file(full_path, open_method)
        try:
            cached.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cached)
        except OSError:
            pass
        return data


class Loader(botocore.loaders.Loader):
    """botocore's Loader, asking only the service it loads whether it has the kind of file asked for.

    botocore's `load_service_model` first lists every service that has such a file (`list_available_services`: a
    directory listing of each service and two stat calls per API version, ~0.1 s per kind of file), then checks
    the one asked for is in the list. A service is in that list exactly when it has an API version holding the
    file, which is what `list_api_versions` answers for that one service. The full list is still built for the
    error of an unknown service, which names the known ones as botocore does."""

    @botocore.loaders.instance_cache
    def load_service_model(self, service_name, type_name, api_version=None):
        if "one-service-listing" not in GAVE_WAY:
            try:
                return self._load_one_service_model(service_name, type_name, api_version)
            except _FAILURES as err:  # botocore's insides moved: its own (public) path below
                give_way("one-service-listing", err)
        return super().load_service_model(service_name, type_name, api_version)

    def _load_one_service_model(self, service_name, type_name, api_version):
        try:
            if not service_name or os.sep in service_name or service_name.startswith("."):
                raise DataNotFoundError(data_path=service_name)  # not a directory name: botocore's own answer
            versions = self.list_api_versions(service_name, type_name)
        except DataNotFoundError:  # unknown: botocore's own path raises its UnknownServiceError, naming the known
            return super().load_service_model(service_name, type_name, api_version)
        if api_version is None:
            api_version = max(versions)  # botocore's determine_latest_version
        model = self.load_data(os.path.join(service_name, api_version, type_name))
        self._extras_processor.process(model, self._find_extras(service_name, type_name, api_version))
        return model


class _UniquePaths(list):
    """A boto3.Session (tests and moto make them) appends its own data directory to the loader's search path on
    every construction: kept once, as the loader is shared by every Session."""

    def append(self, path) -> None:
        if path not in self:
            super().append(path)


def create_loader() -> Loader:
    """A loader of botocore's data (the default search paths, as botocore.loaders.create_loader())."""
    loader = Loader(file_loader=CachedJSONFileLoader())
    if isinstance(getattr(loader, "_search_paths", None), list) and loader._search_paths is loader.search_paths:
        loader._search_paths = _UniquePaths(loader.search_paths)
    else:  # a Session then adds boto3's data directory again each time it is made: a longer search, same answers
        give_way("unique-search-paths")
    return loader


_shared_lock = threading.Lock()
_shared: list[Loader] = []


def shared() -> Loader:
    """The process's loader (the CLI's region check, every botocore Session the tool makes, and the sandbox's moto)."""
    with _shared_lock:
        if not _shared:
            _shared.append(create_loader())
        return _shared[0]
