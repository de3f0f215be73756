// The live feed: GET /v1/events read with fetch (an EventSource cannot
// send the Authorization header, and the token must not go in the URL).
// One stream per tab, shared by every view: views subscribe with a filter
// and get each event as it commits. The stream resumes after the last id
// it saw (Last-Event-ID), so a reconnect loses nothing; a 410 (the resume
// point was pruned) tells the views to reload what they show.

import {session} from './api.js';

const subs = new Set();
const statusSubs = new Set();
let ctrl = null;
let lastId = null;
let connected = false;
let retryMs = 500;

function setConnected(v) {
  if (connected === v) return;
  connected = v;
  for (const f of statusSubs) f(v);
}

// Calls f(bool) whenever the stream connects or drops; returns unsubscribe.
export function onStatus(f) {
  statusSubs.add(f);
  f(connected);
  return () => statusSubs.delete(f);
}

// subscribe(ev => ..., {kinds: ['run', 'job'], job: 'job_…'}): returns the
// unsubscribe function. A null event means "events were lost: reload".
export function subscribe(fn, filter = {}) {
  const s = {fn, filter};
  subs.add(s);
  return () => subs.delete(s);
}

function matches(f, ev) {
  if (f.kinds && !f.kinds.includes(ev.type.split('.')[0])) return false;
  if (f.types && !f.types.includes(ev.type)) return false;
  if (f.job && ev.job_id !== f.job) return false;
  if (f.run && ev.run_id !== f.run) return false;
  return true;
}

function dispatch(ev) {
  for (const s of [...subs]) {
    if (ev === null || matches(s.filter, ev)) {
      try { s.fn(ev); } catch (e) { console.error(e); }
    }
  }
}

// Parses the text/event-stream framing: fields up to a blank line.
function parser() {
  let buf = '';
  return (chunk, emit) => {
    buf += chunk;
    let i;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
      let id = null, data = '';
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const k = c < 0 ? line : line.slice(0, c);
        const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (k === 'id') id = v;
        else if (k === 'data') data += (data ? '\n' : '') + v;
      }
      if (id !== null) lastId = id;
      if (data) {
        try { emit(JSON.parse(data)); } catch { /* not an event */ }
      }
    }
  };
}

// One reader per start(): it ends when its controller is aborted, even
// while it sleeps between tries, so a stop() and start() in that sleep
// never leave two readers.
async function run(mine) {
  let lost = false; // events were lost: tell the views once connected again
  while (ctrl === mine && !mine.signal.aborted) {
    const signal = mine.signal;
    try {
      const headers = {Accept: 'text/event-stream', Authorization: `Bearer ${session.token()}`};
      if (lastId) headers['Last-Event-ID'] = lastId;
      const res = await fetch('/v1/events', {headers, signal, cache: 'no-store', credentials: 'omit'});
      if (res.status === 410) {
        // The resume point was pruned: go on after the id the server
        // names (the views reload what they show once the stream is back).
        let detail = '';
        try { detail = (await res.json()).detail || ''; } catch { /* none */ }
        const m = detail.match(/resume after (\d+)/);
        lastId = m ? m[1] : null;
        lost = true;
        continue;
      }
      if (res.status === 401) {
        session.clear();
        session.onLogout('Your session ended. Log in again.');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
      setConnected(true);
      retryMs = 500;
      if (lost) {
        lost = false;
        dispatch(null);
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const feed = parser();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        feed(value, dispatch);
      }
    } catch (e) {
      if (signal.aborted) break;
    }
    if (ctrl !== mine || mine.signal.aborted) break;
    setConnected(false);
    await new Promise(r => setTimeout(r, retryMs));
    retryMs = Math.min(retryMs * 2, 10000);
  }
  if (ctrl === mine) setConnected(false);
}

// A page's first load, subscribed first: a change that commits while the
// page loads refreshes it, instead of being missed between its read and its
// subscription. Returns the unsubscribe; a failed load unsubscribes and
// throws.
export async function liveLoad(load, fn, filter) {
  const unsub = subscribe(fn, filter);
  try {
    await load();
  } catch (e) {
    unsub();
    throw e;
  }
  return unsub;
}

export function start() {
  if (ctrl) return;
  ctrl = new AbortController();
  lastId = null;
  retryMs = 500;
  run(ctrl);
}

export function stop() {
  ctrl?.abort();
  ctrl = null;
  setConnected(false);
}

// Streams a response body as text chunks to onText until it ends or
// signal aborts (a run's log with follow=1).
export async function follow(url, onText, signal) {
  const res = await fetch(url, {headers: {Authorization: `Bearer ${session.token()}`},
    signal, cache: 'no-store', credentials: 'omit'});
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    onText(value);
  }
}
