// Live time-series chart: the browser half of nbws.chart (an anywidget front-end module).
// The model-level store keeps every series' points; each view draws them on a canvas.

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]; // Tableau 10
const SECOND = 1000, MINUTE = 60 * SECOND, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500,
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY];
const MARGIN = { top: 10, right: 14, bottom: 22 };
const TICK_FONT_PX = 11;
const READOUT_LINE_PX = 16;

// ---------- data ----------

/** One series: x and y in growable arrays; slots before `start` are dropped points. */
class Series {
  constructor(id, label, capacity = 16) {
    this.id = id;
    this.label = label;
    this.x = new Float64Array(capacity);
    this.y = new Float64Array(capacity);
    this.start = 0;
    this.end = 0;
  }

  get length() { return this.end - this.start; }

  append(xs, ys, from, count) {
    if (count <= 0) return;
    this.reserve(count);
    this.x.set(xs.subarray(from, from + count), this.end);
    this.y.set(ys.subarray(from, from + count), this.end);
    this.end += count;
  }

  reserve(count) {
    if (this.end + count <= this.x.length) return;
    const needed = this.length + count;
    // Keep at least half the room free after a move, so moves stay amortised O(1) per point.
    this.moveTo(needed * 2 <= this.x.length ? this.x.length : capacityFor(needed));
  }

  dropBefore(since) {
    this.start = this.lowerBound(since);
    if (this.start > this.x.length / 2) this.moveTo(capacityFor(this.length));
  }

  /** Moves the live points to the front, into new arrays when the capacity changes. */
  moveTo(capacity) {
    const { start, end } = this;
    if (capacity === this.x.length) {
      this.x.copyWithin(0, start, end);
      this.y.copyWithin(0, start, end);
    } else {
      const x = new Float64Array(capacity), y = new Float64Array(capacity);
      x.set(this.x.subarray(start, end));
      y.set(this.y.subarray(start, end));
      this.x = x;
      this.y = y;
    }
    this.start = 0;
    this.end = end - start;
  }

