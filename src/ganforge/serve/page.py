"""The page `ganforge serve` shows: one HTML document, its script and its style sheet, served from these
strings (no external script, font or style: the page works offline and its CSP allows only 'self').

The script polls /api/live every second while a run is open (curves drawn as inline SVG from JSON),
and asks /api/sample whenever an explorer control moves (one request in flight; moves made meanwhile
are coalesced into the next one).
"""

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ganforge serve</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header>
  <h1>ganforge</h1>
  <label>run <select id="run"><option value="">loading runs...</option></select></label>
  <span id="run-status" class="muted"></span>
</header>
<p id="error" class="error" role="alert" hidden></p>
<main>
<section id="live">
  <h2>Training</h2>
  <p id="live-status" class="muted">Pick a run.</p>
  <div id="charts"></div>
  <figure id="latest-figure" hidden><img id="latest" alt="latest sample grid"><figcaption id="latest-caption"></figcaption></figure>
  <h3>Alarms</h3>
  <ul id="alarms"><li class="muted">none</li></ul>
</section>
<section id="explore">
  <h2>Latent explorer</h2>
  <p id="explore-status" class="muted"></p>
  <div class="controls">
    <label>seed <input type="range" id="seed" min="0" max="999" step="1" value="0">
      <input type="number" id="seed-box" min="0" max="4294967295" value="0"></label>
    <label>truncation &psi; <input type="range" id="truncation" min="0" max="1" step="0.05" value="1">
      <output id="truncation-value">1.00</output></label>
    <label>samples <input type="number" id="n" min="1" max="64" value="4"></label>
    <label id="class-label" hidden><span id="class-name">class</span> <select id="class"></select></label>
    <span id="codes" hidden></span>
  </div>
  <div id="samples" class="tiles"></div>
  <h3>Interpolation between two seeds</h3>
  <div class="controls">
    <label>from seed <input type="number" id="seed-a" min="0" max="4294967295" value="0"></label>
    <label>to seed <input type="number" id="seed-b" min="0" max="4294967295" value="1"></label>
    <label>frames <input type="number" id="steps" min="2" max="32" value="8"></label>
    <label>mode <select id="mode"><option>slerp</option><option>lerp</option></select></label>
    <button id="walk" type="button">walk</button>
  </div>
  <div id="walk-frames" class="tiles"></div>
</section>
</main>
<script src="/app.js"></script>
</body>
</html>
"""

PAGE_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1em;align-items:center;padding:.5em 1em;background:#24292f;color:#fff}
header h1{font-size:18px;margin:0}
main{display:grid;grid-template-columns:minmax(380px,1fr) minmax(380px,1fr);gap:1em;padding:1em}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em 1em}
h2{font-size:16px;margin:.3em 0}h3{font-size:14px;margin:.8em 0 .3em}
.muted{color:#777}.error{background:#fde7e9;color:#a40000;margin:0;padding:.5em 1em}
.controls{display:flex;flex-wrap:wrap;gap:.6em 1.2em;align-items:center;margin:.5em 0}
.controls input[type=number]{width:6em}
.tiles{display:flex;flex-wrap:wrap;gap:8px}
#charts{display:flex;flex-wrap:wrap;gap:4px}
.tile{margin:0;width:114px;text-align:center;font-size:11px;color:#555}
.tile img{width:112px;height:112px;image-rendering:pixelated;display:block;border:1px solid #ccc;background:#eee}
.tile img.nearest{width:56px;height:56px;margin:4px auto 0}
#latest{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}
svg.chart{background:#fff;border:1px solid #eee;margin:2px}
svg.chart text{font:10px sans-serif;fill:#555}
#alarms{padding-left:1.2em;max-height:12em;overflow:auto}.alarm{color:#a40000}
"""

PAGE_JS = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const state = {run: "", info: null, names: "", liveTimer: 0, weightsStep: null, busy: false, dirty: false, classParam: "class", nearestTimer: 0};

function showError(msg) { $("error").textContent = msg || ""; $("error").hidden = !msg; }

