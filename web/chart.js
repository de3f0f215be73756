// Small SVG charts, drawn as DOM (no canvas, no library): stacked bars for
// runs per minute, plain bars for run durations. Colours come from CSS
// classes, so both themes apply; every bar has a <title> (a tooltip, and
// what a screen reader says) and the chart a text summary.

import {h} from './dom.js';

const W = 600;

function scaleMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function axis(max, H, fmt) {
  return [0, 0.5, 1].map(f => {
    const y = H - f * H;
    return h('svg:g', {class: 'tick'},
      h('svg:line', {x1: 0, x2: W, y1: y, y2: y}),
      h('svg:text', {x: 2, y: Math.max(y - 3, 10)}, fmt(max * f)));
  });
}

// rows: [{label, title, values: {series: n}}], series: [[key, className]]
export function stackedBars(rows, series, {height = 160, label, fmt = v => String(Math.round(v * 10) / 10)} = {}) {
  const H = height;
  const totals = rows.map(r => series.reduce((s, [k]) => s + (r.values[k] || 0), 0));
  const max = scaleMax(Math.max(0, ...totals));
  const bw = W / Math.max(rows.length, 1);
  const bars = rows.map((r, i) => {
    let y = H;
    const parts = [];
    for (const [k, cls] of series) {
      const v = r.values[k] || 0;
      if (!v) continue;
      const hh = (v / max) * H;
      y -= hh;
      parts.push(h('svg:rect', {x: i * bw + 1, y, width: Math.max(bw - 2, 1), height: hh, class: cls},
        h('svg:title', {}, `${r.title || r.label}: ${v} ${k}`)));
    }
    return h('svg:g', {}, parts);
  });
  return h('figure', {class: 'chart'},
    h('svg:svg', {viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': label}, axis(max, H, fmt), bars),
    h('figcaption', {class: 'legend'}, series.map(([k, cls]) =>
      h('span', {}, h('i', {class: `swatch ${cls}`}), k))));
}

// points: [{value, title, className}] oldest first
export function bars(points, {height = 120, label, fmt = v => String(v)} = {}) {
  const H = height;
  const max = scaleMax(Math.max(0, ...points.map(p => p.value || 0)));
  const bw = W / Math.max(points.length, 1);
  return h('figure', {class: 'chart'},
    h('svg:svg', {viewBox: `0 0 ${W} ${H}`, role: 'img',
      'aria-label': label}, axis(max, H, fmt),
    points.map((p, i) => {
      const hh = Math.max(((p.value || 0) / max) * H, 1);
      return h('svg:rect', {x: i * bw + 1, y: H - hh, width: Math.max(bw - 2, 1), height: hh,
        class: p.className || 'bar'}, h('svg:title', {}, p.title));
    })));
}
