"""The TCP addresses a process and its descendants listen on, read from Linux's /proc (what
`ss -ltnp` shows), so that a test can check that a server it started, and every process that
server started, is reachable from this machine only."""

import ipaddress
import os
import socket
from pathlib import Path

LISTEN = "0A"   # the state of a listening socket in /proc/net/tcp


def descendants(pid) -> set[int]:
    """pid and every living process below it."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:   # the process ended while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(parents.get(current, []))
    return found


def _listening_sockets() -> dict[int, str]:
    """{socket inode: "address"} of every listening TCP socket of this machine."""
    sockets = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                sockets[int(fields[9])] = _address(fields[1].split(":")[0], family)
    return sockets


def _address(hex_address, family) -> str:
    """An address of /proc/net/tcp*: 32-bit words, each in the host's (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)


def listening_addresses(pid) -> dict[str, set[str]]:
    """{"name (pid)": {address, ...}} of the listening TCP sockets of pid and its descendants."""
    sockets = _listening_sockets()
    found = {}
    for process in descendants(pid):
        try:
            name = Path(f"/proc/{process}/comm").read_text().strip()
            links = [os.readlink(fd) for fd in Path(f"/proc/{process}/fd").iterdir()]
        except OSError:
            continue
        inodes = [int(link[8:-1]) for link in links if link.startswith("socket:[")]
        addresses = {sockets[inode] for inode in inodes if inode in sockets}
        if addresses:
            found[f"{name} ({process})"] = addresses
    return found


def is_loopback(address) -> bool:
    """127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6 (::ffff:127.0.0.1)."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)
