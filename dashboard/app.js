// Central-station dashboard: one WebSocket to the station, state in plain objects, and drawing
// only from requestAnimationFrame (never once per message). Data enters the page as text only.
"use strict";

(() => {
  const state = { beds: new Map(), alarms: new Map(), dirty: true, socket: null, retry: 500 };
  const grid = document.getElementById("grid");
  const alarmList = document.getElementById("alarm-list");
  const conn = document.getElementById("conn");
  const template = document.getElementById("tile-template");
  const tiles = new Map();
  const RANK = { high: 3, medium: 2, low: 1 };

  function fmt(v, digits) {
    return v === null || v === undefined ? "---" : Number(v).toFixed(digits);
  }

  function setConn(kind, text) {
    conn.className = "conn conn-" + kind;
    conn.textContent = text;
  }

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    const ws = new WebSocket(url);
    state.socket = ws;
    setConn("connecting", "connecting…");
    ws.onopen = () => { state.retry = 500; setConn("connected", "connected"); };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = () => {
      setConn("disconnected", "disconnected: reconnecting…");
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 5000);
    };
  }

  function handle(msg) {
    if (msg.type === "snapshot") {
      state.beds.clear();
      state.alarms.clear();
      for (const b of msg.beds) state.beds.set(b.bed, b);
      for (const a of msg.alarms) state.alarms.set(a.alarm_id, a);
    } else if (msg.type === "vitals") {
      for (const b of msg.beds) state.beds.set(b.bed, b);
    } else if (msg.type === "alarm") {
      state.alarms.set(msg.alarm.alarm_id, msg.alarm);
    } else if (msg.type === "error") {
      console.warn("station says:", msg.error);
    }
    state.dirty = true;
  }

  function tileFor(bed) {
    let tile = tiles.get(bed);
    if (!tile) {
      tile = template.content.firstElementChild.cloneNode(true);
      tile.dataset.bed = String(bed);
      tile.querySelector(".bed").textContent = "Bed " + bed;
      tiles.set(bed, tile);
      const after = [...tiles.keys()].sort((a, b) => a - b).find((k) => k > bed);
      grid.insertBefore(tile, after === undefined ? null : tiles.get(after));
    }
    return tile;
  }

  function highestPriority(bed) {
    let best = null;
    for (const a of state.alarms.values()) {
      if (a.bed === bed && a.state !== "cleared" && (!best || RANK[a.priority] > RANK[best])) best = a.priority;
    }
    return best;
  }

  function draw() {
    if (state.dirty) {
      state.dirty = false;
      for (const [bed, b] of state.beds) {
        const tile = tileFor(bed);
        tile.querySelector('[data-field="hr"]').textContent = fmt(b.hr, 0);
        tile.querySelector('[data-field="spo2"]').textContent = fmt(b.spo2, 0);
        tile.querySelector('[data-field="rr"]').textContent = fmt(b.rr, 0);
        tile.querySelector('[data-field="temp"]').textContent = fmt(b.temp, 1);
        tile.querySelector('[data-field="nibp"]').textContent =
          b.nibp_sys == null ? "---" : fmt(b.nibp_sys, 0) + "/" + fmt(b.nibp_dia, 0);
        tile.querySelector(".flags").textContent = (b.flags || []).join(" ").replace(/_/g, " ");
        const p = highestPriority(bed);
        tile.dataset.priority = p || "none";
        tile.querySelector(".alarm-label").textContent = p ? p + " alarm" : "";
      }
      drawAlarms();
    }
    requestAnimationFrame(draw);
  }

  function drawAlarms() {
    const items = [...state.alarms.values()].sort(
      (a, b) => (RANK[b.priority] - RANK[a.priority]) || (b.raised_at - a.raised_at));
    const nodes = items.map((a) => {
      const li = document.createElement("li");
      li.dataset.priority = a.priority;
      li.dataset.alarmId = a.alarm_id;
      li.dataset.state = a.state;
      const title = document.createElement("div");
      title.textContent = "Bed " + a.bed + ": " + a.condition + " " + fmt(a.value, 1) +
        " (limit " + fmt(a.limit, 1) + ") · " + a.priority;
      const st = document.createElement("div");
      st.className = "state";
      st.textContent = a.state + (a.acked_by ? " by " + a.acked_by : "");
      li.append(title, st);
      if (a.state === "active") {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.textContent = "Acknowledge";
        btn.addEventListener("click", () => acknowledge(a.alarm_id));
        li.append(btn);
      }
      return li;
    });
    alarmList.replaceChildren(...nodes);
  }

  function acknowledge(alarmId) {
    const user = document.getElementById("user").value.trim() || "nurse";
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ type: "ack", alarm_id: alarmId, user }));
    }
  }

  connect();
  requestAnimationFrame(draw);
})();
