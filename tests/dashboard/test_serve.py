"""Which Host headers a dashboard answers: :func:`allowed_host_names`."""

from __future__ import annotations

import socket

import pytest

from dltune.dashboard import is_loopback
from dltune.dashboard._serve import LOOPBACK_HOSTS
from dltune.dashboard._serve import allowed_host_names


def test_a_loopback_bind_answers_its_own_address_and_the_machines_names() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "127.0.1.1", "::1", "[::1]", "localhost"):
        names = allowed_host_names(host)
        assert names is not None
        assert set(LOOPBACK_HOSTS) <= set(names)
        assert host.strip("[]") in names
        assert socket.gethostname().lower() in names
        assert "attacker.example" not in names
        assert is_loopback(host)


def test_every_interface_answers_the_machines_addresses_but_not_any_name() -> None:
    names = allowed_host_names("0.0.0.0")
    assert names is not None
    assert "0.0.0.0" not in names and "attacker.example" not in names
    assert socket.gethostname().lower() in names and socket.getfqdn().lower() in names
    # The addresses the machine's name resolves to are among them.
    for *_rest, address in socket.getaddrinfo(socket.gethostname(), None):
        assert str(address[0]).split("%")[0].lower() in names
    assert names == tuple(sorted(names))


def test_a_specific_address_is_answered_with_the_names_given() -> None:
    given = ["Dash.Example", "proxy:8443", "[fd00::1]", "[fd00::2]:80", "fd00::3", "1.2.3.4"]
    names = allowed_host_names("10.9.8.7", given)
    assert names is not None
    wanted = {"10.9.8.7", "dash.example", "proxy", "fd00::1", "fd00::2", "fd00::3", "1.2.3.4"}
    assert wanted <= set(names)


def test_a_star_answers_any_name() -> None:
    assert allowed_host_names("0.0.0.0", ["dash.example", "*"]) is None
    assert allowed_host_names("127.0.0.1", ("*",)) is None


def test_allowed_hosts_are_checked() -> None:
    with pytest.raises(TypeError, match=r"allowed_hosts='dash.example' must be a list of host"):
        allowed_host_names("127.0.0.1", "dash.example")
    with pytest.raises(ValueError, match=r"allowed_hosts holds 3, which is not a host name"):
        allowed_host_names("127.0.0.1", [3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"allowed_hosts holds 'me@host', which is not a host"):
        allowed_host_names("127.0.0.1", ["me@host"])
