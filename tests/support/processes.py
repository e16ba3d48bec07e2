"""What a test sees of the processes a run leaves behind (from /proc)."""

from __future__ import annotations

import os


def descendants(root: int) -> set[int]:
    """Return the pids of all live descendants of ``root`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listening(pid: int) -> set[tuple[str, int]]:
    """Return the (address, port) of every TCP socket ``pid`` listens on (from /proc):
    its socket inodes matched against /proc/net/tcp and tcp6 in the LISTEN state."""
    import ipaddress

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as handle:
            for row in list(handle)[1:]:
                fields = row.split()
                if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                    continue
                hex_address, hex_port = fields[1].split(":")
                raw = bytes.fromhex(hex_address)
                # the kernel prints each 32-bit word of the address in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(words)
                ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:127.0.0.1 -> 127.0.0.1
                found.add((str(ip), int(hex_port, 16)))
    return found


def loopback_only(addresses: set[tuple[str, int]]) -> bool:
    """Whether every address is a loopback one (127.0.0.0/8 or ::1)."""
    import ipaddress

    return all(ipaddress.ip_address(address).is_loopback for address, _ in addresses)
