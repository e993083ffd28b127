"""Hypothesis strategies for the course's wire messages, shared by the protocol tests."""

import numpy as np
from hypothesis import strategies as st

from vitalsim.protocol.telemetry import CHANNELS, MAX_WAVE_SAMPLES, NumericsMessage, WaveMessage
from vitalsim.rhythms import RHYTHM_NAMES

f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
maybe = st.one_of(st.none(), f32)
u8, u16, u32 = (st.integers(0, 2**n - 1) for n in (8, 16, 32))
sent_at = st.integers(0, 2**53).map(lambda us: us / 1_000_000)

numerics = st.builds(
    NumericsMessage, u32, u16, u32, sent_at, u8, maybe, maybe, maybe, maybe, maybe, maybe,
    maybe, st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    boot_id=st.integers(0, 2**64 - 1),
    # version 3's fields
    rhythm=st.one_of(st.none(), st.sampled_from(RHYTHM_NAMES)),
    pvc_per_min=st.one_of(st.none(), st.integers(0, 254)),
    etco2=maybe, awrr=maybe, abp_sys=maybe, abp_dia=maybe, abp_map=maybe)
waves = st.builds(
    WaveMessage, u32, u16, u32, sent_at, u8, st.sampled_from(CHANNELS), u16, u32,
    st.lists(st.integers(-32768, 32767), max_size=MAX_WAVE_SAMPLES).map(
        lambda xs: np.asarray(xs, dtype=np.int16)))
messages = st.one_of(numerics, waves)
