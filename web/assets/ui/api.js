// The page's only door to the service: the public HTTP API under /api/v1. Every request
// carries the bearer token in the Authorization header (never in a URL), every write is JSON
// (Content-Type: application/json, which a cross-site form cannot send) from this origin,
// and every read names the positions the page has been told of (Crm-Min-Position), so an
// answer is never older than what the page already showed.

export const BASE = '/api/v1';
const TOKEN_KEY = 'crm-pipeline.token';

/** A refusal or failure of the API: an RFC 9457 problem with errors[] naming fields. */
export class Problem extends Error {
  constructor(status, body, fallback) {
    const b = body && typeof body === 'object' ? body : {};
    super(b.detail || b.title || fallback || `The service answered ${status}.`);
    this.name = 'Problem';
    this.status = status;
    this.code = b.code || (status === 0 ? 'network' : 'http_' + status);
    this.title = b.title || (status === 0 ? 'Service unreachable' : `Error ${status}`);
    this.detail = b.detail || fallback || '';
    this.errors = Array.isArray(b.errors) ? b.errors : [];
    this.requestId = b.requestId || '';
  }
  /** The messages errors[] has for field (exact name, or a nested one like stages[0].id). */
  messagesFor(field) {
    return this.errors.filter((e) => e.field === field).map((e) => e.message);
  }
}

// --- positions: what the page was told ---------------------------------------------------

const positions = new Map(); // commands partition -> highest offset the page was told of

/** Notes "<partition>:<offset>[, ...]" (a Crm-Position, or an analytics event's position). */
export function notePosition(text) {
  if (!text) return;
  for (const tok of String(text).split(',')) {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(tok);
    if (!m) continue;
    const p = Number(m[1]);
    const o = BigInt(m[2]);
    if (!positions.has(p) || positions.get(p) < o) positions.set(p, o);
  }
}

/** The Crm-Min-Position header of the positions noted so far ("" when none). */
export function minPosition() {
  return [...positions.entries()].sort((a, b) => a[0] - b[0]).map(([p, o]) => `${p}:${o}`).join(', ');
}

// --- tokens --------------------------------------------------------------------------------

let token = sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY) || '';
let prompt = null; // (reason) => Promise<string|null>, installed by the app
let pending = null; // one prompt at a time, shared by every request that met a 401
export const auth = new EventTarget();

export function setTokenPrompt(fn) { prompt = fn; }
export function hasToken() { return token !== ''; }
export function authHeader() { return token ? { Authorization: `Bearer ${token}` } : {}; }

export function setToken(t, remember) {
  token = t || '';
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  if (token) (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
  auth.dispatchEvent(new Event('change'));
}

export function signOut() { setToken(''); }

/** Asks the user for a token after a 401; resolves true when one was given. */
export async function askToken(reason) {
  if (!prompt) return false;
  if (!pending) {
    pending = Promise.resolve(prompt(reason)).finally(() => { pending = null; });
  }
  const t = await pending;
  return Boolean(t);
}

function authReason(res) {
  const www = res.headers.get('WWW-Authenticate') || '';
  return /invalid_token/.test(www) && token ? 'The token was not accepted. Enter another one.' : 'This service needs an access token.';
}

// --- requests ------------------------------------------------------------------------------

function queryString(q) {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * request(method, path, {body, query, signal, minPosition}) → {status, data, headers}.
 * Writes wait for their outcome (Prefer: wait=5): 200/201 with the opportunity, a Problem
 * for a refusal, or 202 when the outcome took longer (the stream then brings it).
 */
export async function request(method, path, opts = {}) {
  const url = BASE + path + queryString(opts.query);
  const write = method !== 'GET' && method !== 'HEAD';
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: 'application/json', ...authHeader() };
    if (write) {
      headers['Content-Type'] = 'application/json';
      headers.Prefer = 'wait=5';
    } else {
      const min = opts.minPosition ?? minPosition();
      if (min) {
        headers['Crm-Min-Position'] = min;
        headers.Prefer = 'wait=5';
      }
    }
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: write ? JSON.stringify(opts.body ?? {}) : undefined,
        signal: opts.signal,
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      if (!write && attempt < 2) { await sleep(500 * (attempt + 1)); continue; }
      throw new Problem(0, null, 'The service cannot be reached. Check that it is running.');
    }
    notePosition(res.headers.get('Crm-Position'));
    if (res.status === 401 && attempt < 5 && (await askToken(authReason(res)))) continue;
    const ctype = res.headers.get('Content-Type') || '';
    let data = null;
    if (ctype.includes('json')) data = await res.json().catch(() => null);
    // A read that met a view still catching up, or a service still starting: a short retry.
    if (!write && res.status === 503 && attempt < 3) {
      await sleep(400 * (attempt + 1));
      continue;
    }
    if (!res.ok) {
      if (res.status === 403 && data?.code === 'insufficient_scope') data.detail ||= 'Your token may not do this.';
      throw new Problem(res.status, data);
    }
    return { status: res.status, data, headers: res.headers };
  }
}

export const get = (path, query, opts = {}) => request('GET', path, { ...opts, query }).then((r) => r.data);
export const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });
export const patch = (path, body, opts = {}) => request('PATCH', path, { ...opts, body });
export const put = (path, body, opts = {}) => request('PUT', path, { ...opts, body });

// --- the resources the pages share -------------------------------------------------------

let pipelinesCache = null;
export async function pipelines(fresh = false) {
  if (!pipelinesCache || fresh) {
    pipelinesCache = get('/pipelines').then((d) => d.items).catch((e) => { pipelinesCache = null; throw e; });
  }
  return pipelinesCache;
}
export function forgetPipelines() { pipelinesCache = null; }

let fxCache = null;
export async function fxRates(fresh = false) {
  if (!fxCache || fresh) {
    fxCache = get('/fx-rates').then((d) => d.items).catch((e) => { fxCache = null; throw e; });
  }
  return fxCache;
}
export function forgetFX() { fxCache = null; }

let reportingCache = null;
/** The reporting currency: what a forecast without currency is converted to. */
export async function reportingCurrency() {
  if (!reportingCache) {
    reportingCache = get('/forecast/rolling', { days: 1 }).then((f) => f.currency).catch((e) => { reportingCache = null; throw e; });
  }
  return reportingCache;
}

/** Every owner with deals in the forecast's buckets (all close dates). */
export async function owners(pipelineId) {
  const f = await get('/forecast', { groupBy: 'owner', pipelineId, from: ALL_FROM, to: ALL_TO });
  return f.groups.map((g) => g.key);
}

/** The widest period the API accepts: "all close dates". */
export const ALL_FROM = '1900-01-01';
export const ALL_TO = '2999-12-31';
