// Central-station dashboard. One WebSocket to the station (schema v1, docs/PROTOCOL.md); state
// kept in plain objects; drawing only from requestAnimationFrame, never once per message. Data
// enters the page as text (textContent), never as HTML.
"use strict";

(() => {
  const RANK = { high: 3, medium: 2, low: 1 };
  // IEC 60601-1-8's priority markings, beside the colour and the word (never colour alone)
  const SYMBOL = { high: "!!!", medium: "!!", low: "!" };
  const STATE_RANK = { active: 0, silenced: 1, acknowledged: 2, cleared: 3 };
  // an alarm's parameter -> the numeric on the tile that shows it (coloured while in alarm)
  const PARAM_BOX = { hr: "hr", spo2: "spo2", rr: "rr", temp: "temp", nibp_sys: "nibp",
    nibp_dia: "nibp", nibp_map: "nibp", etco2: "etco2", abp_sys: "abp", abp_dia: "abp", abp_map: "abp" };
  const LABEL = { hr: "HR", spo2: "SpO2", rr: "RR", temp: "TEMP", nibp_sys: "NIBP SYS",
    nibp_dia: "NIBP DIA", nibp_map: "NIBP MAP", etco2: "EtCO2", abp_sys: "ABP SYS", abp_dia: "ABP DIA", abp_map: "ABP MAP" };
  const RHYTHM = { sinus: "Sinus rhythm", sinus_brady: "Sinus brady", sinus_tachy: "Sinus tachy",
    af: "AF", vt: "VT", vf: "VF", asystole: "ASYSTOLE",
    svt: "SVT", flutter: "Atrial flutter", block1: "1st° AV block", block2: "2nd° AV block",
    block3: "3rd° AV block", pvc: "Sinus with PVCs", pea: "PEA", paced: "Paced" };
  // the rhythm label's colour (vitalsim/rhythms.py's names): a rhythm with no cardiac output is
  // red, any other rhythm that is not sinus yellow, sinus green
  const LETHAL_RHYTHMS = new Set(["vf", "vt", "asystole", "pea"]);
  const SINUS_RHYTHMS = new Set(["sinus", "sinus_brady", "sinus_tachy"]);
  function rhythmClass(name) {
    if (!name) return "none";
    return LETHAL_RHYTHMS.has(name) ? "lethal" : SINUS_RHYTHMS.has(name) ? "sinus" : "abnormal";
  }
  // the alarm conditions of a cardiac arrest (vitalsim/alarms.py), ranked above every other high
  // alarm on a tile's headline: during VF the tile says VF, not the APNOEA that follows it
  const ARREST = { ASYSTOLE: 4, VF: 3, VT: 2, PEA: 1 };
  // NEWS2's parameter names (vitalsim/physiology/news2.py) as a tile names them
  const NEWS2_NAMES = { pulse: "HR", spo2: "SpO2", systolic: "BP", rr: "RR", temp: "Temp" };
  const NEWS2_ORDER = ["pulse", "spo2", "systolic", "rr", "temp"];
  const MAX_WAVE_BEDS = 4;
  const state = {
    beds: new Map(), alarms: new Map(), socket: null, retry: 500,
    pauses: new Map(),    // bed -> { deadline: performance.now() s when it ends, by }
    worstSeen: new Map(), // alarm_id -> [raised_at, the worst live value this page has seen]
    historyOpen: false,
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
  const sound = new window.AlarmSound(document.body);
  const nowS = () => performance.now() / 1000;

  function fmt(v, digits) {
    return v === null || v === undefined || Number.isNaN(v) ? "---" : Number(v).toFixed(digits);
  }

  // one clock everywhere: wall-clock times of day, and durations as minutes:seconds
  function timeOfDay(epochSeconds) {
    return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function mmss(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function ago(epochSeconds) {
    const s = Math.max(0, Date.now() / 1000 - epochSeconds);
    return s < 90 ? Math.round(s) + " s ago" : Math.round(s / 60) + " min ago";
  }

  function digits(param) { return param === "temp" ? 1 : 0; }

  // the value an alarm is about, now: the bed's latest numeric (null when unknown or stale)
  function liveValue(a) {
    const b = state.beds.get(a.bed);
    if (!a.parameter || !b || b.stale || state.offlineSince !== null) return null;
    const v = b[a.parameter];
    return v === undefined ? null : v;
  }

  function worse(a, x, y) {
    if (x == null) return y;
    if (y == null) return x;
    return a.direction === "low" ? Math.min(x, y) : Math.max(x, y);
  }

  // the worst value of this episode: the station's (from every datagram it took) and what
  // this page saw since the station last sent the entry
  function worstValue(a) {
    let seen = state.worstSeen.get(a.alarm_id);
    if (!seen || seen[0] !== a.raised_at) { seen = [a.raised_at, null]; state.worstSeen.set(a.alarm_id, seen); }
    if (a.condition_present) seen[1] = worse(a, seen[1], liveValue(a));
    return worse(a, a.worst, seen[1]);
  }

  // "HR 134 > 120": the parameter, its value now (else the event's), which side, the limit
  // A parameter the live bed no longer measures (HR in VF) has no value now: the alarm keeps
  // its state, but the text says "not measured" and gives the raising value as such, never as
  // if it were current ("HR 189 > 170" in VF).
  function limitText(a) {
    const b = state.beds.get(a.bed);
    const unmeasured = Boolean(a.parameter) && a.state !== "cleared" && b != null && !b.stale &&
      state.offlineSince === null && b[a.parameter] == null;
    const v = liveValue(a) ?? a.value;
    const label = LABEL[a.parameter] || a.condition.replace(/ (HIGH|LOW)$/, "");
    const op = a.direction === "low" ? "<" : ">";
    const d = digits(a.parameter);
    if (unmeasured) {
      return label + " not measured" + (a.value == null ? "" : " · raised at " + fmt(a.value, d) +
        (a.limit == null ? "" : " " + op + " " + fmt(a.limit, d)));
    }
    if (a.limit == null) return v == null ? a.condition : label + " " + fmt(v, d);
    return label + " " + fmt(v, d) + " " + op + " " + fmt(a.limit, d);
  }

  function pausedFor(bed) {
    const p = state.pauses.get(bed);
    if (!p) return null;
    const left = p.deadline - nowS();
    if (left <= 0) { state.pauses.delete(bed); return null; }
    return left;
  }

  function takePause(p) {
    if (!p.seconds || p.until == null) state.pauses.delete(p.bed);
    else state.pauses.set(p.bed, { deadline: nowS() + p.seconds, by: p.by });
    state.tilesDirty = true;
  }

  // what should sound: the highest-priority alarm still sounding (not acknowledged, not
  // silenced) on a bed whose audio is not paused
  function soundTarget() {
    let best = null;
    for (const a of state.alarms.values()) {
      if (a.state !== "active" || pausedFor(a.bed) !== null) continue;
      if (!best || RANK[a.priority] > RANK[best.priority]) best = a;
    }
    return best;
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
    let opened = false;
    state.socket = ws;
    setConn("connecting", state.offlineSince === null ? "connecting…"
      : "reconnecting… values are from before " + state.offlineSince.toLocaleTimeString([], { hour12: false }));
    ws.onopen = () => {
      opened = true;
      delete document.body.dataset.session;
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
        state.offlineSince.toLocaleTimeString([], { hour12: false }) + ": values are not current; reconnecting…");
      const retry = () => {
        setTimeout(connect, state.retry);
        state.retry = Math.min(state.retry * 2, 5000);
      };
      if (opened) { retry(); return; }
      // refused before it opened: a browser does not say why, so ask. A station that restarted
      // knows no session from before (401): retrying alone would never get back in
      sessionEnded().then((ended) => {
        if (ended) {
          document.body.dataset.session = "ended";
          setConn("disconnected", "session ended: the station does not know this login any more " +
            "(it restarted, or you were logged out). Open the login link it printed; " +
            "values are from before " + state.offlineSince.toLocaleTimeString([], { hour12: false }));
        }
        retry();
      });
    };
  }

  async function sessionEnded() {
    try {
      return (await fetch("api/me", { cache: "no-store" })).status === 401;
    } catch (e) {
      return false;  // the station is not there at all: the message above says so
    }
  }

  function handle(msg) {
    switch (msg.type) {
      case "snapshot":
        state.beds.clear();
        state.alarms.clear();
        alarmNodes.clear();
        state.pauses.clear();
        for (const b of msg.beds) state.beds.set(b.bed, b);
        for (const a of msg.alarms) state.alarms.set(a.alarm_id, a);
        for (const w of msg.wards || []) state.wards.set(w.ward, w);
        if (msg.broker) takeBroker(msg.broker);
        for (const p of msg.pauses || []) takePause(p);
        takeStats(msg.stats);
        state.tilesDirty = state.alarmsDirty = true;
        break;
      case "vitals":
        for (const b of msg.beds) state.beds.set(b.bed, b);
        state.tilesDirty = state.alarmsDirty = true;  // the alarm list shows live values
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
      case "broker":  // the hospital view's own link to the broker came up or went down
        takeBroker(msg);
        break;
      case "pause":
        takePause(msg);
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
    tile.querySelector(".pause-btn").addEventListener("click", () =>
      send({ type: "pause", bed, seconds: pausedFor(bed) === null ? 120 : 0, user: who() }));
    tiles.set(bed, tile);
    const after = [...tiles.keys()].sort((a, b) => a - b).find((k) => k > bed);
    grid.insertBefore(tile, after === undefined ? null : tiles.get(after));
    return tile;
  }

  // the bed's alarm entries still shown (not cleared)
  function openAlarms() {
    const byBed = new Map();
    for (const a of state.alarms.values()) {
      if (a.state === "cleared") continue;
      if (!byBed.has(a.bed)) byBed.set(a.bed, []);
      byBed.get(a.bed).push(a);
    }
    return byBed;
  }

  // the entry a tile shows: highest priority first, then one that still needs a nurse
  // the tile's label: the highest priority, then what needs a nurse first (active before
  // silenced before acknowledged), then a condition still present before one that has ended and
  // is only latched (VT that became VF shows VF), then the newest
  // Within high priority an arrest's rhythm (ASYSTOLE, VF, VT, PEA) comes first, above APNOEA,
  // the extremes and DESAT that it brings: ties went to the newest, and VF read APNOEA.
  function topAlarm(list) {
    const arrest = (a) => (a.priority === "high" && ARREST[a.condition] ? 1 : 0);
    const key = (a) => [RANK[a.priority], arrest(a), -STATE_RANK[a.state], a.condition_present ? 1 : 0,
      ARREST[a.condition] || 0, a.raised_at];
    let best = null;
    for (const a of list) {
      if (!best) { best = a; continue; }
      const ka = key(a), kb = key(best);
      for (let i = 0; i < ka.length; i++) {
        if (ka[i] !== kb[i]) { if (ka[i] > kb[i]) best = a; break; }
      }
    }
    return best;
  }

  function drawTiles() {
    let alarming = 0;
    const open = openAlarms();
    const offline = state.offlineSince !== null;
    for (const [bed, b] of state.beds) {
      const tile = tileFor(bed);
      const flags = b.flags || [];
      const stale = Boolean(b.stale) && !offline;
      const leadOff = flags.includes("lead_off"), probeOff = flags.includes("probe_off");
      const artefact = flags.some((f) => f.startsWith("artifact") || f.startsWith("artefact"));
      const fromPleth = flags.some((f) => f.includes("pleth"));
      // a stale bed shows no number at all: "---" and "No signal", as a station does
      const show = (v, d) => (stale ? "---" : fmt(v, d));
      const set = (field, text) => { tile.querySelector('[data-field="' + field + '"]').textContent = text; };
      set("hr", show(b.hr, 0));
      set("hr-source", fromPleth ? "(pleth)" : "");
      set("spo2", probeOff ? "---" : show(b.spo2, 0));
      set("rr", leadOff ? "---" : show(b.rr, 0));  // impedance respiration needs the leads
      set("temp", show(b.temp, 1));
      set("nibp", b.nibp_sys == null || stale ? "---" : fmt(b.nibp_sys, 0) + "/" + fmt(b.nibp_dia, 0) + " (" + fmt(b.nibp_map, 0) + ")");
      set("nibp-time", b.nibp_at == null ? "" : timeOfDay(b.nibp_at) + " · " + ago(b.nibp_at) + (b.nibp_mode ? " · " + b.nibp_mode : ""));
      const etco2 = tile.querySelector(".etco2"), abp = tile.querySelector(".abp");
      etco2.hidden = b.etco2 == null;
      abp.hidden = b.abp_sys == null;
      set("etco2", show(b.etco2, 0));
      set("abp", b.abp_sys == null || stale ? "---" : fmt(b.abp_sys, 0) + "/" + fmt(b.abp_dia, 0) + " (" + fmt(b.abp_map, 0) + ")");
      tile.querySelector(".patient").textContent = b.patient || "";
      tile.querySelector(".scenario").textContent = b.scenario ? "scenario: " + b.scenario : "";
      const rhythm = b.rhythm ? (RHYTHM[b.rhythm] || b.rhythm.toUpperCase()) : "";
      tile.querySelector(".rhythm").textContent = stale || leadOff ? "" :
        rhythm + (b.pvc_per_min ? " · PVC " + fmt(b.pvc_per_min, 0) + "/min" : "");
      tile.querySelector(".rhythm").dataset.kind = stale || leadOff ? "none" : rhythmClass(b.rhythm);
      const words = [];
      if (leadOff) words.push("LEADS OFF");
      if (probeOff) words.push("SpO2 PROBE OFF");
      if (artefact) words.push("ARTEFACT");
      for (const f of flags) {
        if (!["lead_off", "probe_off"].includes(f) && !f.startsWith("artifact") && !f.startsWith("artefact") && !f.includes("pleth")) {
          words.push(f.replace(/_/g, " ").toUpperCase());
        }
      }
      tile.querySelector(".flags").textContent = words.join(" · ");
      tile.dataset.artefact = String(artefact);
      tile.dataset.stale = String(Boolean(b.stale) || offline);
      tile.dataset.offline = String(offline);
      tile.querySelector(".stale-label").textContent = offline
        ? "NO CONNECTION: last values, from before " + state.offlineSince.toLocaleTimeString([], { hour12: false })
        : b.stale ? "No signal" : "";
      const news = tile.querySelector(".news2");
      const n = b.news2;
      // a set missing parameters is not a score: it says what was not measured, in a neutral
      // style, never a band's colour (in VF, HR, SpO2 and BP unmeasurable scored "0 low")
      const missing = n && n.missing ? NEWS2_ORDER.filter((k) => n.missing.includes(k)).map((k) => NEWS2_NAMES[k]) : [];
      const incomplete = Boolean(n) && (n.complete === false || missing.length > 0);
      news.dataset.band = !n ? "none" : incomplete ? "incomplete" : n.band;
      news.textContent = !n ? "NEWS2 —" : (incomplete
        ? "NEWS2 incomplete: " + (missing.length ? missing.join(", ") + " not measured" : "parameters not measured")
        : "NEWS2 " + n.total + " " + n.band) + " · " + timeOfDay(n.at);
      news.title = n ? "scored at " + new Date(n.at * 1000).toLocaleTimeString([], { hour12: false }) + " (" + n.trigger + ")" +
        (n.assumed && n.assumed.length ? "; assumed " + n.assumed.join(", ") : "") +
        (n.missing && n.missing.length ? "; not measured: " + n.missing.join(", ") : "") : "";
      news.dataset.assumed = n && n.assumed ? String(n.assumed.length) : "0";
      // what the score assumed (air, alert), on the tile, not only in the tooltip
      tile.querySelector(".news2-assumed").textContent = n && n.assumed && n.assumed.length
        ? "NEWS2 assumed " + n.assumed.map((x) => x.split(" (")[0]).join(", ") + " (not entered)" : "";
      // alarms: the tile's border and label from its top entry; each numeric in alarm coloured
      const list = open.get(bed) || [];
      const top = topAlarm(list);
      tile.dataset.priority = top ? top.priority : "none";
      tile.dataset.alarmState = top ? top.state : "none";
      tile.querySelector(".alarm-label").textContent = top
        ? SYMBOL[top.priority] + " " + top.condition +
          (top.limit != null ? " " + limitText(top).slice(limitText(top).indexOf(" ") + 1) : "") +
          (top.state === "acknowledged" ? " · ACK" : top.state === "silenced" ? " · SILENCED" : "")
        : "";
      // not by colour alone: IEC's priority marking in the text, and the priority in words for
      // a screen reader
      const label = tile.querySelector(".alarm-label");
      if (top) label.setAttribute("aria-label", top.priority + " priority alarm: " + label.textContent);
      else label.removeAttribute("aria-label");
      const inAlarm = new Map();
      for (const a of list) {
        const box = PARAM_BOX[a.parameter];
        if (box && (!inAlarm.has(box) || RANK[a.priority] > RANK[inAlarm.get(box).priority])) inAlarm.set(box, a);
      }
      for (const div of tile.querySelectorAll(".numerics [data-param]")) {
        const a = inAlarm.get(div.dataset.param);
        div.dataset.alarm = a ? a.priority : "none";
        div.dataset.alarmState = a ? a.state : "none";
      }
      const left = pausedFor(bed);
      tile.dataset.paused = String(left !== null);
      tile.querySelector(".pause-label").textContent = left === null ? "" : "AUDIO PAUSED " + mmss(left);
      tile.querySelector(".pause-btn").textContent = left === null ? "Audio pause 2 min" : "Resume audio";
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

  // The hospital view's own link to the broker, in the header: with it down every ward's state
  // is only as last heard, and the fault is the view's link, not every station
  function takeBroker(b) {
    const el = $("broker");
    document.title = $("h1-title").textContent = "Hospital view";
    el.hidden = false;
    el.dataset.connected = String(b.connected);
    el.className = "conn conn-" + (b.connected ? "connected" : "disconnected");
    el.textContent = b.connected ? "broker " + b.broker + " connected"
      : "BROKER UNREACHABLE since " + new Date(b.since * 1000).toLocaleTimeString([], { hour12: false }) +
        (b.error ? " (" + b.error + ")" : "") + ": wards shown as last heard";
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
      head.dataset.conflict = String(Boolean(w && w.conflict));
      head.textContent = "Ward " + ward + " · " + (!w || w.online === null ? "status not heard yet"
        : w.conflict ? "CONFLICT: " + w.conflict.length + " stations claim ward " + ward +
          " (their beds' values alternate): stop all but one"
          : w.online ? "station online"
            : "STATION OFFLINE (Last Will) since " + new Date((w.changed_at || 0) * 1000).toLocaleTimeString());
      if (head.nextSibling !== tiles.get(bed)) grid.insertBefore(head, tiles.get(bed));
    }
  }

  // -- alarms ---------------------------------------------------------------------------------

  // alarm_id -> its list item, kept and updated in place: the list shows live values, and a
  // button replaced under a nurse's pointer ten times a second could not be clicked
  const alarmNodes = new Map();

  function alarmItem(a) {
    let node = alarmNodes.get(a.alarm_id);
    if (!node) {
      const li = document.createElement("li");
      const what = document.createElement("div");
      what.className = "what";
      const value = document.createElement("div");
      value.className = "value";
      const st = document.createElement("div");
      st.className = "state";
      li.append(what, value, st);
      node = { li, what, value, st, actions: null, actionsFor: null };
      alarmNodes.set(a.alarm_id, node);
    }
    const { li } = node;
    li.dataset.priority = a.priority;
    li.dataset.alarmId = a.alarm_id;
    li.dataset.state = a.state;
    li.dataset.bed = String(a.bed);
    const live = liveValue(a), worst = worstValue(a);
    li.dataset.live = live == null ? "" : String(live);
    li.dataset.worst = worst == null ? "" : String(worst);
    const patient = (state.beds.get(a.bed) || {}).patient;
    setText(node.what, SYMBOL[a.priority] + (a.ward ? " " + a.ward + " · Bed " + a.ward_bed : " Bed " + a.bed) + (patient ? " · " + patient : "") + ": " + a.condition);
    setText(node.value, a.limit != null || a.value != null || live != null
      ? limitText(a) + (worst != null ? " · worst " + fmt(worst, digits(a.parameter)) : "") + (a.artefact ? " · ARTEFACT?" : "")
      : "");
    let text = a.priority + " · " + a.state;
    if (a.acked_by) text += " by " + a.acked_by;
    if (a.state === "acknowledged" && a.resound_at != null) text += " · sounds again in " + mmss(a.resound_at - Date.now() / 1000);
    if (a.state === "silenced" && a.silenced_by) text += " by " + a.silenced_by;
    if (a.source === "station") text += " · technical";
    if (a.state !== "cleared" && !a.condition_present) text += " · condition ended (latched)";
    text += " · " + new Date(a.raised_at * 1000).toLocaleTimeString([], { hour12: false });
    if (a.raises > 1) text += " · raised " + a.raises + "×";
    setText(node.st, text);
    if (node.actionsFor !== a.state) {  // the buttons change only with the state
      if (node.actions) node.actions.remove();
      node.actions = null;
      node.actionsFor = a.state;
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
        node.actions = actions;
      }
    }
    return li;
  }

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

  function who() { return $("user").value.trim() || "nurse"; }

  function drawAlarms() {
    // priority first, so a silenced or acknowledged red alarm never sorts below an active
    // yellow one; within a priority what still needs a nurse, a condition still present before
    // one only latched, then the newest; cleared entries last (server/alarm_board.py's order)
    const items = [...state.alarms.values()].sort((a, b) =>
      ((a.state === "cleared") - (b.state === "cleared")) || (RANK[b.priority] - RANK[a.priority]) ||
      (STATE_RANK[a.state] - STATE_RANK[b.state]) ||
      ((b.condition_present ? 1 : 0) - (a.condition_present ? 1 : 0)) || (b.raised_at - a.raised_at));
    const shown = items.slice(0, 60).map(alarmItem);
    const current = alarmList.children;
    if (current.length !== shown.length || shown.some((li, i) => current[i] !== li)) {
      alarmList.replaceChildren(...shown);
    }
    if (alarmNodes.size > 4 * 60) {  // forget the items of entries no longer shown
      const keep = new Set(shown);
      for (const [id, node] of alarmNodes) if (!keep.has(node.li)) alarmNodes.delete(id);
    }
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

  // one small chart per parameter (each on its own axis), all sharing the time axis, and NEWS2
  // per observation set; each alarm raised is a triangle on its parameter's chart, in its colour
  // Each y axis spans at least ``span`` in its units around the data (a fitted axis made
  // 36.8-36.9 °C of noise look like a collapse), and never leaves ``floor``..``ceil``.
  const TRENDS = [
    { key: "hr", title: "HR /min", lines: [["hr", "#1b9e3e"]], span: 40, floor: 0 },
    { key: "spo2", title: "SpO2 %", lines: [["spo2", "#0b7fab"]], span: 10, floor: 0, ceil: 100 },
    { key: "rr", title: "RR /min", lines: [["rr", "#b8860b"]], span: 10, floor: 0 },
    { key: "temp", title: "Temp °C", lines: [["temp", "#777"]], span: 2 },
    { key: "nibp", title: "NIBP mmHg", lines: [["nibp_sys", "#c2185b"], ["nibp_map", "#e57399"], ["nibp_dia", "#f3a6c0"]], span: 60, floor: 0 },
    { key: "news2", title: "NEWS2 (gaps: incomplete sets)", lines: [], span: 7, floor: 0, ceil: 20 },
  ];

  // a value not measured (null) is a gap in the line, never a 0: Bokeh breaks a line at NaN
  const gaps = (xs) => (xs || []).map((x) => (x == null ? NaN : x));

  // [start, end] of a y axis: the finite data, widened about its middle to the spec's span
  function yExtent(spec, columns) {
    let lo = Infinity, hi = -Infinity;
    for (const col of columns) for (const v of col) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo > hi) return null;
    const pad = (hi - lo) * 0.05;
    lo -= pad; hi += pad;
    if (hi - lo < spec.span) { const mid = (lo + hi) / 2; lo = mid - spec.span / 2; hi = mid + spec.span / 2; }
    if (spec.floor != null && lo < spec.floor) { hi += spec.floor - lo; lo = spec.floor; }
    if (spec.ceil != null && hi > spec.ceil) { lo = Math.max(spec.floor ?? -Infinity, lo - (hi - spec.ceil)); hi = spec.ceil; }
    return [lo, hi];
  }
  const MARK_COLOUR = { high: "#e53935", medium: "#f9a825", low: "#00acc1" };
  let trend = null;

  async function showTrend(bed) {
    state.trendBed = bed;
    const patient = (state.beds.get(bed) || {}).patient;
    $("trend-bed").textContent = "Bed " + bed + (patient ? " · " + patient : "") + ", retained history";
    $("obs-form").hidden = false;
    if (!window.Bokeh || !window.Bokeh.Plotting) {
      $("trend").textContent = "BokehJS did not load, so trends cannot be drawn.";
      return;
    }
    if (!trend) {
      // each chart is its own Bokeh document (one per holder), so they cannot share a range
      // object: each has its own, set to the same span at every refresh
      const sources = {}, marks = {}, ranges = [], yranges = {};
      $("trend").replaceChildren();
      for (const spec of TRENDS) {
        const data = { t: [] };
        for (const [field] of spec.lines) data[field] = [];
        if (spec.key === "news2") { data.total = []; }
        sources[spec.key] = new Bokeh.ColumnDataSource({ data });
        marks[spec.key] = new Bokeh.ColumnDataSource({ data: { t: [], y: [], colour: [] } });
        const x_range = new Bokeh.Range1d({ start: Date.now() - 60_000, end: Date.now() });
        ranges.push(x_range);
        const y_range = yranges[spec.key] = new Bokeh.Range1d({ start: 0, end: spec.span });
        const plot = Bokeh.Plotting.figure({
          height: spec.key === "news2" ? 120 : 105, sizing_mode: "stretch_width", x_axis_type: "datetime",
          x_range, y_range, tools: "", title: spec.title, toolbar_location: null,
          min_border_left: 50,
        });
        plot.title.text_font_size = "11px";
        for (const [field, colour] of spec.lines) {
          plot.line({ field: "t" }, { field }, { source: sources[spec.key], line_color: colour, line_width: 2 });
        }
        if (spec.key === "news2") {
          plot.step({ field: "t" }, { field: "total" }, "after", { source: sources.news2, line_color: "#8e24aa", line_width: 2 });
          plot.scatter({ field: "t" }, { field: "total" }, { source: sources.news2, size: 5, fill_color: "#8e24aa", line_color: null });
        }
        plot.scatter({ field: "t" }, { field: "y" }, { source: marks[spec.key], marker: "triangle", size: 11,
          fill_color: { field: "colour" }, line_color: "#111" });
        const holder = document.createElement("div");
        holder.className = "trend-plot";
        holder.dataset.trend = spec.key;
        $("trend").append(holder);
        await Bokeh.Plotting.show(plot, holder);
      }
      trend = { sources, marks, ranges, yranges };
    }
    await refreshTrend();
  }

  function nearest(ts, ys, t) {
    let best = null, bestDt = Infinity;
    for (let i = 0; i < ts.length; i++) {
      const dt = Math.abs(ts[i] - t);
      if (dt < bestDt && ys[i] != null) { bestDt = dt; best = ys[i]; }
    }
    return best;
  }

  async function refreshTrend() {
    if (!trend || state.trendBed == null) return;
    const bed = state.trendBed;
    const [hResp, nResp, aResp] = await Promise.all([
      fetch("api/beds/" + bed + "/history"), fetch("api/beds/" + bed + "/news2"),
      fetch("api/alarms/history?bed=" + bed + "&limit=2000")]);
    if (!hResp.ok || !nResp.ok || !aResp.ok) return;
    const h = await hResp.json(), n = await nResp.json(), a = await aResp.json();
    const t = h.t.map((x) => x * 1000);
    for (const spec of TRENDS) {
      if (spec.key === "news2") continue;
      const data = { t };
      for (const [field] of spec.lines) data[field] = gaps(h[field]);
      trend.sources[spec.key].data = data;
      const extent = yExtent(spec, spec.lines.map(([field]) => data[field]));
      if (extent) [trend.yranges[spec.key].start, trend.yranges[spec.key].end] = extent;
    }
    // a set with a parameter not measured scored it 0: a gap, not a low score
    const totals = n.sets.map((x) => (x.complete === false || (x.missing && x.missing.length) ? NaN : x.total));
    trend.sources.news2.data = { t: n.sets.map((x) => x.at * 1000), total: totals };
    const newsExtent = yExtent(TRENDS[TRENDS.length - 1], [totals]);
    if (newsExtent) [trend.yranges.news2.start, trend.yranges.news2.end] = newsExtent;
    const marks = {};
    for (const spec of TRENDS) marks[spec.key] = { t: [], y: [], colour: [] };
    for (const r of a.history) {
      if (r.what !== "raised" || !r.condition) continue;
      const box = PARAM_BOX[r.parameter] || "hr";  // a rhythm alarm marks the HR chart
      const field = r.parameter && h[r.parameter] ? r.parameter : (box === "nibp" ? "nibp_sys" : box);
      const y = r.value != null && r.parameter ? r.value : nearest(h.t, h[field] || [], r.at);
      if (y == null || !marks[box]) continue;
      marks[box].t.push(r.at * 1000);
      marks[box].y.push(y);
      marks[box].colour.push(MARK_COLOUR[r.priority] || "#999");
    }
    for (const spec of TRENDS) trend.marks[spec.key].data = marks[spec.key];
    if (t.length > 1) for (const r of trend.ranges) { r.start = t[0]; r.end = t[t.length - 1]; }
    $("trend").dataset.marks = String(Object.values(marks).reduce((k, m) => k + m.t.length, 0));
    const latest = n.sets[n.sets.length - 1];
    const notMeasured = latest ? NEWS2_ORDER.filter((k) => (latest.missing || []).includes(k)).map((k) => NEWS2_NAMES[k]) : [];
    $("obs-latest").textContent = latest ? (notMeasured.length || latest.complete === false
      ? "NEWS2 incomplete (" + (notMeasured.join(", ") || "parameters") + " not measured)"
      : "NEWS2 " + latest.total + " " + latest.band) + " at " +
      new Date(latest.at * 1000).toLocaleTimeString([], { hour12: false }) + " (" + latest.trigger + ")" +
      (latest.assumed.length ? "; assumed " + latest.assumed.join(", ") : "") : "";
  }

  $("obs-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (state.trendBed == null) return;
    send({ type: "news2", bed: state.trendBed, supplemental_o2: $("obs-o2").checked,
      consciousness: $("obs-acvpu").value, user: who() });
    setTimeout(() => refreshTrend().catch((e) => console.warn("trend:", e)), 500);
  });

  // -- alarm history --------------------------------------------------------------------------

  async function refreshHistory() {
    if (!state.historyOpen) return;
    const resp = await fetch("api/alarms/history?limit=200");
    if (!resp.ok) return;
    const h = await resp.json();
    $("history-rows").replaceChildren(...h.history.map((r) => row([
      new Date(r.at * 1000).toLocaleTimeString([], { hour12: false }), String(r.bed),
      r.condition ? SYMBOL[r.priority] + " " + r.condition : "", r.what,
      r.value == null ? "" : fmt(r.value, r.what === "audio paused" ? 0 : 1), r.user || "",
    ])));
  }

  $("history-btn").addEventListener("click", () => {
    state.historyOpen = !state.historyOpen;
    $("history").hidden = !state.historyOpen;
    $("history-btn").textContent = state.historyOpen ? "Hide" : "Show";
    $("history-btn").setAttribute("aria-expanded", String(state.historyOpen));
    refreshHistory().catch((e) => console.warn("history:", e));
  });

  // -- sound and the instructor's view --------------------------------------------------------

  $("sound").addEventListener("click", () => {
    const btn = $("sound");
    if (sound.enabled) sound.disable();
    else if (!sound.enable()) { btn.textContent = "No sound in this browser"; return; }
    btn.setAttribute("aria-pressed", String(sound.enabled));
    btn.textContent = sound.enabled ? "Sound on" : "Sound off: enable";
    sound.update(soundTarget());
  });

  // the scenario a bed runs is the instructor's business, not the nurse's
  $("instructor").addEventListener("change", (ev) => {
    document.body.dataset.instructor = String(ev.target.checked);
  });
  document.body.dataset.instructor = "false";

  // -- the frame loop -------------------------------------------------------------------------

  function frame() {
    if (state.tilesDirty) { state.tilesDirty = false; drawTiles(); }
    if (state.alarmsDirty) { state.alarmsDirty = false; drawAlarms(); sound.update(soundTarget()); }
    if (state.statsDirty) { state.statsDirty = false; drawNetwork(); }
    for (const view of state.waveViews.values()) view.draw();
    requestAnimationFrame(frame);
  }

  // who is logged in: with sessions, the station records this operator on every ack and
  // silence, so the name is shown and cannot be typed over; one who may not act gets no buttons
  async function whoAmI() {
    const resp = await fetch("api/me");
    if (!resp.ok) return;
    const me = await resp.json();
    if (me.may_act === false) {
      // a viewer, or the hospital view (it only reads the broker): no button that would be
      // refused, and the header says so instead of "Acting as"
      document.body.dataset.mayAct = "false";
      $("view-only").hidden = false;
    }
    if (!me.sessions) return;
    const input = $("user");
    input.value = me.user + " (" + me.role + ")";
    input.readOnly = true;
    document.body.dataset.role = me.role;
  }

  setInterval(() => { refreshTrend().catch((e) => console.warn("trend:", e)); }, 5000);
  setInterval(() => { refreshHistory().catch((e) => console.warn("history:", e)); }, 3000);
  // once a second: the clock, ages and countdowns move even when no message comes
  function tickSecond() {
    $("clock").textContent = new Date().toLocaleTimeString([], { hour12: false });
    state.tilesDirty = state.alarmsDirty = true;
  }
  setInterval(tickSecond, 1000);
  tickSecond();
  setInterval(() => sound.update(soundTarget()), 250);
  whoAmI().catch((e) => console.warn("who am I:", e));
  connect();
  requestAnimationFrame(frame);
})();
