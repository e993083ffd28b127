"""Simulated bedside monitors and the ward of them.

:class:`BedsideMonitor` is the device's logic, pure and clock-free: a patient model, alarm limits
and sequence numbers, turned into telemetry datagrams and alarm events. :class:`DeviceLink` is the
thin asyncio glue that moves those onto UDP and TCP sockets. :class:`Ward` runs many of them.
"""

from .link import DeviceLink
from .monitor import BedsideMonitor
from .ward import Ward, WardConfig, assign_scenarios

__all__ = ["BedsideMonitor", "DeviceLink", "Ward", "WardConfig", "assign_scenarios"]
