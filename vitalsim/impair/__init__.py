"""A network that misbehaves on purpose, reproducibly.

- :mod:`.model`: the decisions, sans-I/O and seeded: Gilbert-Elliott bursty loss, delay with
  jitter, duplication and reordering for datagrams.
- :mod:`.proxy`: the asyncio proxies that apply them between the ward and the station (UDP), and
  latency, throttling, stalls and resets to TCP connections. No root needed.
"""

from .model import GilbertElliott, TcpSettings, UdpImpairer, UdpSettings
from .proxy import TcpImpairmentProxy, UdpImpairmentProxy

__all__ = ["GilbertElliott", "TcpImpairmentProxy", "TcpSettings", "UdpImpairer",
           "UdpImpairmentProxy", "UdpSettings"]
