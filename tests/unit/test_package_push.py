"""``modelpilot push`` to a folder (the local backend) through the CLI: manifest last, skips, conflicts."""

from __future__ import annotations

import json

from modelpilot.cli.app import main


def test_push_to_a_folder_then_again_sends_nothing(make_package, tmp_path, capsys):
    root = make_package("churn")
    target = tmp_path / "store" / "churn" / "1"
    assert main(["push", str(root), str(target), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [f["uri"].rsplit("/", 1)[1] for f in first["files"]] == ["model.bin", "modelpilot.json"]
    assert [f["status"] for f in first["files"]] == ["uploaded", "uploaded"]
    assert (target / "model.bin").read_bytes() == (root / "model.bin").read_bytes()
    assert main(["push", str(root), str(target)]) == 0
    assert "0 uploaded, 0 resumed, 2 already there; 0 B sent" in capsys.readouterr().out
    assert main(["register", str(target), "--home", str(tmp_path / "home")]) == 0


def test_push_refuses_another_package_and_tampered_files(make_package, tmp_path, capsys):
    one, two = make_package("churn"), make_package("churn", auc=0.9)
    target = tmp_path / "store"
    assert main(["push", str(one), str(target)]) == 0
    assert main(["push", str(two), str(target)]) == 6
    assert "already holds another package" in capsys.readouterr().err
    assert (target / "model.bin").read_bytes() == (one / "model.bin").read_bytes()  # untouched
    (two / "model.bin").write_bytes(b"tampered")
    assert main(["push", str(two), str(tmp_path / "elsewhere")]) == 2
    assert not (tmp_path / "elsewhere").exists()


def test_push_names_the_destinations_it_understands(make_package):
    root = make_package("churn")
    assert main(["push", str(root), "https://example.com/models/"]) == 2
    assert main(["push", str(root), "s3://bucket/models/churn/1", "--backend", "azure"]) == 2
