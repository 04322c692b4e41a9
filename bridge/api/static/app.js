// The installer page of ocpp-bridge: plain JS, no build step, no dependency. Every URL is relative,
// so the page works under a reverse proxy's path prefix. Text from the bridge only ever goes into
// textContent (never innerHTML).
"use strict";
(() => {
  const MAX_ROWS = 300; // log rows kept in the DOM: a phone stays fast however long the log runs
  const STATUS_EVERY_MS = 1000;
  const READINGS_EVERY_MS = 5000;
  const $ = (sel, root = document) => root.querySelector(sel);
  const enc = encodeURIComponent;
  const state = {
    csrf: null, loginRequired: false, cps: new Map(), cpIds: "", statusTimer: 0,
    es: null, logCp: null, lastSeq: 0, epoch: "", paused: false, held: [], pending: [], actions: new Set(),
    noReadings: false, probes: new Map(),
  };

  // ---- helpers ---------------------------------------------------------------------------------
  async function api(path, opts = {}) {
    const init = { credentials: "same-origin", method: opts.method || "GET", headers: {} };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      init.headers["Content-Type"] = "application/json";
    }
    if (init.method !== "GET" && state.csrf) init.headers["X-CSRF-Token"] = state.csrf;
    const r = await fetch(path, init);
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (r.status === 401 && path !== "api/v1/login") showLogin();
    return { status: r.status, ok: r.ok, data };
  }
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function setText(e, text) { if (e.textContent !== text) e.textContent = text; }
  function setClass(e, cls) { if (e.className !== cls) e.className = cls; }
  function pad(n, w = 2) { return String(n).padStart(w, "0"); }
  function clock(iso) {
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function duration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  function since(iso) { return iso ? `since ${clock(iso)} (${duration((Date.now() - Date.parse(iso)) / 1000)})` : ""; }
  function notice(text) { const n = $("#notice"); setText(n, text || ""); n.hidden = !text; }
  function num(v, digits) { return typeof v === "number" ? v.toFixed(digits) : "–"; }

  // ---- login -----------------------------------------------------------------------------------
  function showLogin() {
    clearTimeout(state.statusTimer);
    if (state.es) { state.es.close(); state.es = null; }
    $("#app").hidden = true;
    $("#logout").hidden = true;
    $("#login").hidden = false;
    $("#token").focus();
  }
  async function login(ev) {
    ev.preventDefault();
    const err = $("#login-error");
    err.hidden = true;
    const input = $("#token");
    const r = await api("api/v1/login", { method: "POST", body: { token: input.value } });
    if (r.ok) {
      input.value = "";
      state.csrf = r.data && r.data.csrf;
      showApp();
      return;
    }
    err.textContent = r.status === 401 ? "Wrong token: the bridge refused it." : `Login failed (HTTP ${r.status}).`;
    err.hidden = false;
    input.select();
  }
  async function logout() {
    await api("api/v1/logout", { method: "POST" });
    state.csrf = null;
    location.reload();
  }
  function showApp(first) {
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#logout").hidden = !state.loginRequired;
    if (state.logCp && !state.es) connectLog(); // closed by showLogin: the list may not change again
    pollStatus(first);
  }

  // ---- overview --------------------------------------------------------------------------------
  async function pollStatus(first) {
    clearTimeout(state.statusTimer);
    try {
      const r = await (first || api("api/v1/status"));
      if (r.status === 401) return; // the login form is shown
      if (!r.ok || !r.data) throw new Error(`HTTP ${r.status}`);
      notice("");
      renderStatus(r.data.charge_points || []);
    } catch (e) {
      notice(`The bridge does not answer (${e.message}); trying again.`);
    }
    state.statusTimer = setTimeout(pollStatus, STATUS_EVERY_MS);
  }

  function renderStatus(cps) {
    const box = $("#cps");
    if (state.cps.size === 0) box.textContent = "";
    if (cps.length === 0) setText(box, "No charge point is configured.");
    const seen = new Set();
    for (const cp of cps) {
      seen.add(cp.id);
      let view = state.cps.get(cp.id);
      if (!view) { view = cpView(cp.id); state.cps.set(cp.id, view); box.append(view.root); }
      updateCp(view, cp);
    }
    for (const [id, view] of state.cps) if (!seen.has(id)) { view.root.remove(); state.cps.delete(id); }
    const ids = cps.map((c) => c.id + ":" + c.connectors.map((k) => k.id).join(",")).join(" ");
    // The log's stream and the probe cards come after the overview's first frame is drawn.
    if (ids !== state.cpIds) { state.cpIds = ids; setTimeout(() => cpsChanged(cps), 0); }
  }

  function cpView(id) {
    const root = $("#t-cp").content.firstElementChild.cloneNode(true);
    root.dataset.cp = id;
    root.querySelector(".cp-id").textContent = id;
    const q = (c) => root.querySelector(c);
    return {
      root, conns: new Map(),
      link: q(".link"), linkSince: q(".link-since"), url: q(".url"), error: q(".error"),
      hb: q(".hb"), mv: q(".mv"), queued: q(".queued"), connBox: q(".connectors"),
    };
  }

  function oldestQueued(cp) {
    // `oldest_queued_at` (ISO): when the oldest queued message was made; absent from older bridges.
    const at = Date.parse(cp.oldest_queued_at);
    return isNaN(at) ? null : duration((Date.now() - at) / 1000);
  }

  function updateCp(v, cp) {
    let link, cls, when;
    if (!cp.connected) { link = "offline"; cls = "bad"; when = cp.last_error_at ? `since ${clock(cp.last_error_at)}` : ""; }
    else if (!cp.accepted) { link = `connected, boot ${cp.boot_state}`; cls = "warn"; when = since(cp.connected_since); }
    else { link = "connected · accepted"; cls = "ok"; when = since(cp.accepted_since || cp.connected_since); }
    setText(v.link, link);
    setClass(v.link, `link badge ${cls}`);
    setText(v.linkSince, when);
    setText(v.url, cp.csms_url || "–");
    setText(v.error, cp.last_error ? `${cp.last_error} (${clock(cp.last_error_at)})` : "none");
    setText(v.hb, cp.heartbeat_interval_s ? `every ${cp.heartbeat_interval_s} s` : "off");
    let mv = cp.meter_value_sample_interval_s ? `sampled every ${cp.meter_value_sample_interval_s} s` : "not sampled";
    if (cp.clock_aligned_data_interval_s) mv += `, clock-aligned every ${cp.clock_aligned_data_interval_s} s`;
    setText(v.mv, mv);
    const n = cp.queued_transaction_messages || 0;
    const age = n ? oldestQueued(cp) : null;
    setText(v.queued, `${n}${age ? `, the oldest waits for ${age}` : ""}`);
    const seen = new Set();
    for (const c of cp.connectors) {
      seen.add(c.id);
      let cv = v.conns.get(c.id);
      if (!cv) { cv = connView(cp.id, c.id); v.conns.set(c.id, cv); v.connBox.append(cv.root); }
      updateConn(cv, c);
    }
    for (const [id, cv] of v.conns) if (!seen.has(id)) { cv.root.remove(); v.conns.delete(id); }
  }

  function connView(cpId, n) {
    const root = $("#t-conn").content.firstElementChild.cloneNode(true);
    root.dataset.connector = n;
    const q = (c) => root.querySelector(c);
    q(".conn-name").textContent = `Connector ${n}`;
    const v = {
      root, cpId, n, status: q(".conn-status"), tx: q(".tx"), energy: q(".energy"), power: q(".power"),
      limit: q(".limit"), device: q(".device"), sim: q(".sim"), chart: q(".chart"), svg: q("svg"),
      range: q(".chart-range"), chartKey: "", chartTimer: 0, tx_id: null, points: [], live: null,
    };
    // The driver's notes (an OCPP charger's deviations) go under the device's health line.
    v.notes = document.createElement("dd");
    v.notes.className = "device-notes";
    v.notes.hidden = true;
    v.device.after(v.notes);
    v.notesKey = "";
    const tag = v.sim.querySelector("input");
    tag.id = `tag-${cpId}-${n}`;
    v.sim.addEventListener("submit", (ev) => ev.preventDefault()); // Enter in the tag: no page reload
    for (const b of v.sim.querySelectorAll("button")) {
      b.setAttribute("aria-label", `${b.textContent} (connector ${n})`);
      b.addEventListener("click", () => simAction(v, b, b.dataset.act, tag.value.trim()));
    }
    return v;
  }

  function updateNotes(v, notes) {
    const key = notes.join("\n");
    if (v.notesKey === key) return; // unchanged: leave the list alone
    v.notesKey = key;
    const list = document.createElement("ul");
    for (const note of notes) {
      const item = document.createElement("li");
      item.textContent = String(note); // a charger's words: text, never markup
      list.append(item);
    }
    v.notes.replaceChildren(list);
    v.notes.hidden = notes.length === 0;
  }

  const STATUS_CLASS = { Available: "ok", Charging: "ok", Faulted: "bad", Unavailable: "bad" };
  function updateConn(v, c) {
    let s = c.status;
    if (c.error_code && c.error_code !== "NoError") s += ` (${c.error_code})`;
    setText(v.status, s);
    setClass(v.status, `conn-status badge ${STATUS_CLASS[c.status] || ""}`);
    const tx = c.transaction_id !== null && c.transaction_id !== undefined
      ? `#${c.transaction_id}${c.id_tag ? `, tag ${c.id_tag}` : ""}`
      : c.id_tag ? `starting, tag ${c.id_tag}` : "none";
    setText(v.tx, tx);
    setText(v.energy, typeof c.energy_wh === "number" ? `${(c.energy_wh / 1000).toFixed(3)} kWh` : "–");
    setText(v.power, typeof c.power_w === "number" ? (c.power_w >= 1000 ? `${(c.power_w / 1000).toFixed(2)} kW` : `${num(c.power_w, 0)} W`) : "–");
    setText(v.limit, c.current_limit_a === null || c.current_limit_a === undefined ? "not set"
      : c.current_limit_a === 0 ? "0 A (paused by a limit)" : `${c.current_limit_a} A`);
    const d = c.device || {};
    let health = d.answers ? "answers" : d.started ? `does not answer (${d.failed_reads} failed reads)` : "not started";
    if (d.problem) health += `: ${d.problem}`;
    setText(v.device, `${d.description || "device"}, ${health}`);
    updateNotes(v, Array.isArray(d.notes) ? d.notes.slice(-5) : []); // the 5 newest at most
    v.sim.hidden = !/simulat/i.test(d.description || "");
    const running = c.transaction_id !== null && c.transaction_id !== undefined;
    if (running) {
      // The chart ends at the status's live values: it moves every second between stored readings.
      v.live = { at: new Date().toISOString(), power_w: c.power_w, energy_wh: c.energy_wh };
      if (v.tx_id !== c.transaction_id) { v.tx_id = c.transaction_id; v.points = []; loadReadings(v); }
      else if (v.points.length) drawChart(v);
    } else if (v.tx_id !== null) {
      v.tx_id = null; v.points = []; v.live = null; v.chartKey = ""; clearTimeout(v.chartTimer); v.chart.hidden = true;
    }
  }

  async function simAction(v, button, action, idTag) {
    const body = { action };
    if (action === "tap") {
      if (!idTag) { notice("Enter an ID tag to tap."); return; }
      body.id_tag = idTag;
    }
    button.disabled = true;
    try {
      const r = await api(`api/v1/charge_points/${enc(v.cpId)}/connectors/${v.n}/sim`, { method: "POST", body });
      notice(r.ok ? "" : `${action} refused: ${(r.data && r.data.error) || `HTTP ${r.status}`}`);
      if (r.ok) pollStatus(); // show its effect now rather than within the second
    } catch (e) {
      notice(`${action} failed: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // ---- chart: power and energy of the running session, SVG drawn by hand ------------------------
  async function loadReadings(v) {
    clearTimeout(v.chartTimer);
    if (state.noReadings || v.tx_id === null) return;
    try {
      const r = await api(`api/v1/charge_points/${enc(v.cpId)}/connectors/${v.n}/readings`);
      if (r.status === 404 && !(r.data && r.data.error)) { state.noReadings = true; return; }
      if (r.ok && r.data) { v.points = (r.data.points || []).filter((p) => !isNaN(Date.parse(p.at))); drawChart(v); }
    } catch (e) { /* the next round tries again */ }
    if (v.tx_id !== null) v.chartTimer = setTimeout(() => loadReadings(v), READINGS_EVERY_MS);
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, val);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function drawChart(v) {
    const pts = v.live ? [...v.points, v.live] : v.points;
    const last = pts[pts.length - 1];
    const key = last ? `${pts.length}:${v.points.length ? v.points[v.points.length - 1].at : ""}:${last.power_w}:${last.energy_wh}` : "";
    if (key === v.chartKey) return;
    v.chartKey = key;
    v.chart.hidden = pts.length < 2;
    if (pts.length < 2) return;
    const L = 4, R = 296, T = 12, B = 92;
    const t0 = Date.parse(pts[0].at), t1 = Date.parse(pts[pts.length - 1].at);
    const maxP = Math.max(1, ...pts.map((p) => p.power_w || 0));
    const es = pts.map((p) => p.energy_wh || 0);
    const e0 = Math.min(...es), e1 = Math.max(...es);
    const x = (p) => L + ((Date.parse(p.at) - t0) / Math.max(1, t1 - t0)) * (R - L);
    const yP = (p) => B - ((p.power_w || 0) / maxP) * (B - T);
    const yE = (p) => B - (((p.energy_wh || 0) - e0) / Math.max(1, e1 - e0)) * (B - T);
    const xy = (a, b) => `${a.toFixed(1)},${b.toFixed(1)}`;
    const line = (y) => pts.map((p) => xy(x(p), y(p))).join(" ");
    // Power holds from one reading to the next (a step), energy rises between them (a line).
    const steps = (y) => pts.map((p, i) => (i ? `${xy(x(p), y(pts[i - 1]))} ` : "") + xy(x(p), y(p))).join(" ");
    v.svg.replaceChildren(
      svgEl("line", { x1: L, y1: B, x2: R, y2: B, stroke: "currentColor", "stroke-opacity": ".3" }),
      svgEl("polyline", { class: "p", points: steps(yP) }),
      svgEl("polyline", { class: "e", points: line(yE) }),
      svgEl("text", { x: L, y: 9 }, `${(maxP / 1000).toFixed(1)} kW`),
      svgEl("text", { x: R, y: 9, "text-anchor": "end" }, `+${((e1 - e0) / 1000).toFixed(2)} kWh`),
    );
    setText(v.range, `${clock(pts[0].at)}–${clock(pts[pts.length - 1].at)}`);
  }

  // ---- the charge points' list feeds the log's and the probes' choices -------------------------
  function cpsChanged(cps) {
    const sel = $("#log-cp");
    const current = state.logCp;
    sel.replaceChildren(...cps.map((cp) => { const o = el("option", cp.id); o.value = cp.id; return o; }));
    if (cps.length && !cps.some((cp) => cp.id === current)) openLog(cps[0].id);
    else if (current) sel.value = current;
    renderProbes(cps);
  }

  // ---- live OCPP log ---------------------------------------------------------------------------
  const KEYS = {
    BootNotification: { call: ["chargePointVendor", "chargePointModel"], result: ["status", "interval"] },
    StatusNotification: { call: ["connectorId", "status", "errorCode"] },
    Authorize: { call: ["idTag"], result: ["idTagInfo"] },
    StartTransaction: { call: ["connectorId", "idTag", "meterStart"], result: ["transactionId", "idTagInfo"] },
    MeterValues: { call: ["connectorId", "transactionId", "meterValue"] },
    StopTransaction: { call: ["transactionId", "meterStop", "reason"], result: ["idTagInfo"] },
    RemoteStartTransaction: { call: ["connectorId", "idTag"], result: ["status"] },
    RemoteStopTransaction: { call: ["transactionId"], result: ["status"] },
    ChangeConfiguration: { call: ["key", "value"], result: ["status"] },
    Heartbeat: { result: ["currentTime"] },
  };
  function show(value) {
    if (value && typeof value === "object" && !Array.isArray(value) && "status" in value) return String(value.status);
    if (Array.isArray(value) && value.length && value[value.length - 1]) {
      const sv = value[value.length - 1].sampledValue;
      if (Array.isArray(sv) && sv.length) { // a device's odd meterValue falls through to its JSON
        const e = sv.find((s) => s && (!s.measurand || s.measurand === "Energy.Active.Import.Register")) || sv[0];
        if (e && typeof e === "object") return `${e.value} ${e.unit || "Wh"}`;
      }
    }
    const s = typeof value === "string" ? value : JSON.stringify(value);
    return s.length > 60 ? s.slice(0, 59) + "…" : s;
  }
  function fields(f) {
    const p = f.payload;
    if (!p || typeof p !== "object") return p === undefined ? "" : show(p);
    const keys = (KEYS[f.action] || {})[f.type === "CALL" ? "call" : "result"];
    const names = keys ? keys.filter((k) => k in p) : Object.keys(p);
    const s = names.map((k) => `${k}=${show(p[k])}`).join(" ");
    return s.length > 200 ? s.slice(0, 199) + "…" : s;
  }
  const TYPE_MARK = { CALL: "", CALLRESULT: " ✓", CALLERROR: " ✗" };
  function frameRow(f) {
    const tr = el("tr");
    tr.className = `${f.dir}${f.type === "CALLERROR" ? " err" : ""}`;
    tr.dataset.action = f.action || "";
    tr.dataset.seq = f.seq;
    const t = new Date(f.at);
    tr.append(
      el("td", isNaN(t) ? "" : `${clock(f.at)}.${pad(t.getMilliseconds(), 3)}`, "mono"),
      el("td", f.dir === "out" ? "→ CS" : "← CS"),
      el("td", f.type ? `${f.action || "?"}${TYPE_MARK[f.type] || ""}` : "(not JSON)"),
      el("td", fields(f)),
    );
    tr.cells[1].title = f.dir === "out" ? "sent to the central system" : "received from the central system";
    tr.cells[2].title = f.type || "a frame that is not JSON";
    const filter = $("#log-filter").value;
    tr.hidden = Boolean(filter) && tr.dataset.action !== filter;
    return tr;
  }
  function addRows(frames) {
    const box = $("#log .scroll");
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    const body = $("#log-table tbody");
    body.append(...frames.map(safeRow));
    while (body.rows.length > MAX_ROWS) body.deleteRow(0);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
  function logState(text) { setText($("#log-state"), text); }
  function onFrame(ev) {
    let f;
    try { f = JSON.parse(ev.data); } catch (e) { return; }
    // Event ids are `<epoch>:<seq>`: another epoch is a restarted bridge, whose seq starts at 1 again.
    const epoch = String(ev.lastEventId || "").split(":")[0];
    if (epoch !== state.epoch) { state.epoch = epoch; state.lastSeq = 0; }
    if (typeof f.seq === "number") {
      if (f.seq <= state.lastSeq) return; // a reconnect may replay what we have
      state.lastSeq = f.seq;
    }
    if (f.action && !state.actions.has(f.action)) {
      state.actions.add(f.action);
      const o = el("option", f.action);
      o.value = f.action;
      $("#log-filter").append(o);
    }
    if (state.paused) {
      state.held.push(f);
      if (state.held.length > MAX_ROWS) state.held.shift();
      logState(`Paused: ${state.held.length} new frame(s) waiting.`);
    } else {
      // Frames come in bursts (the ring's replay on connecting): one DOM update per animation frame.
      state.pending.push(f);
      // A hidden tab runs no animation frames: keep only what the table would show.
      if (state.pending.length > MAX_ROWS) state.pending.splice(0, state.pending.length - MAX_ROWS);
      if (state.pending.length === 1) requestAnimationFrame(flushRows);
    }
  }
  function flushRows() {
    const frames = state.pending.splice(0);
    addRows(frames.slice(-MAX_ROWS));
  }
  function safeRow(f) {
    try { return frameRow(f); } catch (e) { // one odd frame must not blank the batch
      const tr = el("tr");
      tr.append(el("td", `(frame ${f.seq}: the page cannot show it; see the download)`));
      return tr;
    }
  }
  function openLog(cp) {
    if (state.es) state.es.close();
    state.logCp = cp;
    state.lastSeq = 0;
    state.held = [];
    state.pending = [];
    state.actions.clear();
    $("#log-cp").value = cp;
    $("#log-filter").replaceChildren(Object.assign(el("option", "all"), { value: "" }));
    $("#log-table tbody").textContent = "";
    const dl = $("#log-download");
    dl.href = `api/v1/charge_points/${enc(cp)}/frames?limit=500`;
    dl.setAttribute("download", `frames-${cp}.jsonl`);
    connectLog();
  }
  function connectLog() {
    const cp = state.logCp;
    const since = state.lastSeq ? `?since=${state.lastSeq}` : "";
    const es = new EventSource(`api/v1/charge_points/${enc(cp)}/frames/stream${since}`);
    state.es = es;
    logState("Connecting…");
    es.addEventListener("frame", onFrame);
    es.onopen = () => logState(state.paused ? "Paused." : "Live.");
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (not an event stream: an older bridge, or a lost login): try again in a while.
        logState("The live log is not available; trying again in 5 s.");
        setTimeout(() => { if (state.es === es && state.logCp === cp) connectLog(); }, 5000);
      } else {
        logState("Connection lost; reconnecting…");
      }
    };
  }
  function togglePause() {
    state.paused = !state.paused;
    const b = $("#log-pause");
    b.textContent = state.paused ? "Resume" : "Pause";
    b.setAttribute("aria-pressed", String(state.paused));
    if (!state.paused) { addRows(state.held.splice(0)); logState("Live."); } else logState("Paused.");
  }
  function applyFilter() {
    const filter = $("#log-filter").value;
    for (const tr of $("#log-table tbody").rows) tr.hidden = Boolean(filter) && tr.dataset.action !== filter;
  }

  // ---- devices: probe --------------------------------------------------------------------------
  function renderProbes(cps) {
    const box = $("#probes");
    box.textContent = "";
    for (const cp of cps) for (const c of cp.connectors) {
      const card = el("div", null, "probe");
      card.dataset.cp = cp.id;
      card.dataset.connector = c.id;
      const b = el("button", "Probe");
      b.type = "button";
      b.setAttribute("aria-label", `Probe ${cp.id} connector ${c.id}`);
      const out = el("div");
      out.setAttribute("aria-live", "polite");
      card.append(el("h3", `${cp.id} · connector ${c.id}`), b, out);
      b.addEventListener("click", () => probe(cp.id, c.id, b, out));
      box.append(card);
    }
  }
  async function probe(cpId, n, button, out) {
    button.disabled = true;
    out.replaceChildren(el("p", "Probing…", "muted"));
    try {
      const r = await api(`api/v1/charge_points/${enc(cpId)}/connectors/${n}/probe`, { method: "POST" });
      const d = r.data || {};
      if (!r.ok && !("ok" in d)) {
        out.replaceChildren(el("p", r.status === 404 && !d.error ? "This bridge does not offer probe." : `Probe refused: ${d.error || `HTTP ${r.status}`}`, "bad"));
        return;
      }
      const verdict = el("p");
      verdict.append(el("span", d.ok ? "OK" : "FAILED", `badge ${d.ok ? "ok" : "bad"} verdict`));
      if (d.description) verdict.append(" ", el("span", d.description));
      if (d.error) verdict.append(" ", el("span", d.error, "bad probe-error"));
      out.replaceChildren(verdict, el("pre", (d.lines || []).join("\n")));
    } catch (e) {
      out.replaceChildren(el("p", `Probe failed: ${e.message}`, "bad"));
    } finally {
      button.disabled = false;
    }
  }

  // ---- configuration ---------------------------------------------------------------------------
  async function loadConfig() {
    const out = $("#config-out");
    out.replaceChildren(el("p", "Loading…", "muted"));
    const r = await api("api/v1/config");
    if (!r.ok || !r.data) {
      out.replaceChildren(el("p", r.status === 404 ? "This bridge does not offer its configuration." : `Refused: ${(r.data && r.data.error) || `HTTP ${r.status}`}`, "bad"));
      return;
    }
    const d = r.data, check = d.check || {};
    const head = el("p");
    head.append(el("span", check.ok ? "check: OK" : "check: problems", `badge ${check.ok ? "ok" : "bad"}`), " ", el("code", d.path || ""));
    const parts = [head];
    const list = (items, title) => {
      if (!items || !items.length) return;
      const ul = el("ul", null, "problems");
      for (const p of items) {
        const text = typeof p === "string" ? p : `${p.line ? `line ${p.line}: ` : ""}${p.path ? `${p.path}: ` : ""}${p.message || ""}`;
        ul.append(el("li", text));
      }
      parts.push(el("h3", title), ul);
    };
    list(check.problems, "Problems");
    list(check.warnings, "Warnings");
    parts.push(d.text === null || d.text === undefined ? el("p", "The configuration was not read from a file.", "muted") : el("pre", d.text));
    out.replaceChildren(...parts);
  }

  // ---- start -----------------------------------------------------------------------------------
  async function start() {
    $("#login-form").addEventListener("submit", login);
    $("#logout").addEventListener("click", logout);
    $("#log-cp").addEventListener("change", (e) => openLog(e.target.value));
    $("#log-filter").addEventListener("change", applyFilter);
    $("#log-pause").addEventListener("click", togglePause);
    $("#config-load").addEventListener("click", loadConfig);
    // The status is asked for beside the session, not after it: one round trip less to the first view.
    const first = fetch("api/v1/status", { credentials: "same-origin" }).then(async (r) => {
      const data = r.ok ? await r.json() : null;
      return { status: r.status, ok: r.ok, data };
    });
    first.catch(() => {}); // a failure is reported where it is used
    let s = null;
    try {
      const r = await api("api/v1/session");
      if (r.ok) s = r.data;
    } catch (e) { /* handled below */ }
    // A bridge without sessions (older than this page) is open to loopback: go straight on.
    s = s || { authenticated: true, login_required: false, csrf: null };
    state.csrf = s.csrf || null;
    state.loginRequired = Boolean(s.login_required);
    if (s.login_required && !s.authenticated) showLogin();
    else showApp(first);
  }
  start();
})();
