"""The central station: UDP telemetry ingest, the TCP alarm channel, a WebSocket hub for
dashboards, a JSON HTTP API and the alarm journal, on Tornado.

All state lives in objects (:class:`~server.station.Station`, :class:`~server.system.System`) that
can be created, started and stopped many times in one process.
"""

from .config import StationConfig
from .station import Station
from .system import System

__all__ = ["Station", "StationConfig", "System"]
