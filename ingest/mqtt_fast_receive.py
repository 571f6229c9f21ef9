"""paho's MQTT client with a buffered receive path and batched acknowledgements.

paho reads each packet with three or more ``recv`` calls (the command byte, each byte of the
remaining length, then the body), one ``select`` per packet, and builds an ``MQTTMessage``
and an MQTT 5 ``Properties`` object for every PUBLISH before the callback runs. At thousands
of messages a second that was the largest part of the input process's interpreter time.
:class:`FastReceiveClient` reads what the socket holds in one ``recv`` (up to
:data:`READ_CHUNK` bytes), splits it into packets itself, and hands a plain QoS 0/1 PUBLISH
straight to ``on_publish_batch(client, fields)``, all of one read in one call. Every
other packet (CONNACK, SUBACK, PUBACK, PINGRESP, DISCONNECT, QoS 2, a PUBLISH with a topic
alias or an unknown property, a topic that is not UTF-8) goes through paho's own handling,
unchanged, as if paho had read it. :meth:`FastReceiveClient.ack_many` queues the PUBACKs of
a batch as one write.

It relies on paho 2.x's private receive state (``_in_packet``, ``_packet_handle``,
``_last_bytes_received``, ``_out_packet``); :func:`supported` says whether the installed paho
has it, and the link falls back to the plain client when not.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.exception import MalformedPacket

#: Bytes asked of the socket per read: dozens of 250-byte messages.
READ_CHUNK = 256 * 1024
#: One PUBLISH as fields: ``(topic, payload, mid, qos, user_properties)``.
Fields = tuple[str, bytes, int, int, list[tuple[str, str]]]
#: ``on_publish_batch(client, fields)``: the PUBLISH packets of one read, in order.
PublishBatch = Callable[[Any, list[Fields]], None]

_PUBLISH = 0x30
_PUBACK = 0x40
# MQTT 5 PUBLISH properties the fast path reads past: id -> fixed size in bytes, or -1 for a
# two-byte-length string/binary. A subscription identifier (0x0B, a variable byte integer)
# and a user property (0x26, two strings) are handled in the loop; anything else, the topic
# alias (0x23) among them, goes to paho.
_SKIP = {0x01: 1, 0x02: 4, 0x03: -1, 0x08: -1, 0x09: -1}
_unpack_h = struct.Struct("!H").unpack_from


def supported() -> bool:
    """Whether the installed paho keeps the receive state this client takes over."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    return all(
        hasattr(client, name)
        for name in (
            "_in_packet",
            "_packet_handle",
            "_sock_recv",
            "_msgtime_mutex",
            "_last_bytes_received",
            "_out_packet",
            "_packet_queue",
            "_sockpairW",
        )
    )


def _fresh_in_packet() -> dict:
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


def _user_properties(body: bytes, pos: int, end: int) -> list[tuple[str, str]] | None:
    """The user properties of a PUBLISH's property block ``body[pos:end]``; None when the
    block holds something the fast path does not read (paho then decodes the packet)."""
    out: list[tuple[str, str]] = []
    while pos < end:
        pid = body[pos]
        pos += 1
        if pid == 0x26:
            if pos + 2 > end:
                return None
            n = _unpack_h(body, pos)[0]
            name = body[pos + 2 : pos + 2 + n]
            pos += 2 + n
            if pos + 2 > end:
                return None
            n = _unpack_h(body, pos)[0]
            value = body[pos + 2 : pos + 2 + n]
            pos += 2 + n
            if pos > end:
                return None
            try:
                out.append((name.decode("utf-8"), value.decode("utf-8")))
            except UnicodeDecodeError:
                return None
        elif pid == 0x0B:  # subscription identifier: a variable byte integer
            for _ in range(4):
                if pos >= end:
                    return None
                pos += 1
                if not body[pos - 1] & 0x80:
                    break
            else:
                return None
        else:
            size = _SKIP.get(pid)
            if size is None:
                return None
            if size < 0:
                if pos + 2 > end:
                    return None
                size = 2 + _unpack_h(body, pos)[0]
            pos += size
    return out if pos == end else None


