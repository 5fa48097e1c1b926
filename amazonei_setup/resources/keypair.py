"""EC2 key pairs: reuse one the user has, or create one and save its private key (mode 0400)."""
from __future__ import annotations

import os
from pathlib import Path

from botocore.exceptions import ClientError

from amazonei_setup import paths, tags
from amazonei_setup.errors import error_code

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
    found = ec2.describe_key_pairs(Filters=tags.filters_for(deployment))["KeyPairs"]
    return found[0] if found else None


def create_key_pair(ec2, name: str, pem_path: Path, tag_list: list[dict]) -> str:
    """Create the key pair and write its private key; never overwrite an existing file.

    The caller checked the path is free before anything was created; O_EXCL keeps that promise
    even against a race. If writing fails the key pair is deleted again, so no key exists in AWS
    whose private half is lost.
    """
    material = ec2.create_key_pair(KeyName=name, KeyType="rsa", KeyFormat="pem",
                                   TagSpecifications=tags.tag_specs(["key-pair"], tag_list))["KeyMaterial"]
    try:
        pem_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