  /** The first index with x >= v (or x > v when `after`), as an index into this.x. */
  lowerBound(v, after = false) {
    let lo = this.start, hi = this.end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.x[mid] < v || (after && this.x[mid] === v)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  nearest(t) {
    const i = this.lowerBound(t);
    if (i >= this.end) return this.end - 1;
    if (i === this.start) return i;
    return t - this.x[i - 1] <= this.x[i] - t ? i - 1 : i;
  }
}

function capacityFor(n) {
  let cap = 16;
  while (cap < n * 2) cap *= 2;
  return cap;
}

/** A copy of a buffer's bytes as float64s (the view may not be 8-byte aligned). */
function toFloat64(b) {
  if (!b) return new Float64Array(0);
  const bytes = new Uint8Array(b.buffer ?? b, b.byteOffset ?? 0, b.byteLength);
  return new Float64Array(bytes.slice(0, bytes.length - (bytes.length % 8)).buffer);
}

/** Applies a "window" (replace all) or "points" (append, then drop before since) message. */
function applyMessage(store, content, buffers) {
  const type = content?.type;
  if (type !== "window" && type !== "points") return false;
  const xs = toFloat64(buffers?.[0]), ys = toFloat64(buffers?.[1]);
  const available = Math.min(xs.length, ys.length);
  if (type === "window") store.series = new Map();
  let offset = 0;
  for (const entry of Array.isArray(content.series) ? content.series : []) {
    if (!Array.isArray(entry)) continue;
    const [id, label, rawCount, since] = entry;
    const count = Math.max(0, Math.min(Math.trunc(Number(rawCount)) || 0, available - offset));
    let series = store.series.get(id);
    if (!series) {
      series = new Series(id, String(label ?? id), capacityFor(count));
      store.series.set(id, series);
    } else if (label != null) {
      series.label = String(label);
    }
    series.append(xs, ys, offset, count);
    offset += count;
    if (type === "points" && Number.isFinite(since)) series.dropBefore(since);
  }
  return true;
}

function sortedSeries(store) {
  return [...store.series.values()].sort((a, b) => a.id - b.id);
}

function colorOf(id) {
  const n = PALETTE.length;
  return PALETTE[((Math.trunc(Number(id)) % n) + n) % n] ?? PALETTE[0];
}

// ---------- scales and ticks ----------

function xRangeOf(all, windowMs) {
  let lo = Infinity, hi = -Infinity;
  for (const s of all) {
    if (!s.length) continue;
    lo = Math.min(lo, s.x[s.start]);
    hi = Math.max(hi, s.x[s.end - 1]);
  }
  if (!(hi >= lo)) return null;
  if (windowMs > 0) lo = hi - windowMs;
  return hi > lo ? [lo, hi] : [lo - SECOND, hi + SECOND];
}

function yRangeOf(shown, x0, x1) {
  let lo = Infinity, hi = -Infinity;
  for (const s of shown) {
    const y = s.y, end = s.lowerBound(x1, true);
    for (let i = s.lowerBound(x0); i < end; i++) {
      const v = y[i];
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo > hi) return [0, 1];
  const pad = lo === hi ? (lo === 0 ? 1 : Math.abs(lo) * 0.05) : (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

function yTicks(y0, y1, plotH) {
  const step = niceStep((y1 - y0) / Math.max(2, Math.floor(plotH / 45)));
  if (!(step > 0) || !Number.isFinite(step)) return [];
  const ticks = [];
  for (let k = Math.ceil(y0 / step); k * step <= y1 && ticks.length < 50; k++) {
    ticks.push({ value: k * step, label: formatTick(k * step, step) });
  }
  return ticks;
}

function formatTick(v, step) {
  if (Math.abs(v) < step * 1e-6) return "0";
  const mag = Math.max(Math.abs(v), step);
  if (mag >= 1e7 || mag < 1e-4) {
    const digits = Math.min(6, Math.max(0, Math.floor(Math.log10(mag)) - Math.floor(Math.log10(step))));
    return v.toExponential(digits).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  return v.toFixed(Math.min(10, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))));
}

function formatValue(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e9 || a < 1e-4)) return v.toExponential(4).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(6)));
}

/** The smallest nice time step whose ticks are at least `minGap` px apart. */
function timeStep(span, plotW, minGap) {
  const msPerPx = span / plotW;
  const step = TIME_STEPS.find((s) => s / msPerPx >= minGap);
  return step ?? DAY * niceStep((minGap * msPerPx) / DAY);
}

/** Tick times at multiples of `step` in local time (so 10:00:00 and not 10:00:03 UTC-wise). */
function timeTicks(x0, x1, step) {
  const offset = -new Date(x0).getTimezoneOffset() * MINUTE;
  const ticks = [];
  for (let t = Math.ceil((x0 + offset) / step) * step - offset; t <= x1 && ticks.length < 200; t += step) {
    ticks.push(t);
  }
  return ticks;
}

