"""Issue 19 leftover: a PTZ camera's ONVIF service, login and pointing map live in its
``[[cameras]]`` entry (credentials by reference only), checked with key, value and line,
listed by ``vigil config show``, and taken by ``vigil edge camera onvif --camera ID`` with
the command line's flags winning."""

from __future__ import annotations

import socket

import pytest

from vigil.cli import build_parser, main
from vigil.cli.config import effective_configuration
from vigil.cli.edge import _ptz_control
from vigil.config import ConfigError, load_default, parse
from vigil.edge import onvif_camera

T03 = 'tower = "t03"\nwarmup_frames = 60\n'
ONVIF = """
[cameras.onvif]
host = "10.0.3.21"
port = 8080
username = "vigil"
password_env = "T03_ONVIF_PASSWORD"
profile = "Profile_1"

[cameras.ptz]
pan_zero_deg = 150.0
pan_deg_per_unit = 90.0
hfov_tele_deg = 4.0
"""


def with_camera(extra: str) -> str:
    """The shipped deployment with ``extra`` added to t03's ``[[cameras]]`` entry."""
    text = load_default().text
    assert T03 in text
    return text.replace(T03, T03 + extra, 1)


def line_of(text: str, needle: str) -> int:
    """The line of the first ``needle`` after t03's ``[[cameras]]`` entry begins."""
    lines = text.splitlines()
    start = lines.index('tower = "t03"')
    return next(i for i, line in enumerate(lines, 1) if i > start and line.startswith(needle))


def test_the_entry_is_read_and_listed_with_its_lines(tmp_path):
    text = with_camera(ONVIF)
    path = tmp_path / "tucson.toml"
    path.write_text(text)
    d = parse(text, path)
    cam = next(c for c in d.config.cameras if c.tower == "t03")
    assert cam.onvif.host == "10.0.3.21" and cam.onvif.port == 8080
    assert cam.ptz.pan_deg_per_unit == 90.0 and cam.ptz.tilt_zero_deg is None
    assert d.detection_for("t03").warmup_frames == 60  # the detection override still holds
    shown = effective_configuration(d)
    assert "[cameras.onvif]" in shown and "[cameras.ptz]" in shown
    host_line = line_of(text, 'host = "10.0.3.21"')
    assert 'host = "10.0.3.21"' in shown and f"tucson.toml:{host_line}" in shown
    assert 'password_env = "T03_ONVIF_PASSWORD"' in shown
    assert "# password_file = (not set)" in shown
    assert "tilt_deg_per_unit = 45.0" in shown  # a default, said so


@pytest.mark.parametrize(
    "extra, key, value, needle, says",
    [
        ('\n[cameras.onvif]\nhost = "cam"\npassword = "hunter2"\n', "cameras[0].onvif.password",
         "hunter2", "password =", "never goes in the file"),
        ('\n[cameras.onvif]\nhost = "cam"\nport = 70000\n', "cameras[0].onvif.port", 70000,
         "port =", "<= 65535"),
        ('\n[cameras.onvif]\nhost = "cam bad"\n', "cameras[0].onvif.host", "cam bad", "host =",
         "match"),
        ('\n[cameras.onvif]\nhost = "cam"\npassword_env = "A-B"\n',
         "cameras[0].onvif.password_env", "A-B", "password_env =", "match"),
        ('\n[cameras.onvif]\nhost = "cam"\npassword_env = "P"\npassword_file = "p.txt"\n',
         "cameras[0].onvif.password_file", "p.txt", "password_file =", "one of"),
        ('\n[cameras.ptz]\npan_deg_per_unit = 90.0\n', "cameras[0].ptz", "t03",
         "[cameras.ptz]", "without [cameras.onvif]"),
        ('\n[cameras.onvif]\nhost = "cam"\n[cameras.ptz]\nhfov_tele_deg = 30.0\n',
         "cameras[0].ptz.hfov_tele_deg", 30.0, "hfov_tele_deg =", "wider than the tower"),
        ('\n[cameras.onvif]\nhost = "cam"\n[cameras.ptz]\ntilt_deg_per_unit = 0.0\n',
         "cameras[0].ptz.tilt_deg_per_unit", 0.0, "tilt_deg_per_unit =", "> 0"),
    ],
)  # fmt: skip
def test_config_check_refuses_with_key_value_and_line(extra, key, value, needle, says):
    text = with_camera(extra)
    with pytest.raises(ConfigError) as err:
        parse(text, "d.toml")
    e = err.value
    assert (e.key, e.value) == (key, value), str(e)
    assert e.line == line_of(text, needle), str(e)
    assert says in e.expected, str(e)


