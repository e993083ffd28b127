// Central-station dashboard. One WebSocket to the station (schema v1, docs/PROTOCOL.md); state
// kept in plain objects; drawing only from requestAnimationFrame, never once per message. Data
// enters the page as text (textContent), never as HTML.
"use strict";

(() => {
  const RANK = { high: 3, medium: 2, low: 1 };
  const SYMBOL = { high: "▲▲▲", medium: "▲▲", low: "▲" };
  const MAX_WAVE_BEDS = 4;
  const state = {
    beds: new Map(), alarms: new Map(), socket: null, retry: 500,
    tilesDirty: true, alarmsDirty: true, statsDirty: false,
    stats: null, prevStats: null, rates: {},
    waveBeds: new Set(), waveViews: new Map(), trendBed: null,
    offlineSince: null,   // when the connection was lost: every value shown is older than this
    wards: new Map(),     // the hospital view (server/hospital.py): ward -> its station's status
  };
  const $ = (id) => document.getElementById(id);
  const grid = $("grid"), alarmList = $("alarm-list"), conn = $("conn");
  const tiles = new Map();
  const wardHeads = new Map();  // the hospital view: ward -> its heading in the grid

  function fmt(v, digits) {
    return v === null || v === undefined || Number.isNaN(v) ? "---" : Number(v).toFixed(digits);
  }

  function clock(seconds) {
    const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h + ":" + String(m).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  // -- the connection -------------------------------------------------------------------------

  function setConn(kind, text) {
    conn.className = "conn conn-" + kind;
    conn.textContent = text;
  }

  // Without a connection nothing on the page is current any more. The values stay (a nurse can
  // still read the last ones), but the page says, on every tile, that they are old and since
  // when, and greys them out; the next snapshot replaces them.
  function setOffline(offline) {
    if (offline && state.offlineSince === null) state.offlineSince = new Date();
    if (!offline) state.offlineSince = null;
    document.body.dataset.connection = offline ? "offline" : "online";
    state.tilesDirty = state.alarmsDirty = state.statsDirty = true;
  }

  function send(command) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(command));
    }
  }

  function connect() {
    // relative to the page, so that it works behind a path prefix (a hub's /user/NAME/proxy/PORT/)
    const url = new URL("ws", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url.href);
    state.socket = ws;
    setConn("connecting", state.offlineSince === null ? "connecting…"
      : "reconnecting… values are from before " + state.offlineSince.toLocaleTimeString());
    ws.onopen = () => {
      state.retry = 500;
      setConn("connected", "connected");
      setOffline(false);
      if (state.waveBeds.size) send({ type: "subscribe", waves: [...state.waveBeds] });
    };
    ws.onmessage = (ev) => handle(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      const why = ev.reason ? " (" + ev.reason + ")" : "";
      setOffline(true);
      setConn("disconnected", "disconnected" + why + " since " +
        state.offlineSince.toLocaleTimeString() + ": values are not current; reconnecting…");
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 5000);
    };
  }

  function handle(msg) {
    switch (msg.type) {
      case "snapshot":
        state.beds.clear();
        state.alarms.clear();
        for (const b of msg.beds) state.beds.set(b.bed, b);
        for (const a of msg.alarms) state.alarms.set(a.alarm_id, a);
        for (const w of msg.wards || []) state.wards.set(w.ward, w);
        takeStats(msg.stats);
        state.tilesDirty = state.alarmsDirty = true;
        break;
      case "vitals":
        for (const b of msg.beds) state.beds.set(b.bed, b);
        state.tilesDirty = true;
        break;
      case "alarm":
        state.alarms.set(msg.alarm.alarm_id, msg.alarm);
        state.tilesDirty = state.alarmsDirty = true;
        break;
      case "alarms":  // the technical alarms of one second's check, grouped: each in order
        for (const a of msg.alarms) state.alarms.set(a.alarm_id, a);
        state.tilesDirty = state.alarmsDirty = true;
        break;
      case "wards":  // the hospital view: a ward's station came online, or its Last Will came
        for (const w of msg.wards) state.wards.set(w.ward, w);
        state.tilesDirty = true;
        break;
      case "wave": {
        const view = state.waveViews.get(msg.bed);
        if (view) for (const chunk of msg.chunks) view.add(chunk);
        break;
      }
      case "stats":
        takeStats(msg);
        break;
      case "error":
        console.warn("station says:", msg.error);
        break;
      default:
        break;
    }
  }

  // -- bed tiles ------------------------------------------------------------------------------

  function tileFor(bed) {
    let tile = tiles.get(bed);
    if (tile) return tile;
    tile = $("tile-template").content.firstElementChild.cloneNode(true);
    tile.dataset.bed = String(bed);
    tile.querySelector(".bed").textContent = "Bed " + bed;
    const waveBtn = tile.querySelector(".wave-toggle");
    waveBtn.addEventListener("click", () => toggleWaves(bed, waveBtn));
    tile.querySelector(".trend-btn").addEventListener("click", () => showTrend(bed));
    tiles.set(bed, tile);
    const after = [...tiles.keys()].sort((a, b) => a - b).find((k) => k > bed);
    grid.insertBefore(tile, after === undefined ? null : tiles.get(after));
    return tile;
  }

  function highestAlarm(bed) {
    let best = null;
    for (const a of state.alarms.values()) {
      if (a.bed === bed && (a.state === "active" || a.state === "silenced") &&
          (!best || RANK[a.priority] > RANK[best.priority])) best = a;
    }
    return best;
  }

  function drawTiles() {
    let alarming = 0;
    for (const [bed, b] of state.beds) {
      const tile = tileFor(bed);
      const set = (field, text) => { tile.querySelector('[data-field="' + field + '"]').textContent = text; };
      set("hr", fmt(b.hr, 0));
      set("spo2", fmt(b.spo2, 0));
      set("rr", fmt(b.rr, 0));
      set("temp", fmt(b.temp, 1));
      set("nibp", b.nibp_sys == null ? "---" : fmt(b.nibp_sys, 0) + "/" + fmt(b.nibp_dia, 0) + " (" + fmt(b.nibp_map, 0) + ")");
      set("nibp-time", b.nibp_time == null ? "" : "cuff " + clock(b.nibp_time));
      tile.querySelector(".patient").textContent = b.patient || "";
      tile.querySelector(".flags").textContent = (b.flags || []).map((f) => f.replace("_", " ").toUpperCase()).join(" · ");
      const offline = state.offlineSince !== null;
      tile.dataset.stale = String(Boolean(b.stale) || offline);
      tile.dataset.offline = String(offline);
      tile.querySelector(".stale-label").textContent = offline
        ? "NO CONNECTION: last values, from before " + state.offlineSince.toLocaleTimeString()
        : b.stale ? "NO DATA" : "";
      const news = tile.querySelector(".news2");
      news.dataset.band = b.news2 ? b.news2.band : "none";
      news.textContent = b.news2 ? "NEWS2 " + b.news2.total + (b.news2.complete ? "" : "+") + " " + b.news2.band : "NEWS2 —";
      const top = highestAlarm(bed);
      tile.dataset.priority = top ? top.priority : "none";
      tile.querySelector(".alarm-label").textContent =
        top ? SYMBOL[top.priority] + " " + top.priority.toUpperCase() + (top.state === "silenced" ? " (silenced)" : "") + ": " + top.condition : "";
      if (top) alarming += 1;
      if (b.ward) wardTile(tile, b);
    }
    placeWardHeads();
    $("summary").textContent = state.beds.size + " beds · " + alarming + " alarming" +
      (state.offlineSince !== null ? " · not current (no connection)" : "");
  }

  // The hospital view's beds carry their ward: the tile says which, and a ward whose station is
  // offline (its Last Will) says so on each of its tiles. Bed keys are blocks per ward, so a
  // ward's tiles are together; its heading goes before the first.
  function wardTile(tile, b) {
    tile.querySelector(".bed").textContent = b.ward + " · Bed " + b.ward_bed;
    tile.dataset.ward = b.ward;
    const w = state.wards.get(b.ward);
    if (w && w.online === false) {
      tile.dataset.stale = "true";
      tile.querySelector(".stale-label").textContent = "WARD OFFLINE: its station's Last Will";
    }
  }

  function placeWardHeads() {
    const first = new Map();
    for (const [bed, b] of state.beds) {
      if (b.ward && (!first.has(b.ward) || bed < first.get(b.ward))) first.set(b.ward, bed);
    }
    for (const [ward, bed] of first) {
      let head = wardHeads.get(ward);
      if (!head) {
        head = document.createElement("h3");
        head.className = "ward-heading";
        head.style.gridColumn = "1 / -1";
        wardHeads.set(ward, head);
      }
      const w = state.wards.get(ward);
      head.dataset.online = w ? String(w.online) : "unknown";
      head.textContent = "Ward " + ward + " · " + (!w || w.online === null ? "status not heard yet"
        : w.online ? "station online"
          : "STATION OFFLINE (Last Will) since " + new Date((w.changed_at || 0) * 1000).toLocaleTimeString());
      if (head.nextSibling !== tiles.get(bed)) grid.insertBefore(head, tiles.get(bed));
    }
  }

  // -- alarms ---------------------------------------------------------------------------------

  function alarmItem(a) {
    const li = document.createElement("li");
    li.dataset.priority = a.priority;
    li.dataset.alarmId = a.alarm_id;
    li.dataset.state = a.state;
    const what = document.createElement("div");
    what.className = "what";
    const value = a.value == null ? "" : " " + fmt(a.value, 1) + (a.limit == null ? "" : " (limit " + fmt(a.limit, 1) + ")");
    what.textContent = SYMBOL[a.priority] + (a.ward ? " " + a.ward + " · Bed " + a.ward_bed : " Bed " + a.bed) + ": " + a.condition + value;
    const st = document.createElement("div");
    st.className = "state";
    let text = a.priority + " · " + a.state;
    if (a.acked_by) text += " by " + a.acked_by;
    if (a.state === "silenced" && a.silenced_by) text += " by " + a.silenced_by;
    if (a.source === "station") text += " · technical";
    text += " · " + new Date(a.raised_at * 1000).toLocaleTimeString();
    st.textContent = text;
    li.append(what, st);
    if (a.state === "active" || a.state === "silenced") {
      const actions = document.createElement("div");
      actions.className = "actions";
      const ack = document.createElement("button");
      ack.type = "button";
      ack.textContent = "Acknowledge";
      ack.addEventListener("click", () => send({ type: "ack", alarm_id: a.alarm_id, user: who() }));
      actions.append(ack);
      if (a.state === "active") {
        const silence = document.createElement("button");
        silence.type = "button";
        silence.textContent = "Silence 2 min";
        silence.addEventListener("click", () => send({ type: "silence", alarm_id: a.alarm_id, user: who(), seconds: 120 }));
        actions.append(silence);
      }
      li.append(actions);
    }
    return li;
  }

  function who() { return $("user").value.trim() || "nurse"; }

  function drawAlarms() {
    const order = { active: 0, silenced: 1, acknowledged: 2, cleared: 3 };
    const items = [...state.alarms.values()].sort((a, b) =>
      (order[a.state] - order[b.state]) || (RANK[b.priority] - RANK[a.priority]) || (b.raised_at - a.raised_at));
    alarmList.replaceChildren(...items.slice(0, 60).map(alarmItem));
  }

  // -- network panel --------------------------------------------------------------------------

  function takeStats(stats) {
    const now = performance.now() / 1000;
    if (state.stats) state.prevStats = { at: state.statsAt, stats: state.stats };
    state.stats = stats;
    state.statsAt = now;
    state.statsDirty = true;
  }

  function perSecond(path) {
    if (!state.prevStats) return null;
    const get = (s) => path.reduce((o, k) => (o == null ? o : o[k]), s);
    const dt = state.statsAt - state.prevStats.at;
    const a = get(state.prevStats.stats), b = get(state.stats);
    return dt > 0 && a != null && b != null ? (b - a) / dt : null;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); }
    return tr;
  }

  function drawNetwork() {
    const s = state.stats;
    if (!s) return;
    const beds = Object.entries(s.beds || {});
    let expected = 0, lost = 0;
    const lat50 = [], lat99 = [], jit = [];
    for (const [, b] of beds) {
      expected += b.expected; lost += b.lost;
      if (b.latency_p50_ms != null) { lat50.push(b.latency_p50_ms); lat99.push(b.latency_p99_ms); jit.push(b.jitter_ms); }
    }
    const mean = (xs) => (xs.length ? xs.reduce((x, y) => x + y, 0) / xs.length : null);
    const max = (xs) => (xs.length ? Math.max(...xs) : null);
    const pct = (x) => (x == null ? "---" : (100 * x).toFixed(1) + "%");
    $("net-protocols").replaceChildren(
      row(["UDP telemetry", fmt(perSecond(["udp", "received"]), 0), fmt(perSecond(["udp", "bytes"]), 0),
        pct(expected ? lost / expected : 0), fmt(mean(lat50), 1), fmt(max(lat99), 1), fmt(mean(jit), 2)]),
      row(["TCP alarms", fmt(perSecond(["tcp", "received"]), 1), fmt(perSecond(["tcp", "bytes"]), 0),
        "dup " + (s.tcp.duplicates ?? 0), "", "", "open " + (s.tcp.open ?? 0)]),
      row(["WebSocket", fmt(perSecond(["websocket", "sent"]), 1), fmt(perSecond(["websocket", "bytes"]), 0),
        "drop " + (s.websocket.superseded ?? 0), "", "", (s.websocket.clients ?? 0) + " clients"]),
    );
    $("net-beds").replaceChildren(...beds.map(([bed, b]) => row([
      bed, String(b.received), String(b.lost), pct(b.loss_ratio), fmt(b.latency_p50_ms, 1), fmt(b.latency_p99_ms, 1), fmt(b.jitter_ms, 2),
    ])));
  }

  // -- waveforms ------------------------------------------------------------------------------

  function toggleWaves(bed, button) {
    if (state.waveBeds.has(bed)) {
      state.waveBeds.delete(bed);
      state.waveViews.get(bed).remove();
      state.waveViews.delete(bed);
    } else {
      if (state.waveBeds.size >= MAX_WAVE_BEDS) {
        const oldest = state.waveBeds.values().next().value;
        toggleWaves(oldest, tiles.get(oldest).querySelector(".wave-toggle"));
      }
      state.waveBeds.add(bed);
      state.waveViews.set(bed, new window.WaveView(bed, $("waves")));
    }
    button.setAttribute("aria-pressed", String(state.waveBeds.has(bed)));
    $("waves-empty").hidden = state.waveBeds.size > 0;
    send({ type: "subscribe", waves: [...state.waveBeds] });
  }

  // -- trends (BokehJS, served by the station from the installed bokeh) -----------------------

  let trend = null;

  async function showTrend(bed) {
    state.trendBed = bed;
    $("trend-bed").textContent = "Bed " + bed + ", retained history";
    if (!window.Bokeh || !window.Bokeh.Plotting) {
      $("trend").textContent = "BokehJS did not load, so trends cannot be drawn.";
      return;
    }
    if (!trend) {
      const source = new Bokeh.ColumnDataSource({ data: { t: [], hr: [], spo2: [], rr: [] } });
      const plot = Bokeh.Plotting.figure({
        height: 240, sizing_mode: "stretch_width", x_axis_type: "datetime",
        tools: "pan,wheel_zoom,box_zoom,reset", title: "",
      });
      plot.line({ field: "t" }, { field: "hr" }, { source, line_color: "#1b9e3e", line_width: 2, legend_label: "HR" });
      plot.line({ field: "t" }, { field: "spo2" }, { source, line_color: "#0b7fab", line_width: 2, legend_label: "SpO2" });
      plot.line({ field: "t" }, { field: "rr" }, { source, line_color: "#b8860b", line_width: 2, legend_label: "RR" });
      $("trend").replaceChildren();
      await Bokeh.Plotting.show(plot, $("trend"));
      trend = { source, plot };
    }
    await refreshTrend();
  }

  async function refreshTrend() {
    if (!trend || state.trendBed == null) return;
    const resp = await fetch("api/beds/" + state.trendBed + "/history");
    if (!resp.ok) return;
    const h = await resp.json();
    trend.source.data = { t: h.t.map((x) => x * 1000), hr: h.hr, spo2: h.spo2, rr: h.rr };
  }

  // -- the frame loop -------------------------------------------------------------------------

  function frame() {
    if (state.tilesDirty) { state.tilesDirty = false; drawTiles(); }
    if (state.alarmsDirty) { state.alarmsDirty = false; drawAlarms(); }
    if (state.statsDirty) { state.statsDirty = false; drawNetwork(); }
    for (const view of state.waveViews.values()) view.draw();
    requestAnimationFrame(frame);
  }

  // who is logged in: with sessions, the station records this operator on every ack and
  // silence, so the name is shown and cannot be typed over; a viewer gets no buttons' effect
  async function whoAmI() {
    const resp = await fetch("api/me");
    if (!resp.ok) return;
    const me = await resp.json();
    if (!me.sessions) return;
    const input = $("user");
    input.value = me.user + " (" + me.role + ")";
    input.readOnly = true;
    document.body.dataset.role = me.role;
  }

  setInterval(() => { refreshTrend().catch((e) => console.warn("trend:", e)); }, 5000);
  whoAmI().catch((e) => console.warn("who am I:", e));
  connect();
  requestAnimationFrame(frame);
})();