function formatTime(t, step) {
  const d = new Date(t), p = (n, w = 2) => String(n).padStart(w, "0");
  if (step >= DAY) return `${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (step >= MINUTE) return hm;
  const hms = `${hm}:${p(d.getSeconds())}`;
  return step < SECOND ? `${hms}.${p(d.getMilliseconds(), 3)}` : hms;
}

// ---------- drawing ----------

function readTheme(el) {
  const cs = getComputedStyle(el);
  const v = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
  return {
    bg: v("--jp-layout-color0", "#ffffff"),
    text: v("--jp-ui-font-color1", "rgba(0, 0, 0, 0.87)"),
    muted: v("--jp-ui-font-color2", "rgba(0, 0, 0, 0.54)"),
    grid: v("--jp-border-color2", "#e0e0e0"),
    font: v("--jp-ui-font-family", "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"),
  };
}

/** Sizes the backing store for the device pixel ratio; returns a context in CSS pixels. */
function fitCanvas(canvas, width, height, dpr) {
  const w = Math.round(width * dpr), h = Math.round(height * dpr);
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** Axes, grid and lines; returns the geometry the hover readout maps the mouse with. */
function drawPlot(ctx, theme, width, height, [x0, x1], shown) {
  ctx.font = `${TICK_FONT_PX}px ${theme.font}`;
  const top = MARGIN.top, h = height - MARGIN.top - MARGIN.bottom;
  const [y0, y1] = yRangeOf(shown, x0, x1);
  const yt = yTicks(y0, y1, h);
  const labelW = Math.max(0, ...yt.map((t) => ctx.measureText(t.label).width));
  const left = Math.ceil(labelW) + 12, w = width - left - MARGIN.right;
  if (w < 20 || h < 20) return null;
  const kx = w / (x1 - x0), ky = h / (y1 - y0);
  const g = { x0, x1, y0, y1, left, top, w, h, kx, ky,
    sx: (x) => left + (x - x0) * kx, sy: (y) => top + (y1 - y) * ky };
  const minGap = Math.max(80, ctx.measureText("00:00:00.000").width + 16);
  g.xStep = timeStep(x1 - x0, w, minGap);
  drawGrid(ctx, theme, g, yt, timeTicks(x0, x1, g.xStep));
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top - 2, w, h + 4);
  ctx.clip();
  ctx.lineWidth = 1.5;
  ctx.lineJoin = "round";
  for (const s of shown) drawSeries(ctx, s, g);
  ctx.restore();
  return g;
}

function drawGrid(ctx, theme, g, yt, xt) {
  const { left, top, w, h } = g, bottom = top + h, width = left + w + MARGIN.right;
  ctx.lineWidth = 1;
  ctx.strokeStyle = theme.grid;
  ctx.globalAlpha = 0.6;
  ctx.beginPath();
  for (const t of yt) { const y = Math.round(g.sy(t.value)) + 0.5; ctx.moveTo(left, y); ctx.lineTo(left + w, y); }
  for (const t of xt) { const x = Math.round(g.sx(t)) + 0.5; ctx.moveTo(x, top); ctx.lineTo(x, bottom); }
  ctx.stroke();
  ctx.globalAlpha = 1;
  ctx.beginPath();
  ctx.moveTo(left - 0.5, top);
  ctx.lineTo(left - 0.5, bottom + 0.5);
  ctx.lineTo(left + w, bottom + 0.5);
  ctx.stroke();
  ctx.fillStyle = theme.muted;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of yt) ctx.fillText(t.label, left - 6, g.sy(t.value));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of xt) {
    const label = formatTime(t, g.xStep), x = g.sx(t), half = ctx.measureText(label).width / 2;
    if (x - half >= 0 && x + half <= width) ctx.fillText(label, x, bottom + 5);
  }
}

function drawSeries(ctx, s, g) {
  // One point either side of the range, so lines run to the edges.
  const a = Math.max(s.start, s.lowerBound(g.x0) - 1), b = Math.min(s.end, s.lowerBound(g.x1, true) + 1);
  if (b <= a) return;
  ctx.strokeStyle = colorOf(s.id);
  ctx.beginPath();
  if (b - a > 2 * g.w) traceColumns(ctx, s, a, b, g);
  else tracePolyline(ctx, s, a, b, g);
  ctx.stroke();
}

/** Straight segments; NaN breaks the line, and a point alone is drawn as a dot. */
function tracePolyline(ctx, s, a, b, g) {
  let run = 0, px = 0, py = 0;
  const endRun = () => { if (run === 1) { ctx.moveTo(px + 1.5, py); ctx.arc(px, py, 1.5, 0, 2 * Math.PI); } run = 0; };
  for (let i = a; i < b; i++) {
    const v = s.y[i];
    if (!Number.isFinite(v)) { endRun(); continue; }
    px = g.sx(s.x[i]);
    py = g.sy(v);
    if (run === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
    run++;
  }
  endRun();
}

/** Dense data: per pixel column, first -> min -> max -> last, so spikes stay visible. */
function traceColumns(ctx, s, a, b, g) {
  const { x, y } = s, x0 = g.x0, kx = g.kx;
  let col = NaN, first = 0, last = 0, min = 0, max = 0, started = false;
  const flush = () => {
    const cx = g.left + col + 0.5;
    if (started) ctx.lineTo(cx, g.sy(first)); else ctx.moveTo(cx, g.sy(first));
    started = true;
    ctx.lineTo(cx, g.sy(min));
    ctx.lineTo(cx, g.sy(max));
    ctx.lineTo(cx, g.sy(last));
  };
  for (let i = a; i < b; i++) {
    const v = y[i];
    if (!Number.isFinite(v)) continue;
    const c = Math.floor((x[i] - x0) * kx);
    if (c !== col) {
      if (!Number.isNaN(col)) flush();
      col = c;
      first = min = max = last = v;
    } else {
      if (v < min) min = v;
      if (v > max) max = v;
      last = v;
    }
  }
  if (!Number.isNaN(col)) flush();
}

function drawCenterText(ctx, theme, width, height, text) {
  ctx.font = `13px ${theme.font}`;
  ctx.fillStyle = theme.muted;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, width / 2, height / 2);
}

/** The crosshair and the box of values nearest the mouse, on the overlay canvas. */
function drawReadout(ctx, g, theme, mouse, shown) {
  if (!g || !mouse || mouse.x < g.left || mouse.x > g.left + g.w || mouse.y < g.top || mouse.y > g.top + g.h) return;
  const t = g.x0 + (mouse.x - g.left) / g.kx;
  ctx.strokeStyle = theme.text;
  ctx.globalAlpha = 0.45;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(Math.round(mouse.x) + 0.5, g.top);
  ctx.lineTo(Math.round(mouse.x) + 0.5, g.top + g.h);
  ctx.stroke();
  ctx.globalAlpha = 1;
  const maxRows = Math.max(1, Math.floor((g.h - 12) / READOUT_LINE_PX) - 1);
  const rows = [];
  for (const s of shown) {
    if (!s.length) continue;
    const i = s.nearest(t);
    rows.push({ color: colorOf(s.id), label: s.label, value: formatValue(s.y[i]) });
    const px = g.sx(s.x[i]), py = g.sy(s.y[i]);
    if (px >= g.left && px <= g.left + g.w && py >= g.top && py <= g.top + g.h) {
      ctx.fillStyle = colorOf(s.id);
      ctx.beginPath();
      ctx.arc(px, py, 3, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  const extra = rows.length > maxRows ? rows.length - maxRows + 1 : 0;
  if (extra) rows.splice(maxRows - 1, Infinity, { color: null, label: `+${extra} more`, value: "" });
  drawReadoutBox(ctx, g, theme, mouse, formatTime(t, Math.min(g.xStep, SECOND)), rows);
}

function drawReadoutBox(ctx, g, theme, mouse, time, rows) {
  ctx.font = `12px ${theme.font}`;
  const labelW = Math.max(0, ...rows.map((r) => ctx.measureText(r.label).width));
  const valueW = Math.max(0, ...rows.map((r) => ctx.measureText(r.value).width));
  const boxW = Math.ceil(Math.max(ctx.measureText(time).width, 14 + labelW + 12 + valueW)) + 16;
  const boxH = (rows.length + 1) * READOUT_LINE_PX + 8;
  let bx = mouse.x + 12;
  if (bx + boxW > g.left + g.w) bx = Math.max(g.left, mouse.x - 12 - boxW);
  const by = Math.min(Math.max(g.top + 4, mouse.y - boxH / 2), g.top + g.h - boxH);
  ctx.globalAlpha = 0.92;
  ctx.fillStyle = theme.bg;
  ctx.fillRect(bx, by, boxW, boxH);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = theme.grid;
  ctx.strokeRect(bx + 0.5, by + 0.5, boxW - 1, boxH - 1);
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  ctx.fillStyle = theme.text;
  ctx.fillText(time, bx + 8, by + 4 + READOUT_LINE_PX / 2);
  rows.forEach((r, k) => {
    const cy = by + 4 + (k + 1.5) * READOUT_LINE_PX;
    if (r.color) { ctx.fillStyle = r.color; ctx.fillRect(bx + 8, cy - 4, 8, 8); }
    ctx.fillStyle = theme.text;
    ctx.textAlign = "left";
    ctx.fillText(r.label, bx + 22, cy);
    ctx.textAlign = "right";
    ctx.fillText(r.value, bx + boxW - 8, cy);
  });
}

// ---------- the view ----------

function element(tag, className, style) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (style) node.style.cssText = style;
  return node;
}

function waitingText(model) {
  const waiting = model.get("waiting");
  if (!Array.isArray(waiting) || waiting.length === 0) return "";
  return `waiting for column${waiting.length > 1 ? "s" : ""} ${waiting.join(", ")}`;
}

function chartHeight(model) {
  const h = Number(model.get("height"));
  return Number.isFinite(h) && h >= 60 ? Math.round(h) : 300;
}

function createView(store, model, el) {
  const root = element("div", "nbws-chart", "font-family: var(--jp-ui-font-family, system-ui, sans-serif);"
    + "font-size: 12px; color: var(--jp-ui-font-color1, rgba(0, 0, 0, 0.87));");
  const header = element("div", "nbws-chart-header", "display: flex; align-items: center; gap: 12px; padding: 2px 0 4px;");
  const title = element("span", "nbws-chart-title", "font-weight: 600;");
  const waiting = element("span", "nbws-chart-waiting", "color: var(--jp-ui-font-color2, rgba(0, 0, 0, 0.54)); font-style: italic;");
  const button = element("button", "nbws-chart-pause", "margin-left: auto;");
  button.type = "button";
  button.textContent = "Pause";
  header.append(title, waiting, button);
  const box = element("div", "nbws-chart-plot", "position: relative;");
  const canvas = element("canvas", "nbws-chart-canvas", "display: block; width: 100%;");
  const overlay = element("canvas", "nbws-chart-overlay", "position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none;");
  box.append(canvas, overlay);
  const legend = element("div", "nbws-chart-legend", "display: flex; flex-wrap: wrap; gap: 2px 14px; padding-top: 4px;");
  root.append(header, box, legend);
  el.append(root);

  const hidden = new Set();
  let paused = false, needChart = true, needReadout = false, frame = 0;
  let geom = null, theme = null, mouse = null, legendKey = "";

  const shownSeries = () => sortedSeries(store).filter((s) => !hidden.has(s.id));

  function schedule(chart) {
    if (chart) needChart = true;
    needReadout = true;
    if (!frame) frame = requestAnimationFrame(onFrame);
  }

  function onFrame() {
    frame = 0;
    if (needChart && !paused) drawChart();
    if (needReadout) drawOverlay();
  }

  function drawChart() {
    const width = canvas.clientWidth, height = chartHeight(model);
    if (!canvas.isConnected || width < 40) return; // stays pending: the ResizeObserver reschedules
    needChart = false;
    const dpr = window.devicePixelRatio || 1;
    const ctx = fitCanvas(canvas, width, height, dpr);
    fitCanvas(overlay, width, height, dpr);
    theme = readTheme(el);
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, width, height);
    const all = sortedSeries(store);
    const range = xRangeOf(all, Number(model.get("window_ms")) || 0);
    geom = range ? drawPlot(ctx, theme, width, height, range, all.filter((s) => !hidden.has(s.id))) : null;
    if (!range && !waitingText(model)) drawCenterText(ctx, theme, width, height, "waiting for data…");
    updateLegend(all);
    el.dataset.points = String(all.reduce((n, s) => n + s.length, 0));
    el.dataset.series = String(all.length);
    needReadout = true;
  }

  function drawOverlay() {
    needReadout = false;
    if (!overlay.width || !theme) return;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    drawReadout(ctx, geom, theme, mouse, shownSeries());
  }

  function updateLegend(all) {
    const key = JSON.stringify(all.map((s) => [s.id, s.label]));
    if (key !== legendKey) {
      legendKey = key;
      legend.replaceChildren(...all.map(legendItem));
    }
    for (const item of legend.children) {
      const off = hidden.has(item._seriesId);
      item.style.opacity = off ? "0.4" : "1";
      item.lastChild.style.textDecoration = off ? "line-through" : "none";
      item.setAttribute("aria-pressed", String(!off));
    }
  }

  function legendItem(s) {
    const item = element("span", "nbws-chart-legend-item", "display: inline-flex; align-items: center; gap: 5px; cursor: pointer; user-select: none;");
    item._seriesId = s.id;
    item.setAttribute("role", "button");
    item.tabIndex = 0;
    item.title = "click to hide or show";
    const swatch = element("span", "", `display: inline-block; width: 10px; height: 10px; border-radius: 2px; background: ${colorOf(s.id)};`);
    const label = element("span", "nbws-chart-legend-label");
    label.textContent = s.label;
    item.append(swatch, label);
    const toggle = () => {
      if (!hidden.delete(s.id)) hidden.add(s.id);
      updateLegend(sortedSeries(store));
      schedule(true);
    };
    item.addEventListener("click", toggle);
    item.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); }
    });
    return item;
  }

  function updateHeader() {
    title.textContent = String(model.get("title") ?? "");
    waiting.textContent = waitingText(model);
  }

  function updateHeight() {
    canvas.style.height = `${chartHeight(model)}px`;
  }

  button.addEventListener("click", () => {
    paused = !paused;
    button.textContent = paused ? "Resume" : "Pause";
    el.dataset.paused = String(paused);
    if (!paused) { needChart = true; onFrame(); } // at once, not on the next frame
  });
  canvas.addEventListener("mousemove", (e) => { mouse = { x: e.offsetX, y: e.offsetY }; schedule(false); });
  canvas.addEventListener("mouseleave", () => { mouse = null; schedule(false); });

  let lastWidth = -1;
  const observer = new ResizeObserver(() => {
    const width = canvas.clientWidth;
    if (width !== lastWidth || needChart) { lastWidth = width; schedule(true); }
  });
  observer.observe(canvas);

  const redraw = () => schedule(true);
  const handlers = [
    ["change:title", updateHeader],
    ["change:waiting", () => { updateHeader(); redraw(); }],
    ["change:window_ms", redraw],
    ["change:height", () => { updateHeight(); redraw(); }],
  ];
  for (const [name, cb] of handlers) model.on(name, cb);
  store.listeners.add(redraw);
  updateHeader();
  updateHeight();
  schedule(true);

  return () => {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    observer.disconnect();
    store.listeners.delete(redraw);
    for (const [name, cb] of handlers) model.off(name, cb);
    root.remove();
  };
}

// A function default export gives each widget model its own store, shared by its views.
export default () => {
  const store = { series: new Map(), listeners: new Set() };
  return {
    initialize({ model }) {
      const onMessage = (content, buffers) => {
        if (!applyMessage(store, content, buffers)) return;
        for (const listener of store.listeners) listener();
      };
      model.on("msg:custom", onMessage);
      model.send({ type: "sync" });
      return () => {
        model.off("msg:custom", onMessage);
        store.listeners.clear();
      };
    },
    render({ model, el }) {
      return createView(store, model, el);
    },
  };
};
