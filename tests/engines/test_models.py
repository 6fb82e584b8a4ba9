"""engines.models: the table, downloads from a local server, imports, hashes, safety."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import stat
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines import models
from engines.archive import UnsafeArchive
from engines.base import ModelFileError
from engines.download import DownloadCancelled, HashMismatch, InsecureURL
from tests.engines import FileServer, tiny_onnx_bytes

# Stand-in bytes: the load check is replaced by a recorder (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("unchecked_model_loads")

CONTRACT_NAMES = ("simswap-224", "simswap-512", "arcface-simswap", "inswapper-128",
                  "arcface-w600k", "scrfd-10g", "face-mesh", "face-parsing", "gfpgan-1.4")


def fake_checkpoint(seed: int = 0) -> bytes:
    """Bytes shaped like a legacy torch pickle (starts with the pickle protocol opcode)."""
    return pickle.dumps({"weight": list(range(seed, seed + 64))}, protocol=2)


def make_zip(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


DET = tiny_onnx_bytes(1.0)
W600K = tiny_onnx_bytes(2.0)
INSWAPPER = tiny_onnx_bytes(3.0)
BUFFALO = make_zip({"1k3d68.onnx": tiny_onnx_bytes(9.0), "det_10g.onnx": DET,
                    "w600k_r50.onnx": W600K})


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture()
def server() -> Iterator[FileServer]:
    with FileServer({"/inswapper_128.onnx": INSWAPPER, "/buffalo_l.zip": BUFFALO}) as srv:
        yield srv


def staging_is_clean(models_dir: Path) -> bool:
    folder = models_dir / models.STAGING_DIR
    return not folder.exists() or not any(folder.iterdir())


# -- the table -------------------------------------------------------------------------

def test_table_covers_the_contract_and_is_sane() -> None:
    assert tuple(models.MODELS) == CONTRACT_NAMES
    layout = {"simswap-224": "latest_net_G.pth", "simswap-512": "550000_net_G.pth",
              "arcface-simswap": "arcface_checkpoint.tar", "inswapper-128": "inswapper_128.onnx",
              "arcface-w600k": "w600k_r50.onnx", "scrfd-10g": "det_10g.onnx",
              "face-mesh": "face_landmark.tflite", "face-parsing": "79999_iter.pth",
              "gfpgan-1.4": "GFPGANv1.4.pth"}
    for name, info in models.MODELS.items():
        assert info.name == name
        assert models.model_path(Path("/m"), name) == Path("/m") / name / layout[name]
        assert info.urls and all(u.startswith("https://") for u in info.urls)
        assert info.licence and info.licence_url.startswith("https://") and info.size_mb > 0
        for file in info.files:
            assert file.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", file.sha256)
    assert models.MODELS["simswap-224"].download_name == "checkpoints.zip"
    assert models.MODELS["simswap-512"].download_name == "512.zip"
    assert models.MODELS["scrfd-10g"].download_name == "buffalo_l.zip"
    with pytest.raises(models.UnknownModel, match="expected one of simswap-224"):
        models.model_path(Path("/m"), "simswap-1024")


# -- downloads -------------------------------------------------------------------------

def test_licence_gate_blocks_before_any_request(models_dir: Path,
                                                server: FileServer) -> None:
    with pytest.raises(models.LicenceNotAccepted) as info:
        models.download_model("inswapper-128", models_dir, accept_licence=False,
                              progress=False, base_url=server.base_url)
    assert "non-commercial" in str(info.value) and "--accept-licence" in str(info.value)
    assert server.seen == []
    assert models.model_status(models_dir, "inswapper-128") == "missing"


def test_download_direct_file_records_its_hash(models_dir: Path, server: FileServer) -> None:
    done: list[tuple[int, int]] = []
    path = models.download_model("inswapper-128", models_dir, accept_licence=True,
                                 progress=lambda d, t: done.append((d, t)),
                                 base_url=server.base_url)
    assert path == models_dir / "inswapper-128" / "inswapper_128.onnx"
    assert path.read_bytes() == INSWAPPER
    assert done[-1] == (len(INSWAPPER), len(INSWAPPER))
    record = json.loads((models_dir / "hashes.json").read_text())["files"]
    assert record["inswapper-128/inswapper_128.onnx"]["sha256"] == sha(INSWAPPER)
    assert models.model_status(models_dir, "inswapper-128") == "verified"
    assert models.require_model(models_dir, "inswapper-128") == path
    assert staging_is_clean(models_dir)
    # Already verified: no second request.
    models.download_model("inswapper-128", models_dir, accept_licence=True, progress=False,
                          base_url=server.base_url)
    assert len(server.seen) == 1


def test_download_archive_extracts_only_what_we_need(models_dir: Path,
                                                     server: FileServer) -> None:
    models.download_model("scrfd-10g", models_dir, accept_licence=True, progress=False,
                          base_url=server.base_url)
    assert (models_dir / "scrfd-10g" / "det_10g.onnx").read_bytes() == DET
    # buffalo_l also holds the w600k ArcFace: installed from the same download.
    assert (models_dir / "arcface-w600k" / "w600k_r50.onnx").read_bytes() == W600K
    assert not list(models_dir.rglob("1k3d68.onnx"))
    assert models.model_status(models_dir, "arcface-w600k") == "verified"
    assert staging_is_clean(models_dir)
    assert [r.path for r in server.seen] == ["/buffalo_l.zip"]


def test_an_archive_without_the_model_is_an_error(models_dir: Path,
                                                 server: FileServer) -> None:
    server.files["/buffalo_l.zip"] = make_zip({"1k3d68.onnx": tiny_onnx_bytes(9.0)})
    with pytest.raises(ModelFileError, match=r"the archive holds no det_10g\.onnx"):
        models.download_model("scrfd-10g", models_dir, accept_licence=True, progress=False,
                              base_url=server.base_url)
    assert models.model_status(models_dir, "scrfd-10g") == "missing"
    assert staging_is_clean(models_dir)


def test_a_failing_sibling_does_not_fail_the_requested_model(
        models_dir: Path, server: FileServer, tmp_path: Path) -> None:
    w600k = tmp_path / "w600k_r50.onnx"
    w600k.write_bytes(W600K)
    models.import_model(w600k, models_dir)
    models.model_path(models_dir, "arcface-w600k").write_bytes(b"damaged")
    # The archive now holds a w600k that differs from the one recorded at import.
    server.files["/buffalo_l.zip"] = make_zip({"det_10g.onnx": DET,
                                               "w600k_r50.onnx": tiny_onnx_bytes(8.0)})
    models.download_model("scrfd-10g", models_dir, accept_licence=True, progress=False,
                          base_url=server.base_url)
    assert models.model_status(models_dir, "scrfd-10g") == "verified"
    assert models.model_status(models_dir, "arcface-w600k") == "corrupt"
    assert models.model_path(models_dir, "arcface-w600k").read_bytes() == b"damaged"
    assert staging_is_clean(models_dir)


def test_download_resumes_after_a_cut(models_dir: Path, server: FileServer) -> None:
    # Padding makes the body span several read chunks, so the cut lands mid-file.
    payload = make_zip({"det_10g.onnx": DET, "w600k_r50.onnx": W600K,
                        "pad.bin": os.urandom(3 << 20)})
    server.files["/buffalo_l.zip"] = payload
    server.cut_once.add("/buffalo_l.zip")
    models.download_model("scrfd-10g", models_dir, accept_licence=True, progress=False,
                          base_url=server.base_url)
    assert len(server.seen) == 2 and server.seen[1].range is not None
    assert models.model_status(models_dir, "scrfd-10g") == "verified"


def test_tofu_mismatch_on_redownload_deletes_temp_and_reports(
        models_dir: Path, server: FileServer) -> None:
    path = models.download_model("inswapper-128", models_dir, accept_licence=True,
                                 progress=False, base_url=server.base_url)
    path.write_bytes(b"\x00" * len(INSWAPPER))  # damaged on disk
    assert models.model_status(models_dir, "inswapper-128") == "corrupt"
    server.files["/inswapper_128.onnx"] = tiny_onnx_bytes(5.0)  # upstream now differs
    with pytest.raises(HashMismatch) as info:
        models.download_model("inswapper-128", models_dir, accept_licence=True,
                              progress=False, base_url=server.base_url)
    assert info.value.expected == sha(INSWAPPER)
    assert info.value.got == sha(tiny_onnx_bytes(5.0))
    assert staging_is_clean(models_dir)
    # The original bytes come back: the corrupt file is replaced and verifies again.
    server.files["/inswapper_128.onnx"] = INSWAPPER
    models.download_model("inswapper-128", models_dir, accept_licence=True, progress=False,
                          base_url=server.base_url)
    assert path.read_bytes() == INSWAPPER
    assert models.verify_model(models_dir, "inswapper-128")


def test_cancel_then_resume(models_dir: Path, server: FileServer) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        models.download_model("inswapper-128", models_dir, accept_licence=True,
                              progress=False, base_url=server.base_url, cancel=cancel)
    assert models.model_status(models_dir, "inswapper-128") == "missing"
    cancel.clear()
    models.download_model("inswapper-128", models_dir, accept_licence=True, progress=False,
                          base_url=server.base_url, cancel=cancel)
    assert models.model_status(models_dir, "inswapper-128") == "verified"


def test_plain_http_mirror_is_refused(models_dir: Path) -> None:
    with pytest.raises(InsecureURL):
        models.download_model("inswapper-128", models_dir, accept_licence=True,
                              progress=False, base_url="http://example.com/mirror")


def test_archive_with_parent_entry_is_refused_on_download(
        models_dir: Path, server: FileServer, tmp_path: Path) -> None:
    server.files["/buffalo_l.zip"] = make_zip({"det_10g.onnx": DET,
                                               "../../escaped.onnx": DET})
    with pytest.raises(UnsafeArchive, match=r"\.\./\.\./escaped\.onnx"):
        models.download_model("scrfd-10g", models_dir, accept_licence=True, progress=False,
                              base_url=server.base_url)
    assert not list(tmp_path.rglob("escaped.onnx"))
    assert models.model_status(models_dir, "scrfd-10g") == "missing"
    assert staging_is_clean(models_dir)


# -- imports ---------------------------------------------------------------------------

@pytest.mark.parametrize("entries, symlink", [
    ({"people/latest_net_G.pth": b"\x80x", "../evil.pth": b"\x80x"}, None),
    ({"people/latest_net_G.pth": b"\x80x", "/tmp/evil.pth": b"\x80x"}, None),
    ({"people/latest_net_G.pth": b"\x80x"}, "people/link"),
])
def test_unsafe_archives_are_refused_and_write_nothing(
        entries: dict[str, bytes], symlink: str | None, tmp_path: Path,
        models_dir: Path) -> None:
    archive = tmp_path / "in" / "checkpoints.zip"
    archive.parent.mkdir()
    archive.write_bytes(make_zip(entries, symlink=symlink))
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(UnsafeArchive, match="refusing archive"):
        models.import_model(archive, models_dir)
    # refused before anything was extracted: not even the wanted member, not a staging
    # file, anywhere under the test's folder
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == {p for p in before
                                                               if p.is_file()}
    assert not models_dir.exists() or not any(p.is_file() for p in models_dir.rglob("*"))


def test_import_official_archives_and_files(tmp_path: Path, models_dir: Path) -> None:
    src = tmp_path / "downloads"
    src.mkdir()
    g224, g512, arc = fake_checkpoint(1), fake_checkpoint(2), fake_checkpoint(3)
    (src / "checkpoints.zip").write_bytes(make_zip({
        "checkpoints/people/latest_net_G.pth": g224,
        "checkpoints/people/latest_net_D1.pth": fake_checkpoint(9)}))
    (src / "512.zip").write_bytes(make_zip({"512/550000_net_G.pth": g512}))
    (src / "arcface_checkpoint.tar").write_bytes(arc)
    (src / "inswapper_128.onnx").write_bytes(INSWAPPER)
    (src / "buffalo_l.zip").write_bytes(BUFFALO)

    assert models.import_model(src / "checkpoints.zip", models_dir) == ["simswap-224"]
    assert models.import_model(src / "512.zip", models_dir) == ["simswap-512"]
    assert models.import_model(src / "arcface_checkpoint.tar", models_dir) == ["arcface-simswap"]
    assert models.import_model(src / "inswapper_128.onnx", models_dir) == ["inswapper-128"]
    assert sorted(models.import_model(src / "buffalo_l.zip", models_dir)) == [
        "arcface-w600k", "scrfd-10g"]
    expected = {"simswap-224": g224, "simswap-512": g512, "arcface-simswap": arc,
                "inswapper-128": INSWAPPER, "arcface-w600k": W600K, "scrfd-10g": DET}
    for name, data in expected.items():
        assert models.model_path(models_dir, name).read_bytes() == data
        assert models.model_status(models_dir, name) == "verified"
    assert not list(models_dir.rglob("latest_net_D1.pth"))
    assert staging_is_clean(models_dir)
    assert src.joinpath("inswapper_128.onnx").exists()  # import copies, never moves


def test_import_antelopev2_takes_its_scrfd_only(tmp_path: Path, models_dir: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    archive = tmp_path / "antelopev2.zip"
    archive.write_bytes(make_zip({"antelopev2/scrfd_10g_bnkps.onnx": DET,
                                  "antelopev2/glintr100.onnx": W600K}))
    with caplog.at_level("INFO", logger="engines.models"):
        assert models.import_model(archive, models_dir) == ["scrfd-10g"]
    assert (models_dir / "scrfd-10g" / "det_10g.onnx").read_bytes() == DET
    assert models.model_status(models_dir, "arcface-w600k") == "missing"
    assert "glintr100" in caplog.text


def test_import_folder_and_forced_name(tmp_path: Path, models_dir: Path) -> None:
    folder = tmp_path / "SimSwap" / "checkpoints" / "people"
    folder.mkdir(parents=True)
    (folder / "latest_net_G.pth").write_bytes(fake_checkpoint(4))
    # A training run's own generator sorts after "people": the released one must win.
    other = tmp_path / "SimSwap" / "checkpoints" / "zz_my_run"
    other.mkdir()
    (other / "latest_net_G.pth").write_bytes(fake_checkpoint(5))
    assert models.import_model(tmp_path / "SimSwap", models_dir) == ["simswap-224"]
    assert models.model_path(models_dir, "simswap-224").read_bytes() == fake_checkpoint(4)
    renamed = tmp_path / "my_swapper.onnx"
    renamed.write_bytes(INSWAPPER)
    with pytest.raises(models.ImportNotRecognised, match="--as NAME"):
        models.import_model(renamed, models_dir)
    assert models.import_model(renamed, models_dir, "inswapper-128") == ["inswapper-128"]
    assert models.model_status(models_dir, "inswapper-128") == "verified"


def test_truncated_onnx_import_is_refused_and_nothing_half_installed(
        tmp_path: Path, models_dir: Path) -> None:
    good = tmp_path / "good" / "inswapper_128.onnx"
    good.parent.mkdir()
    good.write_bytes(INSWAPPER)
    models.import_model(good, models_dir)
    bad = tmp_path / "inswapper_128.onnx"
    bad.write_bytes(INSWAPPER[: len(INSWAPPER) // 2])
    with pytest.raises(ModelFileError, match="not a valid ONNX"):
        models.import_model(bad, models_dir)
    assert models.model_path(models_dir, "inswapper-128").read_bytes() == INSWAPPER
    assert models.model_status(models_dir, "inswapper-128") == "verified"
    assert staging_is_clean(models_dir)


def test_html_page_saved_as_checkpoint_is_refused(tmp_path: Path, models_dir: Path) -> None:
    page = tmp_path / "latest_net_G.pth"
    page.write_bytes(b"<!DOCTYPE html><title>Google Drive - quota exceeded</title>")
    with pytest.raises(ModelFileError, match="not a torch checkpoint"):
        models.import_model(page, models_dir)
    assert models.model_status(models_dir, "simswap-224") == "missing"


# -- status, verification, require ------------------------------------------------------

def test_corruption_is_detected_and_never_loaded(tmp_path: Path, models_dir: Path) -> None:
    src = tmp_path / "inswapper_128.onnx"
    src.write_bytes(INSWAPPER)
    models.import_model(src, models_dir)
    path = models.model_path(models_dir, "inswapper-128")
    st = path.stat()
    # Same size, same mtime, one byte flipped: only a full hash can see it.
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert models.model_status(models_dir, "inswapper-128") == "verified"  # cheap check
    assert not models.verify_model(models_dir, "inswapper-128")
    # Rewritten (new mtime): the cheap check re-hashes and sees it too.
    path.write_bytes(bytes(data))
    assert models.model_status(models_dir, "inswapper-128") == "corrupt"
    with pytest.raises(models.ModelCorrupt, match="corrupt") as info:
        models.require_model(models_dir, "inswapper-128")
    assert "models download inswapper-128" in str(info.value)
    # A different size is corrupt without hashing.
    path.write_bytes(INSWAPPER + b"x")
    assert models.model_status(models_dir, "inswapper-128") == "corrupt"
    # Importing a good copy replaces it.
    models.import_model(src, models_dir)
    assert models.verify_model(models_dir, "inswapper-128")


def test_a_size_change_is_corrupt_without_hashing(tmp_path: Path, models_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded size is the cheap check: a file of another size is corrupt before
    (and without) reading its ~0.5 GB."""
    src = tmp_path / "inswapper_128.onnx"
    src.write_bytes(INSWAPPER)
    models.import_model(src, models_dir)
    models.model_path(models_dir, "inswapper-128").write_bytes(INSWAPPER + b"x")

    def no_hashing(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("hashed although the size already differs")

    monkeypatch.setattr(models, "sha256_file", no_hashing)
    assert models.model_status(models_dir, "inswapper-128") == "corrupt"


def test_every_install_goes_through_the_load_check(
        tmp_path: Path, models_dir: Path, server: FileServer,
        unchecked_model_loads: list[tuple[str, str]]) -> None:
    """Imports, downloads and the siblings of an archive are each loaded as their model
    before they are installed (here the recorder stands in for export/validate.py)."""
    src = tmp_path / "inswapper_128.onnx"
    src.write_bytes(INSWAPPER)
    models.import_model(src, models_dir)
    models.download_model("scrfd-10g", models_dir, accept_licence=True, progress=False,
                          base_url=server.base_url)
    assert {name for name, _file in unchecked_model_loads} == {
        "inswapper-128", "scrfd-10g", "arcface-w600k"}


def test_require_missing_model_gives_exact_commands(models_dir: Path) -> None:
    with pytest.raises(models.ModelMissing) as info:
        models.require_model(models_dir, "simswap-224")
    message = str(info.value)
    assert f"python main.py --models-dir {models_dir} models download simswap-224" in message
    assert f"python main.py --models-dir {models_dir} models import PATH" in message
    assert "checkpoints.zip" in message
    assert isinstance(info.value, ModelFileError)


def test_require_uses_plain_commands_for_the_default_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWAPCAM_MODELS_DIR", str(tmp_path))
    with pytest.raises(models.ModelMissing) as info:
        models.require_model(tmp_path, "scrfd-10g")
    assert "python main.py models download scrfd-10g" in str(info.value)
    assert "python main.py models import PATH" in str(info.value)


def test_file_placed_by_hand_is_trusted_on_first_use(models_dir: Path) -> None:
    path = models.model_path(models_dir, "scrfd-10g")
    path.parent.mkdir(parents=True)
    path.write_bytes(DET)
    assert models.model_status(models_dir, "scrfd-10g") == "present"
    assert models.require_model(models_dir, "scrfd-10g") == path
    assert models.model_status(models_dir, "scrfd-10g") == "verified"
    path.write_bytes(W600K)
    assert models.model_status(models_dir, "scrfd-10g") == "corrupt"


def test_damaged_hash_record_is_an_error(models_dir: Path) -> None:
    models_dir.mkdir()
    (models_dir / "hashes.json").write_text("{not json")
    path = models.model_path(models_dir, "scrfd-10g")
    path.parent.mkdir()
    path.write_bytes(DET)
    with pytest.raises(ModelFileError, match=r"hashes\.json"):
        models.model_status(models_dir, "scrfd-10g")


# -- the face parser ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def parser_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.random_models import write_parsing_checkpoint

    return write_parsing_checkpoint(tmp_path_factory.mktemp("parser") / "79999_iter.pth")


def test_face_parser_entry_import_by_name_and_strict_load(
        models_dir: Path, parser_checkpoint: Path) -> None:
    from export.parsing import load_parser

    info = models.MODELS["face-parsing"]
    assert info.kind == "parser" and info.download_name == "79999_iter.pth"
    assert info.urls[0].startswith("https://") and 50 < info.size_mb < 60
    assert "MIT" in info.licence_name and "CelebAMask-HQ" in info.licence
    assert models.import_model(parser_checkpoint, models_dir) == ["face-parsing"]
    path = models.require_model(models_dir, "face-parsing")
    assert path == models_dir / "face-parsing" / "79999_iter.pth"
    assert models.model_status(models_dir, "face-parsing") == "verified"
    assert load_parser(path).n_classes == 19


def test_face_parser_downloads_as_a_direct_file(models_dir: Path,
                                                parser_checkpoint: Path) -> None:
    data = parser_checkpoint.read_bytes()
    with FileServer({"/79999_iter.pth": data}) as srv:
        path = models.download_model("face-parsing", models_dir, accept_licence=True,
                                     progress=False, base_url=srv.base_url)
    assert path.read_bytes() == data
    assert models.model_status(models_dir, "face-parsing") == "verified"


def test_face_parser_comes_from_simswaps_release_first_and_a_mirror_after(
        models_dir: Path, parser_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SimSwap publishes 79999_iter.pth as a release asset: the official host is tried
    first, the Hugging Face mirror only when it fails."""
    import dataclasses

    info = models.MODELS["face-parsing"]
    assert info.urls[0] == ("https://github.com/neuralchen/SimSwap/releases/download/1.0/"
                            "79999_iter.pth")
    assert len(info.urls) >= 2 and all(u.endswith("/79999_iter.pth") for u in info.urls)
    data = parser_checkpoint.read_bytes()
    with FileServer({"/mirror/79999_iter.pth": data}) as srv:
        served = dataclasses.replace(info, urls=(srv.url("/official/79999_iter.pth"),
                                                 srv.url("/mirror/79999_iter.pth")))
        monkeypatch.setitem(models.MODELS, "face-parsing", served)
        path = models.download_model("face-parsing", models_dir, accept_licence=True,
                                     progress=False)
        asked = [seen.path for seen in srv.seen]
    assert path.read_bytes() == data
    assert asked[0] == "/official/79999_iter.pth" and asked[-1] == "/mirror/79999_iter.pth"
