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
const LINE_PX = 16; // rows of the hover readout

// ---------- data ----------

/** One series: x and y in growable arrays; the slots before `start` hold dropped points. */
class Series {
  constructor(id, label, capacity = 16) {
    Object.assign(this, { id, label, start: 0, end: 0 });
    this.x = new Float64Array(capacity);
    this.y = new Float64Array(capacity);
  }

  get length() { return this.end - this.start; }

  /** A copy of the kept points (what a paused view keeps showing). */
  copy() {
    const copied = new Series(this.id, this.label, capacityFor(this.length));
    copied.append(this.x, this.y, this.start, this.length);
    return copied;
  }

  append(xs, ys, from, count) {
    if (count <= 0) return;
    if (this.end + count > this.x.length) {
      // Keep half the room free after a move, so moves cost O(1) per point over time.
      const needed = this.length + count;
      this.moveTo(needed * 2 <= this.x.length ? this.x.length : capacityFor(needed));
    }
    this.x.set(xs.subarray(from, from + count), this.end);
    this.y.set(ys.subarray(from, from + count), this.end);
    this.end += count;
  }

  dropBefore(since) {
    this.start = this.lowerBound(since);
    if (this.start > this.x.length / 2) this.moveTo(capacityFor(this.length));
  }

  /** Moves the kept points to the front, into new arrays when the capacity changes. */
  moveTo(capacity) {
    const { start, end } = this;
    if (capacity === this.x.length) {
      this.x.copyWithin(0, start, end);
      this.y.copyWithin(0, start, end);
    } else {
      const x = new Float64Array(capacity), y = new Float64Array(capacity);
      x.set(this.x.subarray(start, end));
      y.set(this.y.subarray(start, end));
      Object.assign(this, { x, y });
    }
    Object.assign(this, { start: 0, end: end - start });
  }

  /** The first index with x >= v (x > v when `after`): an index into this.x. */
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
    return i > this.start && t - this.x[i - 1] <= this.x[i] - t ? i - 1 : i;
  }
}

const capacityFor = (n) => 2 ** Math.max(4, Math.ceil(Math.log2(n * 2))); // a power of two, half free

/** A copy of a buffer's bytes as float64s (a view into a message may not be 8-byte aligned). */
function toFloat64(b) {
  if (!b) return new Float64Array(0);
  const bytes = new Uint8Array(b.buffer ?? b, b.byteOffset ?? 0, b.byteLength);
  return new Float64Array(bytes.slice(0, bytes.length - (bytes.length % 8)).buffer);
}

/** Applies a "window" (replaces everything) or "points" (appends, then drops x < since). */
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
    if (!series) store.series.set(id, (series = new Series(id, String(label ?? id), capacityFor(count))));
    else if (label != null) series.label = String(label);
    series.append(xs, ys, offset, count);
    offset += count;
    if (type === "points" && Number.isFinite(since)) series.dropBefore(since);
  }
  return true;
}

const sortedSeries = (store) => [...store.series.values()].sort((a, b) => a.id - b.id);
const colorOf = (id) => PALETTE[((Math.trunc(Number(id)) % 10) + 10) % 10] ?? PALETTE[0];

// ---------- scales and ticks ----------

function xRangeOf(all, windowMs) {
  let lo = Infinity, hi = -Infinity;
  for (const s of all) {
    if (s.length) { lo = Math.min(lo, s.x[s.start]); hi = Math.max(hi, s.x[s.end - 1]); }
  }
  if (!(hi >= lo)) return null;
  if (windowMs > 0) lo = hi - windowMs;
  return hi > lo ? [lo, hi] : [lo - SECOND, hi + SECOND];
}

/** What to draw of a series within [x0, x1]: its points, or when there are more than two per pixel,
 *  per pixel column (kx columns per ms) the first, lowest, highest and last value: one pass. */
