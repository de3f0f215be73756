// The API client: the token lives in sessionStorage (this tab only, gone
// when it closes; never in a URL or a cookie), every call sends it as a
// bearer token, and a problem+json answer becomes an ApiError naming the
// field. A 401 logs out.

const KEY = 'sked.token';
const HOW = 'sked.token.how'; // 'password' when this page made the token

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.field = problem?.field || null;
    this.problem = problem;
  }
}

export const session = {
  token: () => sessionStorage.getItem(KEY),
  set(token, how) {
    sessionStorage.setItem(KEY, token);
    sessionStorage.setItem(HOW, how || 'token');
  },
  madeHere: () => sessionStorage.getItem(HOW) === 'password',
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(HOW);
  },
  me: null, // GET /v1/whoami, after login
  onLogout: () => {},
};

// What the caller's role may do, as the server decides (http.h): the
// dashboard offers only these; the server still checks every call.
export const can = {
  write: () => ['admin', 'operator', 'user'].includes(session.me?.role),
  admin: () => session.me?.role === 'admin',
  // GET /metrics: admin or metrics, and a metrics token cannot log in here.
  metrics: () => session.me?.role === 'admin',
};

async function problemOf(res) {
  const ct = res.headers.get('Content-Type') || '';
  if (ct.includes('json')) {
    try { return await res.json(); } catch { /* fall through */ }
  }
  return {detail: `${res.status} ${res.statusText}`};
}

// api('GET', '/v1/jobs', {query: {limit: 50}, body, headers, raw, withHeaders,
//   token (this one, not the session's), noAuth (none)})
export async function api(method, path, opts = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(opts.query || {}))
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  const headers = {Accept: 'application/json', ...(opts.headers || {})};
  const token = opts.noAuth ? null : opts.token || session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = opts.contentType || 'application/json';
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  }
  const res = await fetch(url, {method, headers, body, signal: opts.signal,
    cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer'});
  if (res.status === 401 && !opts.token && !opts.noAuth) {
    session.clear();
    session.onLogout('Your session ended (the token is invalid, revoked or expired). Log in again.');
    throw new ApiError(401, await problemOf(res));
  }
  if (!res.ok) throw new ApiError(res.status, await problemOf(res));
  if (opts.raw) return res;
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  const data = ct.includes('json') ? await res.json() : await res.text();
  if (opts.withHeaders) return {data, headers: res.headers};
  return data;
}

export const get = (path, query, opts) => api('GET', path, {...opts, query});
export const post = (path, body, opts) => api('POST', path, {...opts, body: body ?? {}});
export const del = (path) => api('DELETE', path);
