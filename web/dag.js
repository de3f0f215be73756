// Draws a workflow's DAG as SVG, left to right: each task in the column of
// its longest path from a root (so every edge points right), the tasks of
// a column ordered by the mean row of their upstreams (a few sweeps of the
// barycenter heuristic, which keeps crossings few), edges as curves. Each
// task is a <g data-task=name data-state=state>, coloured by its state
// through CSS, and a link to its run when it has one.
//
// A layout library (dagre, elkjs) would be 100-1,000 KB for this; workflows
// are at most a few hundred tasks, which this handles at once.

import {h} from './dom.js';

const NODE_W = 150, NODE_H = 40, GAP_X = 60, GAP_Y = 18, PAD = 12;

export function layout(tasks) {
  const byName = new Map(tasks.map(t => [t.name, t]));
  const col = new Map();
  const visiting = new Set();
  const depth = name => {
    if (col.has(name)) return col.get(name);
    if (visiting.has(name)) return 0; // not a DAG: the server refuses cycles, so never
    visiting.add(name);
    const t = byName.get(name);
    const d = Math.max(-1, ...(t?.depends_on || []).filter(u => byName.has(u)).map(depth)) + 1;
    visiting.delete(name);
    col.set(name, d);
    return d;
  };
  tasks.forEach(t => depth(t.name));
  const cols = [];
  for (const t of tasks) (cols[col.get(t.name)] ||= []).push(t.name);
  const row = new Map();
  cols.forEach(c => c.forEach((n, i) => row.set(n, i)));
  const down = new Map(tasks.map(t => [t.name, []]));
  for (const t of tasks) for (const u of t.depends_on || []) if (down.has(u)) down.get(u).push(t.name);
  const mean = xs => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  for (let sweep = 0; sweep < 4; sweep++) {
    const forward = sweep % 2 === 0;
    const order = forward ? cols.slice(1) : cols.slice(0, -1).reverse();
    for (const c of order) {
      const key = n => {
        const nb = forward ? (byName.get(n).depends_on || []).filter(u => row.has(u)) : down.get(n);
        const m = mean(nb.map(x => row.get(x)));
        return m === null ? row.get(n) : m;
      };
      c.sort((a, b) => key(a) - key(b));
      c.forEach((n, i) => row.set(n, i));
    }
  }
  const maxRows = Math.max(1, ...cols.map(c => c.length));
  const pos = new Map();
  cols.forEach((c, ci) => {
    const offset = ((maxRows - c.length) * (NODE_H + GAP_Y)) / 2;
    c.forEach((n, ri) => pos.set(n, {x: PAD + ci * (NODE_W + GAP_X), y: PAD + offset + ri * (NODE_H + GAP_Y)}));
  });
  return {pos, width: PAD * 2 + cols.length * (NODE_W + GAP_X) - GAP_X,
    height: PAD * 2 + maxRows * (NODE_H + GAP_Y) - GAP_Y};
}

function clip(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

// tasks: [{name, depends_on, state?, run_id?}]
export function dag(tasks, {label = 'Workflow graph'} = {}) {
  const {pos, width, height} = layout(tasks);
  const edges = [];
  for (const t of tasks) {
    const b = pos.get(t.name);
    for (const u of t.depends_on || []) {
      const a = pos.get(u);
      if (!a) continue;
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
      edges.push(h('svg:path', {class: 'edge', d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 6},${y2}`,
        'marker-end': 'url(#arrow)'}));
    }
  }
  const nodes = tasks.map(t => {
    const p = pos.get(t.name);
    const state = t.state || 'none';
    const body = [
      h('svg:rect', {x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6, class: `node s-${state}`}),
      h('svg:text', {x: p.x + 10, y: p.y + 17, class: 'name'}, clip(t.name, 20)),
      h('svg:text', {x: p.x + 10, y: p.y + 32, class: 'state'}, t.state || t.trigger_rule || ''),
      h('svg:title', {}, `${t.name}: ${t.state || 'not run'}${t.reason ? ` (${t.reason})` : ''}`),
    ];
    const g = h('svg:g', {'data-task': t.name, 'data-state': state, class: 'task'},
      t.run_id ? h('svg:a', {href: `#/runs/${t.run_id}`, 'aria-label': `${t.name}: ${state}`}, body) : body);
    return g;
  });
  return h('svg:svg', {viewBox: `0 0 ${Math.max(width, 200)} ${Math.max(height, 60)}`, width: Math.max(width, 200),
    height: Math.max(height, 60), role: 'img', 'aria-label': label, 'data-testid': 'dag', class: 'dag'},
  h('svg:defs', {}, h('svg:marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 2, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: 'auto-start-reverse'}, h('svg:path', {d: 'M0,0 L10,5 L0,10 z', class: 'arrow'}))),
  edges, nodes);
}