async function api(path, params) {
  const r = await fetch(path + "?" + new URLSearchParams(params || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok || body === null) throw new Error((body && body.error) || (r.status + " " + r.statusText));
  return body;
}

async function loadRuns() {
  try {
    const d = await api("/api/runs");
    const key = JSON.stringify(d.runs.map((r) => [r.name, r.has_weights]));
    if (key !== state.names) {
      const sel = $("run");
      const opts = d.runs.map((r) => new Option(r.name + (r.has_weights ? "" : " (no weights yet)"), r.name));
      sel.replaceChildren(new Option(d.runs.length ? "pick a run" : "no runs in " + d.root, ""), ...opts);
      sel.value = d.runs.some((r) => r.name === state.run) ? state.run : "";
      state.names = key;
    }
  } catch (e) { showError("listing runs: " + e.message); }
}

async function openRun(name) {
  state.run = name; state.info = null; state.weightsStep = null;
  clearTimeout(state.liveTimer);
  showError("");
  for (const id of ["samples", "walk-frames", "charts"]) $(id).replaceChildren();
  $("latest-figure").hidden = true;
  $("explore-status").textContent = "";
  $("run-status").textContent = "";
  if (!name) { $("live-status").textContent = "Pick a run."; return; }
  history.replaceState(null, "", "#run=" + encodeURIComponent(name));
  if ($("run").value !== name) { loadRuns().then(() => { $("run").value = name; }); }
  await refreshInfo();
  pollLive();
}

async function refreshInfo() {
  const name = state.run;
  try {
    const info = await api("/api/run", {run: name});
    if (name !== state.run) return;
    const first = !state.info || !state.info.explorer;
    state.info = info; state.weightsStep = info.weights_step;
    $("run-status").textContent = `${info.dataset}, ${info.arch}, ${info.objective}, ${info.steps} steps`;
    if (!info.explorer) {
      $("explore-status").textContent = info.explorer_error ||
        "no weights yet: the explorer opens when the run writes generator.safetensors (its first checkpoint)";
      return;
    }
    if (first) setupControls(info.explorer);
    explore();
  } catch (e) { if (name === state.run) showError(e.message); }
}

function setupControls(ex) {
  const k = ex.classes || ex.info_cat || 0;
  state.classParam = ex.classes ? "class" : "cat";
  $("class-label").hidden = !k;
  $("class-name").textContent = ex.classes ? "class" : "category";
  const opts = [new Option(ex.classes ? "seed % " + k : "random", "")];
  for (let i = 0; i < k; i++) {
    const name = ex.class_names && ex.class_names[i];
    opts.push(new Option(name ? `${i} (${name})` : String(i), String(i)));
  }
  $("class").replaceChildren(...opts);
  const codes = $("codes");
  codes.replaceChildren();
  codes.hidden = !ex.info_cont;
  if (!ex.info_cont) return;
  const on = Object.assign(document.createElement("input"), {type: "checkbox", id: "codes-on"});
  on.addEventListener("change", explore);
  const onLabel = document.createElement("label");
  onLabel.append(on, " set codes");
  codes.append(onLabel);
  for (let i = 0; i < ex.info_cont; i++) {
    const label = document.createElement("label");
    label.textContent = ` code ${i + 1} `;
    const input = Object.assign(document.createElement("input"), {type: "range", min: "-0.95", max: "0.95", step: "0.05", value: "0"});
    input.className = "code";
    input.addEventListener("input", () => { on.checked = true; explore(); });
    label.append(input);
    codes.append(label);
  }
}

function latentParams() {
  const p = {run: state.run, truncation: $("truncation").value};
  if ($("class").value !== "") p[state.classParam] = $("class").value;
  const on = $("codes-on");
  if (on && on.checked) p.codes = [...document.querySelectorAll("#codes input.code")].map((c) => c.value).join(",");
  return p;
}

async function explore() {
  if (!state.info || !state.info.explorer) return;
  if (state.busy) { state.dirty = true; return; }
  state.busy = true; state.dirty = false;
  const name = state.run, t0 = performance.now();
  try {
    const d = await api("/api/sample", {...latentParams(), seed: $("seed-box").value, n: $("n").value});
    if (name === state.run && !state.dirty) {
      renderTiles($("samples"), d);
      const ms = Math.round(performance.now() - t0);
      $("explore-status").textContent = [`${d.images.length} sample(s) in ${ms} ms`, ...d.notes].join("; ");
      showError("");
      if (d.nearest_pending) { clearTimeout(state.nearestTimer); state.nearestTimer = setTimeout(explore, 1500); }
    }
  } catch (e) { if (name === state.run) showError(e.message); }
  finally {
    state.busy = false;
    if (state.dirty) explore();
  }
}

async function walk() {
  const p = {...latentParams(), seed_a: $("seed-a").value, seed_b: $("seed-b").value, steps: $("steps").value, mode: $("mode").value};
  try {
    const d = await api("/api/interpolate", p);
    renderTiles($("walk-frames"), d);
    showError("");
    $("explore-status").textContent = [`${d.images.length} frame(s)`, ...d.notes].join("; ");
  } catch (e) { showError(e.message); }
}

function renderTiles(box, d) {
  const tiles = d.images.map((src, i) => {
    const fig = document.createElement("figure");
    fig.className = "tile";
    const img = Object.assign(document.createElement("img"), {src: src, className: "sample", alt: `sample ${i}`});
    fig.append(img);
    const nn = d.nearest && d.nearest[i];
    if (nn) {
      const near = Object.assign(document.createElement("img"), {src: nn.image, className: "nearest", alt: "nearest training image"});
      const cap = document.createElement("figcaption");
      cap.textContent = `nearest: training #${nn.index}, d=${nn.distance.toFixed(2)}`;
      fig.append(near, cap);
    }
    return fig;
  });
  box.replaceChildren(...tiles);
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v) { return Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : v.toFixed(2); }

function drawChart(title, lines) {
  const W = 270, H = 150, L = 44, R = 8, T = 16, B = 30;
  const pts = Object.values(lines).flat().filter((p) => p[1] !== null);
  const longest = Math.max(0, ...Object.values(lines).map((l) => l.length));
  const svg = svgEl("svg", {viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "chart",
                            id: "chart-" + title.replace(/[^a-z]+/gi, "-"), "data-chart": title, "data-points": longest});
  svg.append(svgEl("text", {x: L, y: 11}, title));
  if (!pts.length) return svg;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), sy = (y) => T + (y1 - y) / (y1 - y0) * (H - T - B);
  svg.append(svgEl("rect", {x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#ccc"}));
  svg.append(svgEl("text", {x: 2, y: T + 8}, fmt(y1)), svgEl("text", {x: 2, y: H - B}, fmt(y0)));
  svg.append(svgEl("text", {x: L, y: H - B + 11}, String(x0)), svgEl("text", {x: W - R - 40, y: H - B + 11}, String(x1)));
  Object.entries(lines).forEach(([key, line], i) => {
    let d = "", pen = "M";
    for (const [x, y] of line) {
      if (y === null) { pen = "M"; continue; }
      d += `${pen}${sx(x).toFixed(1)},${sy(y).toFixed(1)} `; pen = "L";
    }
    svg.append(svgEl("path", {d: d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.3, "data-key": key}));
    svg.append(svgEl("text", {x: L + i * 100, y: H - 3, fill: COLORS[i % COLORS.length]}, key));
  });
  return svg;
}

function renderAlarms(d) {
  const items = d.alarms.map((a) => {
    const li = document.createElement("li");
    li.className = "alarm";
    li.textContent = `step ${a.step}: ${a.kind}: ${a.message}`;
    return li;
  });
  for (const e of d.events) {
    const li = document.createElement("li");
    li.textContent = `step ${e.step}: watchdog ${e.event}`;
    items.push(li);
  }
  if (!items.length) items.push(Object.assign(document.createElement("li"), {className: "muted", textContent: "none"}));
  $("alarms").replaceChildren(...items);
}

async function pollLive() {
  clearTimeout(state.liveTimer);
  const name = state.run;
  if (!name) return;
  let delay = document.hidden ? 5000 : 1000;
  try {
    const d = await api("/api/live", {run: name});
    if (name !== state.run) return;
    $("live-status").textContent = `step ${d.step}, ${d.records} stats records, ${d.alarm_count} alarm(s)`;
    $("charts").replaceChildren(...Object.entries(d.charts).map(([t, l]) => drawChart(t, l)));
    if (d.sample) {
      if ($("latest").getAttribute("src") !== d.sample.url) $("latest").src = d.sample.url;
      $("latest-caption").textContent = `latest sample grid (step ${d.sample.step})`;
      $("latest-figure").hidden = false;
    }
    renderAlarms(d);
    if (d.has_weights && (!state.info || !state.info.explorer || d.weights_step !== state.weightsStep)) refreshInfo();
  } catch (e) {
    if (name !== state.run) return;
    $("live-status").textContent = e.message;
    delay = 3000;
  }
  state.liveTimer = setTimeout(pollLive, delay);
}

function init() {
  $("run").addEventListener("change", () => openRun($("run").value));
  $("seed").addEventListener("input", () => { $("seed-box").value = $("seed").value; explore(); });
  $("seed-box").addEventListener("change", () => { $("seed").value = $("seed-box").value; explore(); });
  $("truncation").addEventListener("input", () => {
    $("truncation-value").textContent = Number($("truncation").value).toFixed(2); explore();
  });
  for (const id of ["n", "class"]) $(id).addEventListener("change", explore);
  $("walk").addEventListener("click", walk);
  window.addEventListener("hashchange", () => { const name = hashRun(); if (name !== state.run) openRun(name); });
  state.run = hashRun();
  loadRuns().then(() => { if (state.run) { $("run").value = state.run; openRun(state.run); } });
  setInterval(loadRuns, 5000);
}

function hashRun() {
  const m = /^#run=(.*)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : "";
}

init();
"""
