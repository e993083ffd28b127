// Sweeping waveform traces, like a bedside monitor: each channel is a ring buffer of the last
// few seconds at its true sample rate; a sample's place comes from its index (first_index + i),
// so a lost datagram leaves a gap instead of silently joining the trace together.
"use strict";

const SWEEP_SECONDS = 6;
const ERASE_SECONDS = 0.25; // the dark bar ahead of the writing point

// channel -> drawing: colour, label, and the value range shown in its strip
const CHANNELS = {
  ecg: { color: "#5ee07a", label: "ECG II", min: -700, max: 1500 },
  pleth: { color: "#3dd6f5", label: "Pleth", min: 0, max: 1800 },
  resp: { color: "#f5e663", label: "Resp", min: -1100, max: 1100 },
};
// channels a bed may add (telemetry v3: capnogram, arterial line), drawn only when they come,
// on a fixed scale in their units (0.1 mmHg, docs/PROTOCOL.md) as a monitor draws them: a
// scale fitted to whatever the strip holds would make a pulseless arterial line or an apnoeic
// capnogram's noise fill the strip like a live trace
const EXTRA_CHANNELS = {
  co2: { color: "#e0e0e0", label: "CO₂ 0–50 mmHg", min: 0, max: 500 },
  abp: { color: "#ff5252", label: "ABP 0–200 mmHg", min: 0, max: 2000 },
};
// a channel nobody described: fitted to what its strip holds, and said so
const UNKNOWN_CHANNEL = { color: "#cccccc" };

class WaveChannel {
  constructor(rate) {
    this.rate = rate;
    this.data = new Float32Array(rate * SWEEP_SECONDS).fill(NaN);
    this.head = -1; // highest sample index written
    this.gaps = 0;
  }

  write(firstIndex, samples) {
    const n = this.data.length;
    if (this.head >= 0 && firstIndex > this.head + 1) {
      this.gaps += 1;
      // samples that never arrived: blank them, so the old sweep does not show through
      for (let i = this.head + 1; i < Math.min(firstIndex, this.head + 1 + n); i++) this.data[i % n] = NaN;
    }
    for (let i = 0; i < samples.length; i++) this.data[(firstIndex + i) % n] = samples[i];
    const last = firstIndex + samples.length - 1;
    if (last > this.head) {
      this.head = last;
      const erase = Math.round(this.rate * ERASE_SECONDS);
      for (let i = 1; i <= erase; i++) this.data[(last + i) % n] = NaN;
    }
  }
}

class WaveView {
  constructor(bed, container) {
    this.bed = bed;
    this.channels = {};
    this.dirty = true;
    this.root = document.createElement("div");
    this.root.className = "wave-bed";
    this.title = document.createElement("h3");
    this.title.textContent = "Bed " + bed;
    this.canvas = document.createElement("canvas");
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "ECG, pleth and respiration of bed " + bed);
    this.canvas.dataset.bed = String(bed);
    this.root.append(this.title, this.canvas);
    container.append(this.root);
  }

  add(chunk) {
    let ch = this.channels[chunk.channel];
    if (!ch) ch = this.channels[chunk.channel] = new WaveChannel(chunk.rate);
    ch.write(chunk.first_index, chunk.samples);
    this.dirty = true;
  }

  draw() {
    if (!this.dirty) return;
    this.dirty = false;
    const canvas = this.canvas;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const extra = Object.keys(this.channels).filter((c) => !(c in CHANNELS)).sort();
    const names = [...Object.keys(CHANNELS), ...extra];
    const strip = height / names.length;
    names.forEach((name, row) => {
      const spec = CHANNELS[name] || EXTRA_CHANNELS[name] ||
        autoRange({ ...UNKNOWN_CHANNEL, label: name.toUpperCase() + " (fitted)" }, this.channels[name]);
      const top = row * strip;
      ctx.fillStyle = "#a9b0b8";
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillText(spec.label, 6, top + 14);
      const ch = this.channels[name];
      if (!ch) return;
      const n = ch.data.length;
      ctx.strokeStyle = spec.color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < n; i++) {
        const v = ch.data[i];
        if (Number.isNaN(v)) { pen = false; continue; }
        const x = (i / n) * width;
        const y = top + strip - 4 - ((v - spec.min) / (spec.max - spec.min)) * (strip - 8);
        if (pen) ctx.lineTo(x, y); else { ctx.moveTo(x, y); pen = true; }
      }
      ctx.stroke();
    });
  }

  remove() { this.root.remove(); }
}

function autoRange(spec, ch) {
  let min = Infinity, max = -Infinity;
  for (const v of ch.data) if (!Number.isNaN(v)) { if (v < min) min = v; if (v > max) max = v; }
  if (!(max > min)) { min -= 1; max += 1; }
  return { ...spec, min, max };
}

window.WaveView = WaveView;
