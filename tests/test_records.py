"""The local record lets teardown find the exact .pem setup saved (and delete it with its key pair); without it
teardown still works."""
from __future__ import annotations

from tests.conftest import REGION, setup_args, snapshot


def test_teardown_deletes_the_pem_setup_saved_where_the_record_says_and_forgets_the_record(cli, account,
                                                                                          isolated_env):
    key_dir = isolated_env / "keys"
    made = cli(*setup_args("rec"), "--key-dir", str(key_dir), "--output", "json")
    assert made.code == 0, made.stderr
    record = isolated_env / ".amazonei-setup" / "deployments" / f"{REGION}--rec.json"
    assert record.is_file()
    assert oct(record.stat().st_mode & 0o777) == "0o600"

    gone = cli("teardown", "--region", REGION, "--name", "rec", "--yes")

    assert gone.code == 0, gone.stderr
    assert f"deleted private-key-file {key_dir / 'amazonei-setup-rec.pem'}" in " ".join(gone.stdout.split())
    assert not (key_dir / "amazonei-setup-rec.pem").exists()  # its key pair is gone: it opens nothing
    assert not record.exists()


def test_teardown_without_the_record_still_finishes(cli, account, isolated_env):
    """From another machine, or after the record was deleted: tags are the source of truth."""
    before = snapshot(account)
    assert cli(*setup_args("other")).code == 0
    (isolated_env / ".amazonei-setup" / "deployments" / f"{REGION}--other.json").unlink()

    gone = cli("teardown", "--region", REGION, "--name", "other", "--yes")

    assert gone.code == 0, gone.stderr
    pem = isolated_env / ".ssh" / "amazonei-setup-other.pem"  # the default place; its public key is the key pair's
    assert str(pem) in gone.stdout and not pem.exists()
    assert snapshot(account) == before


def test_a_record_path_that_is_a_directory_is_a_warning_after_a_clean_teardown(cli, account, isolated_env):
    """AWS is clean, so the teardown succeeded: a local note it cannot remove is said, never an 'Unexpected error'."""
    before = snapshot(account)
    assert cli(*setup_args("dir")).code == 0
    record = isolated_env / ".amazonei-setup" / "deployments" / f"{REGION}--dir.json"
    record.unlink()
    record.mkdir()
    (record / "something").write_text("not ours")

    gone = cli("teardown", "--region", REGION, "--name", "dir", "--yes")

    assert gone.code == 0, gone.stderr
    assert snapshot(account) == before
    screen = " ".join(gone.stderr.split())
    assert f"This machine's note of the deployment, {record}, could not be removed" in screen
    assert "Unexpected error" not in screen and "Traceback" not in screen
    assert "Deployment dir removed." in gone.stdout


def test_a_record_that_is_not_an_object_reads_as_no_record(cli, account, isolated_env):
    assert cli(*setup_args("odd")).code == 0
    record = isolated_env / ".amazonei-setup" / "deployments" / f"{REGION}--odd.json"
    record.write_text("[1, 2]")

    for argv in (("status", "--name", "odd"), ("teardown", "--region", REGION, "--name", "odd", "--yes")):
        done = cli(*argv)
        assert done.code == 0, done.stderr
    assert not record.exists()