function traceOf(s, x0, x1, kx) {
  const lo = s.lowerBound(x0), hi = s.lowerBound(x1, true), trace = { s, lo, hi, buckets: null };
  if (hi - lo <= 2 * (x1 - x0) * kx) return trace;
  const { x, y } = s, buckets = (trace.buckets = []);
  for (let i = lo; i < hi;) {
    const col = Math.floor((x[i] - x0) * kx);
    const next = Math.min(hi, Math.max(i + 1, s.lowerBound(x0 + (col + 1) / kx)));
    let first = NaN, last = NaN, min = Infinity, max = -Infinity;
    for (; i < next; i++) {
      const v = y[i];
      if (v - v !== 0) continue; // NaN or infinite (cheaper than a call in a cold loop)
      if (first !== first) first = v;
      last = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (first === first) buckets.push(x0 + (col + 0.5) / kx, first, min, max, last);
  }
  return trace;
}

function yRangeOf(traces) {
  let lo = Infinity, hi = -Infinity;
  for (const { s, lo: a, hi: b, buckets } of traces) {
    if (buckets) {
      for (let k = 0; k < buckets.length; k += 5) { lo = Math.min(lo, buckets[k + 2]); hi = Math.max(hi, buckets[k + 3]); }
    } else {
      for (let i = a; i < b; i++) { const v = s.y[i]; if (v - v === 0) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    }
  }
  if (lo > hi) return [0, 1];
  const pad = lo === hi ? (lo === 0 ? 1 : Math.abs(lo) * 0.05) : (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** 1, 2 or 5 times a power of ten: the nearest to `raw`, or the smallest at least `raw`. */
function niceStep(raw, nearest = false) {
  const p = 10 ** Math.floor(Math.log10(raw)), m = raw / p;
  const [a, b, c] = nearest ? [Math.SQRT2, Math.sqrt(10), Math.sqrt(50)] : [1, 2, 5];
  return (m <= a ? 1 : m <= b ? 2 : m <= c ? 5 : 10) * p;
}

/** Ticks about 50 px apart, labelled alike: all fixed-point or all exponential. */
function yTicks(y0, y1, plotH) {
  const step = niceStep((y1 - y0) / Math.max(2, plotH / 50), true);
  if (!(step > 0) || !Number.isFinite(step)) return [];
  const values = [];
  for (let k = Math.ceil(y0 / step); k * step <= y1 && values.length < 50; k++) values.push(k * step);
  const top = Math.max(...values.map(Math.abs)), exponential = top >= 1e7 || top < 1e-4;
  return values.map((v) => ({ value: v, label: formatTick(v, step, exponential) }));
}

function formatTick(v, step, exponential) {
  if (Math.abs(v) < step * 1e-6) return "0";
  const stepDigits = Math.floor(Math.log10(step) + 1e-9);
  if (!exponential) return v.toFixed(Math.min(10, Math.max(0, -stepDigits)));
  const digits = Math.floor(Math.log10(Math.abs(v))) - stepDigits;
  return trimExponent(v.toExponential(Math.min(6, Math.max(0, digits))));
}

const trimExponent = (text) => text.replace(/\.?0+e/, "e").replace("e+", "e"); // 6.70e+7 -> 6.7e7

function formatValue(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e9 || a < 1e-4)) return Number.isFinite(v) ? trimExponent(v.toExponential(5)) : String(v);
  return String(Number(v.toPrecision(6)));
}

/** The smallest nice time step whose ticks are 80 px or more apart and wider than their labels. */
function timeStep(span, plotW, labelWidth) {
  const msPerPx = span / plotW, gap = (s) => Math.max(80, labelWidth(s) + 16);
  return TIME_STEPS.find((s) => s / msPerPx >= gap(s)) ?? DAY * niceStep((gap(DAY) * msPerPx) / DAY);
}

/** Multiples of `step` in local time (10:00:00 here, whatever the offset from UTC). */
function timeTicks(x0, x1, step) {
  const offset = -new Date(x0).getTimezoneOffset() * MINUTE, ticks = [];
  for (let t = Math.ceil((x0 + offset) / step) * step - offset; t <= x1 && ticks.length < 200; t += step) ticks.push(t);
  return ticks;
}

function formatTime(t, step) {
  const d = new Date(t), p = (n, w = 2) => String(n).padStart(w, "0");
  const midnight = d.getHours() === 0 && d.getMinutes() === 0;
  if (step >= DAY || (step >= HOUR && midnight)) return `${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (step >= MINUTE) return hm;
  const hms = `${hm}:${p(d.getSeconds())}`;
  return step < SECOND ? `${hms}.${p(d.getMilliseconds(), 3)}` : hms;
}

// ---------- drawing ----------

function readTheme(el) {
  const cs = getComputedStyle(el), v = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
  return {
    bg: v("--jp-layout-color0", "#ffffff"),
    text: v("--jp-ui-font-color1", "rgba(0, 0, 0, 0.87)"),
    muted: v("--jp-ui-font-color2", "rgba(0, 0, 0, 0.54)"),
    grid: v("--jp-border-color2", "#e0e0e0"),
    font: v("--jp-ui-font-family", "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"),
  };
}

/** Sizes the backing store for the device pixel ratio; returns a context drawing in CSS pixels. */
function fitCanvas(canvas, width, height, dpr) {
  const w = Math.round(width * dpr), h = Math.round(height * dpr);
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** Grid, axes and lines; returns the geometry (g) that maps data to pixels and back. */
function drawPlot(ctx, theme, width, height, [x0, x1], shown) {
  ctx.font = `11px ${theme.font}`;
  const top = MARGIN.top, h = height - MARGIN.top - MARGIN.bottom;
  // Buckets as narrow as the plot's widest possible pixel columns: one per column or more.
  const traces = shown.map((s) => traceOf(s, x0, x1, (width - MARGIN.right) / (x1 - x0)));
  const [y0, y1] = yRangeOf(traces), yt = yTicks(y0, y1, h);
  const left = Math.ceil(Math.max(0, ...yt.map((t) => ctx.measureText(t.label).width))) + 12;
  const w = width - left - MARGIN.right;
  if (w < 20 || h < 20) return null;
  const kx = w / (x1 - x0), ky = h / (y1 - y0);
  const g = { x0, x1, left, top, w, h, kx, sx: (x) => left + (x - x0) * kx, sy: (y) => top + (y1 - y) * ky };
  g.xStep = timeStep(x1 - x0, w, (step) => ctx.measureText(formatTime(x0, step)).width);
  drawGrid(ctx, theme, g, yt, timeTicks(x0, x1, g.xStep), width);
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top - 2, w, h + 4);
  ctx.clip();
  Object.assign(ctx, { lineWidth: 1.5, lineJoin: "round" });
  for (const trace of traces) drawSeries(ctx, trace, g);
  ctx.restore();
  return g;
}

function drawGrid(ctx, theme, g, yt, xt, width) {
  const { left, top, w, h } = g, bottom = top + h;
  Object.assign(ctx, { lineWidth: 1, strokeStyle: theme.grid, globalAlpha: 0.6 });
  ctx.beginPath();
  for (const t of yt) { const y = Math.round(g.sy(t.value)) + 0.5; ctx.moveTo(left, y); ctx.lineTo(left + w, y); }
  for (const t of xt) { const x = Math.round(g.sx(t)) + 0.5; ctx.moveTo(x, top); ctx.lineTo(x, bottom); }
  ctx.stroke();
  ctx.globalAlpha = 1;
  ctx.strokeRect(left - 0.5, top - 0.5, w + 1, h + 1);
  Object.assign(ctx, { fillStyle: theme.muted, textAlign: "right", textBaseline: "middle" });
  for (const t of yt) ctx.fillText(t.label, left - 6, g.sy(t.value));
  Object.assign(ctx, { textAlign: "center", textBaseline: "top" });
  for (const t of xt) {
    const label = formatTime(t, g.xStep), x = g.sx(t), half = ctx.measureText(label).width / 2;
    if (x - half >= 0 && x + half <= width) ctx.fillText(label, x, bottom + 5); // no clipped labels
  }
}

function drawSeries(ctx, { s, lo, hi, buckets }, g) {
  // One point either side of the range too, so that lines run to the edges.
  const a = Math.max(s.start, lo - 1), b = Math.min(s.end, hi + 1);
  if (b <= a) return;
  ctx.strokeStyle = ctx.fillStyle = colorOf(s.id);
  ctx.beginPath();
  const dots = buckets ? traceBuckets(ctx, s, buckets, a < lo ? a : -1, b > hi ? hi : -1, g) : tracePolyline(ctx, s, a, b, g);
  ctx.stroke();
  if (!dots.length) return;
  ctx.beginPath();
  for (const [x, y] of dots) { ctx.moveTo(x + 2.5, y); ctx.arc(x, y, 2.5, 0, 2 * Math.PI); }
  ctx.fill();
}

/** Straight segments, broken at NaN; returns the points with no neighbour, to draw as dots. */
function tracePolyline(ctx, s, a, b, g) {
  const dots = [];
  let run = 0, px = 0, py = 0;
  for (let i = a; i <= b; i++) {
    const v = i < b ? s.y[i] : NaN;
    if (!Number.isFinite(v)) {
      if (run === 1) dots.push([px, py]);
      run = 0;
      continue;
    }
    px = g.sx(s.x[i]);
    py = g.sy(v);
    if (run++ === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
  }
  return dots;
}

/** A vertical stroke per bucket (so spikes stay visible), from the point `before` to `after`. */
function traceBuckets(ctx, s, buckets, before, after, g) {
  let started = false;
  const to = (px, py) => { if (started) ctx.lineTo(px, py); else ctx.moveTo(px, py); started = true; };
  const edge = (i) => { if (Number.isFinite(s.y[i])) to(g.sx(s.x[i]), g.sy(s.y[i])); };
  if (before >= 0) edge(before);
  for (let k = 0; k < buckets.length; k += 5) {
    const cx = g.sx(buckets[k]);
    for (let j = 1; j < 5; j++) to(cx, g.sy(buckets[k + j]));
  }
  if (after >= 0) edge(after);
  return [];
}

/** The crosshair at the mouse and a box with each shown series' nearest value (overlay canvas). */
function drawReadout(ctx, g, theme, pointer, shown) {
  if (!g || !pointer) return;
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
  const mx = clamp(pointer.x, g.left, g.left + g.w), my = clamp(pointer.y, g.top, g.top + g.h);
  const t = g.x0 + (mx - g.left) / g.kx;
  Object.assign(ctx, { strokeStyle: theme.text, globalAlpha: 0.45, lineWidth: 1 });
  ctx.beginPath();
  ctx.moveTo(Math.round(mx) + 0.5, g.top);
  ctx.lineTo(Math.round(mx) + 0.5, g.top + g.h);
  ctx.stroke();
  ctx.globalAlpha = 1;
  const rows = [];
  for (const s of shown) {
    if (!s.length) continue;
    const i = s.nearest(t), px = g.sx(s.x[i]), py = g.sy(s.y[i]);
    rows.push({ color: colorOf(s.id), label: s.label, value: formatValue(s.y[i]) });
    if (px < g.left || px > g.left + g.w || !(py >= g.top && py <= g.top + g.h)) continue;
    ctx.fillStyle = colorOf(s.id);
    ctx.beginPath();
    ctx.arc(px, py, 3, 0, 2 * Math.PI);
    ctx.fill();
  }
  const maxRows = Math.max(1, Math.floor((g.h - 12) / LINE_PX) - 1);
  if (rows.length > maxRows) rows.splice(maxRows - 1, Infinity, { label: `+${rows.length - maxRows + 1} more`, value: "" });
  drawReadoutBox(ctx, g, theme, mx, my, formatTime(t, Math.min(g.xStep, SECOND)), rows);
}

function drawReadoutBox(ctx, g, theme, mx, my, time, rows) {
  ctx.font = `12px ${theme.font}`;
  const widest = (texts) => Math.max(0, ...texts.map((text) => ctx.measureText(text).width));
  const boxW = Math.ceil(Math.max(widest([time]), 26 + widest(rows.map((r) => r.label)) + widest(rows.map((r) => r.value)))) + 16;
  const boxH = (rows.length + 1) * LINE_PX + 8;
  const bx = mx + 12 + boxW <= g.left + g.w ? mx + 12 : Math.max(g.left, mx - 12 - boxW);
  const by = Math.min(Math.max(g.top + 4, my - boxH / 2), g.top + g.h - boxH);
  Object.assign(ctx, { globalAlpha: 0.92, fillStyle: theme.bg });
  ctx.fillRect(bx, by, boxW, boxH);
  Object.assign(ctx, { globalAlpha: 1, strokeStyle: theme.grid, textBaseline: "middle" });
  ctx.strokeRect(bx + 0.5, by + 0.5, boxW - 1, boxH - 1);
  Object.assign(ctx, { fillStyle: theme.text, textAlign: "left" });
  ctx.fillText(time, bx + 8, by + 4 + LINE_PX / 2);
  rows.forEach((r, k) => {
    const cy = by + 4 + (k + 1.5) * LINE_PX;
    if (r.color) { ctx.fillStyle = r.color; ctx.fillRect(bx + 8, cy - 4, 8, 8); }
    Object.assign(ctx, { fillStyle: theme.text, textAlign: "left" });
    ctx.fillText(r.label, bx + 22, cy);
    ctx.textAlign = "right";
    ctx.fillText(r.value, bx + boxW - 8, cy);
  });
}

// ---------- the view ----------

function element(tag, className, style, text) {
  const node = document.createElement(tag);
  Object.assign(node, { className });
  node.style.cssText = style;
  if (text !== undefined) node.textContent = text; // labels are data: text, never markup
  return node;
}

function waitingText(model) {
  const waiting = model.get("waiting");
  if (!Array.isArray(waiting) || !waiting.length) return "";
  return `waiting for column${waiting.length > 1 ? "s" : ""} ${waiting.join(", ")}`;
}

function chartHeight(model) {
  const h = Number(model.get("height"));
  return Number.isFinite(h) && h >= 60 ? Math.round(h) : 300;
}

function buildDom(el) {
  const root = element("div", "nbws-chart", "font-family: var(--jp-ui-font-family, system-ui, sans-serif);"
    + "font-size: 12px; color: var(--jp-ui-font-color1, rgba(0, 0, 0, 0.87));");
  const header = element("div", "nbws-chart-header", "display: flex; align-items: center; gap: 12px; padding: 2px 0 4px;");
  const title = element("span", "nbws-chart-title", "font-weight: 600;");
  const waiting = element("span", "nbws-chart-waiting", "color: var(--jp-ui-font-color2, rgba(0, 0, 0, 0.54)); font-style: italic;");
  const button = element("button", "nbws-chart-pause", "margin-left: auto; padding: 2px 10px; border-radius: 3px;"
    + "cursor: pointer; color: inherit; background: var(--jp-layout-color2, transparent);"
    + "border: 1px solid var(--jp-border-color1, rgba(128, 128, 128, 0.6));", "Pause");
  button.type = "button";
  const box = element("div", "nbws-chart-plot", "position: relative;");
  const canvas = element("canvas", "nbws-chart-canvas", "display: block; width: 100%;");
  const overlay = element("canvas", "nbws-chart-overlay", "position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none;");
  const legend = element("div", "nbws-chart-legend", "display: flex; flex-wrap: wrap; gap: 2px 14px; padding-top: 4px;");
  header.append(title, waiting, button);
  box.append(canvas, overlay);
  root.append(header, box, legend);
  el.append(root);
  return { root, title, waiting, button, canvas, overlay, legend };
}

function legendItem(s, onToggle) {
  const item = element("span", "nbws-chart-legend-item", "display: inline-flex; align-items: center; gap: 5px; cursor: pointer; user-select: none;");
  Object.assign(item, { tabIndex: 0, title: "click to hide or show" });
  item.setAttribute("role", "button");
  item.append(element("span", "", `display: inline-block; width: 10px; height: 10px; border-radius: 2px; background: ${colorOf(s.id)};`),
    element("span", "nbws-chart-legend-label", "", s.label));
  item.addEventListener("click", onToggle);
  item.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onToggle(); }
  });
  return item;
}

function createView(store, model, el) {
  const dom = buildDom(el), { canvas, overlay, legend } = dom;
  const hidden = new Set(); // series ids this view does not draw
  let paused = false, needChart = true, needReadout = false, frame = 0;
  let frozen = null; // while paused: copies of the series as they were (hiding one, a resize or
  // a theme change still redraws them; new points wait for Resume)
  const shownSeries = () => frozen ?? sortedSeries(store);
  let geom = null, theme = null, mouse = null, legendKey = "", lastWidth = -1;

  function schedule(chart) {
    if (chart) needChart = true;
    needReadout = true;
    if (!frame) frame = requestAnimationFrame(onFrame);
  }

  function onFrame() {
    frame = 0;
    if (needChart) drawChart();
    if (needReadout) drawOverlay();
  }

  function drawChart() {
    const width = canvas.clientWidth, height = chartHeight(model);
    if (!canvas.isConnected || width < 40) return; // still pending: the ResizeObserver reschedules
    needChart = false;
    const dpr = window.devicePixelRatio || 1, ctx = fitCanvas(canvas, width, height, dpr);
    fitCanvas(overlay, width, height, dpr);
    theme = readTheme(el);
    ctx.fillStyle = theme.bg;
    ctx.fillRect(0, 0, width, height);
    const all = shownSeries(), range = xRangeOf(all, Number(model.get("window_ms")) || 0);
    geom = range && drawPlot(ctx, theme, width, height, range, all.filter((s) => !hidden.has(s.id)));
    if (!range && !waitingText(model)) {
      Object.assign(ctx, { font: `13px ${theme.font}`, fillStyle: theme.muted, textAlign: "center", textBaseline: "middle" });
      ctx.fillText("waiting for data…", width / 2, height / 2);
    }
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
    drawReadout(ctx, geom, theme, mouse, shownSeries().filter((s) => !hidden.has(s.id)));
  }

  function updateLegend(all) {
    const key = JSON.stringify(all.map((s) => [s.id, s.label]));
    if (key !== legendKey) {
      legendKey = key;
      legend.replaceChildren(...all.map((s) => legendItem(s, () => toggle(s.id))));
    }
    all.forEach((s, k) => {
      const item = legend.children[k], off = hidden.has(s.id);
      item.style.opacity = off ? "0.4" : "1";
      item.lastChild.style.textDecoration = off ? "line-through" : "none";
      item.setAttribute("aria-pressed", String(!off));
    });
  }

  function toggle(id) {
    if (!hidden.delete(id)) hidden.add(id);
    updateLegend(shownSeries());
    schedule(true);
  }

  function updateHeader() {
    dom.title.textContent = String(model.get("title") ?? "");
    dom.waiting.textContent = waitingText(model);
  }

  dom.button.addEventListener("click", () => {
    paused = !paused;
    frozen = paused ? sortedSeries(store).map((s) => s.copy()) : null;
    dom.button.textContent = paused ? "Resume" : "Pause";
    el.dataset.paused = String(paused);
    if (!paused) { needChart = true; onFrame(); } // draws at once, not on the next frame
  });
  canvas.addEventListener("mousemove", (e) => { mouse = { x: e.offsetX, y: e.offsetY }; schedule(false); });
  canvas.addEventListener("mouseleave", () => { mouse = null; schedule(false); });
  const observer = new ResizeObserver(() => {
    if (canvas.clientWidth !== lastWidth || needChart) { lastWidth = canvas.clientWidth; schedule(true); }
  });
  observer.observe(canvas);
  // JupyterLab and Notebook 7 mark a theme change on <body>: redraw with the new colours.
  const themeWatch = new MutationObserver(() => schedule(true));
  themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });

  const redraw = () => schedule(true);
  const onData = () => { if (!paused) redraw(); };
  const setHeight = () => { canvas.style.height = `${chartHeight(model)}px`; redraw(); };
  const handlers = [["change:title", updateHeader], ["change:waiting", () => { updateHeader(); redraw(); }],
    ["change:window_ms", redraw], ["change:height", setHeight]];
  for (const [name, cb] of handlers) model.on(name, cb);
  store.listeners.add(onData);
  updateHeader();
  setHeight();

  return () => {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    observer.disconnect();
    themeWatch.disconnect();
    store.listeners.delete(onData);
    for (const [name, cb] of handlers) model.off(name, cb);
    dom.root.remove();
  };
}

// A function as default export (anywidget calls it once per widget model) gives each model its
// own store, which initialize fills and every view of that model reads.
export default () => {
  const store = { series: new Map(), listeners: new Set() };
  return {
    initialize({ model }) {
      const onMessage = (content, buffers) => {
        if (applyMessage(store, content, buffers)) for (const listener of store.listeners) listener();
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