def edge_args(*extra: str):
    return build_parser().parse_args(["edge", "camera", "onvif", "--camera", "t03", *extra])


def test_edge_camera_takes_the_entry_and_flags_win(tmp_path, monkeypatch):
    path = tmp_path / "tucson.toml"
    path.write_text(with_camera(ONVIF))
    d = parse(path.read_text(), path)
    monkeypatch.setenv("T03_ONVIF_PASSWORD", "s3cret")
    monkeypatch.setenv("VIGIL_ONVIF_PASSWORD", "not-this-one")
    args = edge_args("--deployment", str(path))
    assert args.id == "t03"
    ptz = _ptz_control(args, d, "t03")
    c, m = ptz.client, ptz.mapping
    assert (c.host, c.port, c.user, c.password) == ("10.0.3.21", 8080, "vigil", "s3cret")
    assert m.pan_zero_deg == 150.0 and m.pan_deg_per_unit == 90.0 and m.hfov_tele_deg == 4.0
    assert m.tilt_zero_deg == 0.82 and m.tilt_deg_per_unit == 45.0  # the tower's, the default
    # the command line wins, key by key
    args = edge_args("--onvif", "127.0.0.1:9000", "--ptz-pan-per-unit", "180",
                     "--ptz-tilt-zero", "2.5")  # fmt: skip
    cam = onvif_camera(
        d, "t03", args.onvif,
        pan_zero_deg=args.ptz_pan_zero, pan_deg_per_unit=args.ptz_pan_per_unit,
        tilt_zero_deg=args.ptz_tilt_zero, tilt_deg_per_unit=args.ptz_tilt_per_unit,
        hfov_tele_deg=args.ptz_hfov_tele,
    )  # fmt: skip
    assert (cam.host, cam.port, cam.password, cam.profile) == (
        "127.0.0.1",
        9000,
        "s3cret",
        "Profile_1",
    )
    assert cam.mapping.pan_deg_per_unit == 180.0 and cam.mapping.tilt_zero_deg == 2.5
    assert cam.mapping.pan_zero_deg == 150.0  # not given on the command line: the file's
    assert "s3cret" not in repr(cam)
    # a tower without an entry and no --onvif: no PTZ control, as before
    assert onvif_camera(d, "t01") is None


def test_password_from_a_file_and_credential_errors_name_the_key(tmp_path, monkeypatch):
    extra = '\n[cameras.onvif]\nhost = "cam"\nusername_env = "T03_USER"\npassword_file = "pw"\n'
    text = with_camera(extra)
    path = tmp_path / "tucson.toml"
    path.write_text(text)
    d = parse(text, path)
    with pytest.raises(ConfigError) as err:  # the variable it names is not set
        onvif_camera(d, "t03")
    assert err.value.key == "cameras[0].onvif.username_env"
    assert err.value.line == line_of(text, "username_env =")
    monkeypatch.setenv("T03_USER", "op")
    with pytest.raises(ConfigError) as err:  # the file is missing
        onvif_camera(d, "t03")
    assert (err.value.key, err.value.value) == ("cameras[0].onvif.password_file", "pw")
    assert err.value.line == line_of(text, "password_file =")
    (tmp_path / "pw").write_text("from-file\n")
    cam = onvif_camera(d, "t03")
    assert (cam.host, cam.port, cam.user, cam.password) == ("cam", 80, "op", "from-file")
    (tmp_path / "pw").write_bytes(b"x" * 5000)
    with pytest.raises(ConfigError, match="over 4096 bytes"):
        onvif_camera(d, "t03")


def test_the_command_reaches_for_the_camera_the_entry_names(tmp_path, capsys):
    """No camera there: the command fails naming the deployment's host and port."""
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = f'\n[cameras.onvif]\nhost = "127.0.0.1"\nport = {port}\n'
    path = tmp_path / "tucson.toml"
    path.write_text(with_camera(extra))
    code = main(["edge", "camera", "onvif", "--deployment", str(path), "--camera", "t03",
                 "--state-dir", str(tmp_path / "edge")])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and f"127.0.0.1:{port}" in err, err
    # without the entry and without --onvif, 'onvif' is refused as before
    code = main(["edge", "camera", "onvif", "--camera", "t03",
                 "--state-dir", str(tmp_path / "edge")])  # fmt: skip
    assert code == 2 and "[cameras.onvif]" in capsys.readouterr().err
