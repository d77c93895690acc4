// Plain SVG charts: lines over time, an optional threshold line and
// background bands (alarm states). No library: we need only these, and
// drawing them is a page of code with nothing to update or audit.

// The SVG namespace, taken from the HTML parser rather than written out, so
// that no asset holds a URL at all.
const SVG = (() => {
  const t = document.createElement('template');
  t.innerHTML = '<svg></svg>';
  return t.content.firstChild.namespaceURI;
})();

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  if (text !== undefined) e.textContent = text;
  return e;
}

const M = { top: 12, right: 14, bottom: 26, left: 58 };

// Time steps a human reads easily, in ms.
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400].map((s) => s * 1000);

function timeStep(range, count) {
  return TIME_STEPS.find((s) => range / s <= count) || TIME_STEPS[TIME_STEPS.length - 1];
}

// niceStep returns a round tick step near range/count.
function niceStep(range, count) {
  const raw = range / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
}

function hhmm(ms, seconds = false) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: seconds ? '2-digit' : undefined });
}

// lineChart draws series of {t (ms), v} points between start and end (ms).
// opts: title, series [{name, points, cls}], threshold (number), bands
// [{from, to, state}], format (number -> string), unit.
export function lineChart(opts) {
  const { title, series = [], threshold, bands = [], start, end, width: W = 640, height: H = 200 } = opts;
  const fmt = opts.format || ((v) => formatNumber(v));
  const svg = el('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
    'aria-label': title, preserveAspectRatio: 'xMidYMid meet',
  });
  svg.append(el('title', {}, title));
  const x0 = M.left, x1 = W - M.right, y0 = H - M.bottom, y1 = M.top;
  const t0 = start, t1 = Math.max(end, start + 1);
  let lo = 0, hi = 0;
  for (const s of series) for (const p of s.points) { lo = Math.min(lo, p.v); hi = Math.max(hi, p.v); }
  if (Number.isFinite(threshold)) { lo = Math.min(lo, threshold); hi = Math.max(hi, threshold); }
  if (hi === lo) hi = lo + 1;
  const step = niceStep(hi - lo, 4);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil((hi * 1.05) / step) * step;
  const sx = (t) => x0 + ((t - t0) / (t1 - t0)) * (x1 - x0);
  const sy = (v) => y0 - ((v - lo) / (hi - lo)) * (y0 - y1);
  const clampX = (t) => Math.min(x1, Math.max(x0, sx(t)));

  // State bands behind everything.
  const gb = el('g', { class: 'bands' });
  for (const b of bands) {
    const a = clampX(b.from), z = clampX(b.to ?? t1);
    if (z <= a) continue;
    const r = el('rect', { x: a, y: y1, width: z - a, height: y0 - y1, class: `band band-${b.state}` });
    r.append(el('title', {}, `${b.state} from ${hhmm(b.from, true)}`));
    gb.append(r);
  }
  svg.append(gb);

  // Grid and y labels.
  const gy = el('g', { class: 'axis' });
  for (let v = lo; v <= hi + step / 2; v += step) {
    const y = sy(v);
    gy.append(el('line', { x1: x0, x2: x1, y1: y, y2: y, class: 'grid' }));
    gy.append(el('text', { x: x0 - 6, y: y + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  // x labels: about five.
  const xstep = timeStep(t1 - t0, Math.max(3, Math.round(W / 130)));
  for (let t = Math.ceil(t0 / xstep) * xstep; t <= t1; t += xstep) {
    gy.append(el('line', { x1: sx(t), x2: sx(t), y1: y0, y2: y0 + 4, class: 'tick' }));
    gy.append(el('text', { x: sx(t), y: H - 8, 'text-anchor': 'middle' }, hhmm(t, xstep < 60000)));
  }
  gy.append(el('line', { x1: x0, x2: x1, y1: y0, y2: y0, class: 'baseline' }));
  svg.append(gy);

  if (Number.isFinite(threshold)) {
    const y = sy(threshold);
    svg.append(el('line', { x1: x0, x2: x1, y1: y, y2: y, class: 'threshold', 'data-testid': 'threshold-line' }));
    svg.append(el('text', { x: x1 - 2, y: y - 4, 'text-anchor': 'end', class: 'threshold-label' }, `threshold ${fmt(threshold)}`));
  }

  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p.t >= t0 && p.t <= t1 && Number.isFinite(p.v));
    const cls = `series series-${s.cls || i}`;
    if (pts.length > 1) {
      const d = pts.map((p, j) => `${j ? 'L' : 'M'}${sx(p.t).toFixed(1)},${sy(p.v).toFixed(1)}`).join('');
      svg.append(el('path', { d, class: cls }));
    }
    for (const p of pts) {
      const c = el('circle', { cx: sx(p.t).toFixed(1), cy: sy(p.v).toFixed(1), r: 2.5, class: cls });
      c.append(el('title', {}, `${s.name} ${fmt(p.v)} at ${hhmm(p.t, true)}`));
      svg.append(c);
    }
  });

  if (!series.some((s) => s.points.length)) {
    svg.append(el('text', { x: (x0 + x1) / 2, y: (y0 + y1) / 2, 'text-anchor': 'middle', class: 'empty' }, 'no data yet'));
  }
  return svg;
}

// formatNumber keeps charts and tables short: 3 significant digits.
export function formatNumber(v) {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e6)) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

// formatSeconds shows a duration in seconds as ms or s.
export function formatSeconds(v) {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) < 1) return `${formatNumber(v * 1000)} ms`;
  return `${formatNumber(v)} s`;
}