class FastReceiveClient(paho.Client):
    """A paho client that reads in chunks and hands plain PUBLISH packets over as fields.

    Parameters
    ----------
    on_publish_batch
        Called on paho's network thread with the QoS 0/1 PUBLISH packets the fast path
        decoded from one read, as a list of :data:`Fields`, in order; ``on_message`` gets the
        rest, as with plain paho (what came before such a packet is handed over first).
    *args, **kwargs
        paho's ``Client`` arguments.
    """

    def __init__(self, *args: Any, on_publish_batch: PublishBatch, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_publish_batch = on_publish_batch
        self._fields: list[Fields] = []
        self._rbuf = bytearray()
        self._v5 = self._protocol == paho.MQTTv5

    def ack_many(self, mids: Sequence[int]) -> None:
        """Queue the PUBACKs of QoS 1 messages ``mids`` (manual acknowledgement) as one write."""
        if not mids:
            return
        packet = b"".join(struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids)
        self._packet_queue(_PUBACK, packet, 0, 1)

    def _packet_read(self) -> MQTTErrorCode:
        try:
            data = self._sock_recv(READ_CHUNK)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:  # TimeoutError and ConnectionError included
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        buf = self._rbuf
        buf += data
        n = len(buf)
        pos = 0
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        try:
            while pos + 2 <= n:
                command = buf[pos]
                length = 0
                mult = 1
                i = pos + 1
                whole = False
                for _ in range(4):
                    if i >= n:
                        break
                    byte = buf[i]
                    i += 1
                    length += (byte & 127) * mult
                    mult *= 128
                    if not byte & 128:
                        whole = True
                        break
                else:  # a fifth length byte: not MQTT
                    pos = n
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
                if not whole or n - i < length:  # the rest is still on its way
                    break
                body = bytes(buf[i : i + length])
                count = list(buf[pos + 1 : i])
                pos = i + length
                if (command & 0xF0) != _PUBLISH or not self._publish_fields(command, body):
                    self._hand_over()  # what came before it, first
                    rc = self._paho_handle(command, count, length, body)
                if rc:
                    break
        finally:
            del buf[:pos]
            self._hand_over()
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        return rc

    def _hand_over(self) -> None:
        if self._fields:
            fields, self._fields = self._fields, []
            self.on_publish_batch(self, fields)

    def _paho_handle(self, command: int, count: list[int], length: int, body: bytes) -> Any:
        """One whole packet through paho's own handling, as its ``_packet_read`` would."""
        self._in_packet = {
            "command": command,
            "have_remaining": 1,
            "remaining_count": count,
            "remaining_mult": 1,
            "remaining_length": length,
            "packet": bytearray(body),
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc = self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = _fresh_in_packet()
        return rc

    def _publish_fields(self, command: int, body: bytes) -> bool:
        """A QoS 0/1 PUBLISH to the read's batch; False: leave it to paho."""
        qos = (command & 0x06) >> 1
        if qos > 1 or len(body) < 2:
            return False
        end = 2 + _unpack_h(body, 0)[0]
        if end == 2 or end > len(body):
            return False
        try:
            topic = body[2:end].decode("utf-8")
        except UnicodeDecodeError:
            return False
        mid = 0
        if qos:
            if end + 2 > len(body):
                return False
            mid = _unpack_h(body, end)[0]
            end += 2
        props: list[tuple[str, str]] = []
        if self._v5:
            length = 0
            mult = 1
            for _ in range(4):
                if end >= len(body):
                    return False
                byte = body[end]
                end += 1
                length += (byte & 127) * mult
                mult *= 128
                if not byte & 128:
                    break
            else:
                return False
            if end + length > len(body):
                return False
            if length:
                found = _user_properties(body, end, end + length)
                if found is None:
                    return False
                props = found
            end += length
        self._fields.append((topic, body[end:], mid, qos, props))
        return True


__all__ = ["READ_CHUNK", "FastReceiveClient", "Fields", "PublishBatch", "supported"]
