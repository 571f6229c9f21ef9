"""The deployment file's ``[cot]`` section: where a sector's alerts (and tracks) go as
Cursor-on-Target, to a TAK server or client.

Example::

    [cot]
    enabled = true
    protocol = "tls"             # tcp, udp or tls
    host = "tak.example.org"
    port = 8089
    cert_file = "tak/vigil.pem"  # relative paths are from the deployment file's folder
    key_file = "tak/vigil.key"
    ca_file = "tak/ca.pem"
    alert_stale_s = 3600.0
    tracks = true
    track_classes = ["person", "vehicle"]

Nothing is sent unless ``enabled`` is true (``vigil run --cot URL`` sends regardless).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from vigil.ingest.schema import ClassName

#: A host name or address: letters, digits, dots, hyphens, underscores, colons (IPv6).
HostName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._:-]{1,253}$(?!\n)")]
#: A file path (PEM or PKCS#12); bounded, never empty.
FilePath = Annotated[str, Meta(min_length=1, max_length=4096)]
#: Stale times, seconds: at least one second, at most seven days.
StaleSeconds = Annotated[float, Meta(ge=1.0, le=7 * 86_400.0)]


class CotSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Cursor-on-Target output of the sector service (``vigil run``, ``vigil demo``).

    Attributes
    ----------
    enabled
        Send CoT at all (default false: the section may be filled in and left off).
    protocol
        ``tcp`` (a TAK server's streaming input, 8087 by convention), ``udp`` (send-only
        datagrams, one event each, e.g. to a client's or the mesh's input) or ``tls`` (a TAK
        server's authenticated input, 8089 by convention; needs ``cert_file``).
    host, port
        The TAK server or client (default ``127.0.0.1:8087``).
    cert_file, key_file, ca_file
        For ``tls``: the client certificate (PEM, or PKCS#12 ending ``.p12``), its key (PEM;
        required with a PEM certificate) and the CA to trust for the server (PEM; the system's
        CAs when unset). Relative paths are from the deployment file's folder.
    alert_stale_s
        How long a TAK client shows an alert after its last update, seconds (default 3600).
    track_stale_s
        How long a TAK client shows a track after its last update, seconds (default 60).
    tracks
        Also send tracks, not only alerts (default false).
    track_classes
        Which classes of track go out when ``tracks`` is on (default all four).
    uid_prefix
        First part of every event's uid, ``{uid_prefix}.{sector}.alert.{id}`` (default
        ``vigil``); give each Vigil feeding one TAK server its own when sector names repeat.
    reconnect_s
        Seconds between tries while the TAK server cannot be reached (default 2); events wait,
        the oldest dropped (counted) beyond the channel's queue.
    """

    enabled: bool = False
    protocol: Literal["tcp", "udp", "tls"] = "tcp"
    host: HostName = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 8087
    cert_file: FilePath | None = None
    key_file: FilePath | None = None
    ca_file: FilePath | None = None
    alert_stale_s: StaleSeconds = 3600.0
    track_stale_s: StaleSeconds = 60.0
    tracks: bool = False
    track_classes: Annotated[tuple[ClassName, ...], Meta(max_length=4)] = (
        "person",
        "vehicle",
        "animal",
        "unknown",
    )
    uid_prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$(?!\n)")] = "vigil"
    reconnect_s: Annotated[float, Meta(ge=0.1, le=600.0)] = 2.0

    def __post_init__(self) -> None:
        if self.protocol == "tls" and self.enabled and not self.cert_file:
            raise ValueError("protocol 'tls' needs cert_file (the client certificate)")
        if (
            self.protocol == "tls"
            and self.cert_file
            and not self.key_file
            and not self.cert_file.endswith(".p12")
        ):
            raise ValueError("a PEM cert_file needs key_file (its private key)")
        if self.protocol != "tls" and (self.cert_file or self.key_file or self.ca_file):
            raise ValueError("cert_file, key_file and ca_file are for protocol 'tls'")

    @property
    def url(self) -> str:
        """The channel's URL, ``{protocol}://{host}:{port}`` (IPv6 addresses in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"
