// Alarm sound, made in the browser with the Web Audio API: no audio file, so the dashboard works
// offline. A simplified IEC 60601-1-8 signal: a burst of pulses, repeated while an alarm sounds.
//   high:   10 pulses (3 + 2, a pause, 3 + 2), 150 ms each, repeated every 5 s  (IEC: 2.5-15 s)
//   medium:  3 pulses, 200 ms each, repeated every 8 s                          (IEC: 2.5-30 s)
//   low:     2 pulses, 200 ms each, repeated every 20 s                         (IEC: > 15 s)
// Browsers let a page make sound only after the user has interacted with it, so it starts muted
// and a visible button enables it. What is playing is published on <body> as data attributes
// (data-sound, data-sound-pulses, data-sound-bursts, data-sound-bed), so a test can inspect it.
"use strict";

const MELODIES = {
  // offsets of the pulses in seconds from the start of a burst, and how long each lasts
  high: { pulses: [0, 0.25, 0.5, 0.9, 1.15, 2.0, 2.25, 2.5, 2.9, 3.15], length: 0.15,
    repeat: 5, pitch: 523.25 },
  medium: { pulses: [0, 0.4, 0.8], length: 0.2, repeat: 8, pitch: 440 },
  low: { pulses: [0, 0.4], length: 0.2, repeat: 20, pitch: 392 },
};

class AlarmSound {
  constructor(body) {
    this.body = body;
    this.ctx = null;          // an AudioContext, created when the user enables sound
    this.enabled = false;
    this.playing = null;      // the priority whose burst is sounding
    this.bed = null;          // the bed it sounds for
    this.nextBurst = 0;       // performance.now() seconds when the next burst is due
    this.bursts = 0;          // bursts started since sound was enabled (for tests and the lab)
    this.nodes = [];          // the scheduled oscillators, to stop at once on acknowledge
    this.publish("muted", null);
  }

  // Called from the button's click: the user gesture a browser needs before it plays sound
  enable() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      this.publish("unavailable", null);
      return false;
    }
    if (!this.ctx) this.ctx = new Ctx();
    this.ctx.resume();
    this.enabled = true;
    this.playing = null;
    return true;
  }

  disable() {
    this.enabled = false;
    this.stop();
    this.publish("muted", null);
  }

  // what should sound now: the highest-priority alarm that is sounding (active: not
  // acknowledged, not silenced) on a bed whose audio is not paused; null for none
  update(target) {
    const now = performance.now() / 1000;
    const want = target ? target.priority : null;
    if (!this.enabled) {
      this.body.dataset.soundWanted = want || "none";
      return;
    }
    this.body.dataset.soundWanted = want || "none";
    if (want === null) {
      if (this.playing !== null) this.stop();
      this.publish("quiet", null);
      return;
    }
    if (want !== this.playing || now >= this.nextBurst) {
      if (want !== this.playing) this.stop();
      this.burst(want);
      this.playing = want;
      this.bed = target.bed;
      this.nextBurst = now + MELODIES[want].repeat;
    }
    this.publish(want, target.bed);
  }

  burst(priority) {
    const m = MELODIES[priority];
    const ctx = this.ctx;
    const start = ctx.currentTime + 0.02;
    for (const offset of m.pulses) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "triangle";  // a fundamental with odd harmonics, as IEC asks for a pulse
      osc.frequency.value = m.pitch;
      const t0 = start + offset, t1 = t0 + m.length;
      gain.gain.setValueAtTime(0, t0);
      gain.gain.linearRampToValueAtTime(0.25, t0 + 0.02);
      gain.gain.setValueAtTime(0.25, t1 - 0.03);
      gain.gain.linearRampToValueAtTime(0, t1);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0);
      osc.stop(t1);
      osc.onended = () => { this.nodes = this.nodes.filter((n) => n !== osc); };
      this.nodes.push(osc);
    }
    this.bursts += 1;
    this.body.dataset.soundPulses = String(m.pulses.length);
    this.body.dataset.soundBursts = String(this.bursts);
  }

  stop() {
    for (const osc of this.nodes) {
      try { osc.stop(); } catch (e) { /* not started yet or already stopped */ }
    }
    this.nodes = [];
    this.playing = null;
    this.bed = null;
    this.nextBurst = 0;
    this.body.dataset.soundPulses = "0";
  }

  publish(what, bed) {
    this.body.dataset.sound = what;
    this.body.dataset.soundBed = bed == null ? "" : String(bed);
    this.body.dataset.soundScheduled = String(this.nodes.length);
  }
}

window.AlarmSound = AlarmSound;
window.ALARM_MELODIES = MELODIES;
