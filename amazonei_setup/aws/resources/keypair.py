"""EC2 key pairs: reuse one the user has, or create one and save its private key (mode 0400)."""
from __future__ import annotations

import os
from pathlib import Path

from botocore.exceptions import ClientError

from amazonei_setup.core import tags
from amazonei_setup.core.errors import error_code
from amazonei_setup.local import paths

key_name = tags.resource_name


def default_key_dir() -> Path:
    return paths.ssh_dir()


def find_key_pairs(ec2) -> list[dict]:
    return ec2.describe_key_pairs(IncludePublicKey=False)["KeyPairs"]


def find_key_pair(ec2, name: str) -> dict | None:
    try:
        found = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
    except ClientError as err:
        if error_code(err) == "InvalidKeyPair.NotFound":
            return None
        raise
    return found[0] if found else None


def find_our_key_pair(ec2, deployment: str) -> dict | None:
    """With its public key: teardown deletes the private key file only when it holds that key's other half."""
    found = ec2.describe_key_pairs(Filters=tags.filters_for(deployment), IncludePublicKey=True)["KeyPairs"]
    return found[0] if found else None


def create_key_pair(ec2, name: str, pem_path: Path, tag_list: list[dict], *, set_aside: Path | None = None) -> str:
    """Create the key pair and write its private key; never overwrite an existing file.

    The caller checked the path is free before anything was created; O_EXCL keeps that promise
    even against a race. If writing fails the key pair is deleted again, so no key exists in AWS
    whose private half is lost. set_aside: where a leftover file at pem_path goes first (the private key of a key
    pair of this name that no longer exists, see aside_path); moved only once the new key exists.
    """
    material = ec2.create_key_pair(KeyName=name, KeyType="rsa", KeyFormat="pem",
                                   TagSpecifications=tags.tag_specs(["key-pair"], tag_list))["KeyMaterial"]
    try:
        pem_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if set_aside is not None and not set_aside.exists():
            try:
                pem_path.rename(set_aside)
            except FileNotFoundError:
                pass  # gone meanwhile: nothing to keep
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as out:
            out.write(material)
    except OSError:
        delete_key_pair(ec2, name)
        raise
    return name


def delete_key_pair(ec2, name: str) -> bool:
    try:
        ec2.delete_key_pair(KeyName=name)
        return True
    except ClientError as err:
        if error_code(err) == "InvalidKeyPair.NotFound":
            return False
        raise


def aside_path(pem_path: Path) -> Path:
    """Where a leftover private key file is kept instead of being overwritten: NAME.pem.old, .old.1, ..."""
    candidate, n = pem_path.with_name(pem_path.name + ".old"), 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = pem_path.with_name(f"{pem_path.name}.old.{n}")
    return candidate


def holds_private_key_of(pem_path: Path, key_pair: dict) -> bool:
    """Whether the file at pem_path is the private half of `key_pair` (a DescribeKeyPairs entry with PublicKey).

    The file's public key is compared when the `cryptography` package is there (it comes with the sandbox's
    moto); without it, or without the key pair's public key, the file's name must be the key pair's own
    (`<KeyName>.pem`, the name setup gives it). A file that cannot be read as a private key is not it."""
    if pem_path.name != f"{key_pair.get('KeyName')}.pem" or not pem_path.is_file():
        return False
    public = (key_pair.get("PublicKey") or "").split()
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        return True
    if len(public) < 2:
        return True
    try:
        private = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
        mine = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except Exception:  # noqa: BLE001 - unreadable, encrypted, another format: not provably this key's
        return False
    return mine.split()[1].decode() == public[1]
