// The console's client of Tallyman's /api/v3: OAuth2 password and refresh grants with the tokens
// in sessionStorage, the bearer header on every call, 202 async actions followed to their result,
// and VSPC error bodies turned into ApiError with the server's own message.

const BASE = '/api/v3';
const KEY = 'tallyman.tokens';
const POLL_LIMIT_MS = 10 * 60 * 1000;

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

function save(tokens) {
  sessionStorage.setItem(KEY, JSON.stringify(tokens));
}

export function clearTokens() {
  sessionStorage.removeItem(KEY);
}

export function hasTokens() {
  return load() !== null;
}

let loggedOut = () => {};

/** Called when the session cannot be renewed (the console then shows the login page). */
export function onLoggedOut(handler) {
  loggedOut = handler;
}

async function grant(form) {
  const response = await fetch(BASE + '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok || !body || !body.access_token) {
    const message =
      (body && (body.error_description || (body.errors && body.errors[0] && body.errors[0].message))) ||
      `Login failed (HTTP ${response.status}).`;
    throw new ApiError(message, response.status, body);
  }
  save({
    access: body.access_token,
    refresh: body.refresh_token,
    // Renew a little before the server would refuse the token.
    expiresAt: Date.now() + Math.max(0, Number(body.expires_in || 0) - 30) * 1000,
  });
}

export function login(username, password, readOnly) {
  const form = { grant_type: 'password', username, password };
  if (readOnly) form.readOnly = 'true';
  return grant(form);
}

let refreshing = null;

/** One refresh grant at a time, shared by every request that found the token stale. */
function refresh() {
  const tokens = load();
  if (!tokens || !tokens.refresh) {
    return Promise.reject(new ApiError('Your session has ended. Please log in again.', 401));
  }
  if (!refreshing) {
    refreshing = grant({ grant_type: 'refresh_token', refresh_token: tokens.refresh }).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

function ended() {
  clearTokens();
  loggedOut();
  return new ApiError('Your session has ended. Please log in again.', 401);
}

/** `/api/v3{path}?query`, JSON-encoding array and object values (filter, sort, select). */
export function apiUrl(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  const search = params.toString();
  return BASE + path + (search ? '?' + search : '');
}

function requestId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function send(method, target, options, retried = false) {
  let tokens = load();
  if (!tokens) throw ended();
  if (Date.now() >= tokens.expiresAt) {
    try {
      await refresh();
    } catch {
      throw ended();
    }
    tokens = load();
  }
  const headers = { ...(options.headers || {}), Authorization: 'Bearer ' + tokens.access };
  let body = options.body;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  if (method !== 'GET' && !headers['X-Request-id']) headers['X-Request-id'] = requestId();
  const response = await fetch(target, { method, headers, body });
  if (response.status === 401 && !retried) {
    try {
      await refresh();
    } catch {
      throw ended();
    }
    // The refused call did nothing; send it again with the new token.
    return send(method, target, options, true);
  }
  return response;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const messages = ((body && body.errors) || []).map((e) => e && e.message).filter(Boolean);
  return new ApiError(
    messages.join(' ') || `The server answered HTTP ${response.status}.`,
    response.status,
    body,
  );
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A 202 answer's `Location` as a same-origin path (the server may spell it absolute). */
function actionPath(location) {
  const u = new URL(location, window.location.origin);
  return u.pathname;
}

/** Follows a 202 to its async action's result; other answers pass through (errors thrown). */
async function settle(response, onPending) {
  if (response.status !== 202) {
    if (!response.ok) throw await errorOf(response);
    return response;
  }
  const location = response.headers.get('Location');
  if (!location) throw new ApiError('The server accepted the request but gave no address to follow it.', 202);
  const action = actionPath(location);
  if (onPending) onPending();
  const started = Date.now();
  for (let delay = 200; Date.now() - started < POLL_LIMIT_MS; delay = Math.min(delay * 1.5, 2000)) {
    await sleep(delay);
    const poll = await send('GET', action, {});
    if (!poll.ok) throw await errorOf(poll);
    const info = (await poll.json()).data || {};
    if (info.status === 'running') continue;
    if (info.status === 'canceled') throw new ApiError('The operation was cancelled.', 409);
    const result = await send('GET', action + '/result', {});
    if (!result.ok) throw await errorOf(result);
    return result;
  }
  throw new ApiError('The operation is still running; check again later.', 202);
}

/**
 * One API call. Options: query (object), json (body), body (FormData...), headers, raw (return
 * the Response), onPending (called when the server turned the call into an async action).
 */
export async function request(method, path, options = {}) {
  const first = await send(method, apiUrl(path, options.query), options);
  const response = await settle(first, options.onPending);
  if (options.raw) return response;
  const text = await response.text();
  if (!text) return null;
  const body = JSON.parse(text);
  if (body && Array.isArray(body.errors) && body.errors.length && body.data === undefined) {
    throw new ApiError(body.errors.map((e) => e.message).join(' '), response.status, body);
  }
  return body;
}

export const get = (path, query) => request('GET', path, { query });

/** Every item of a paged collection (500 at a time). */
export async function getAll(path, query = {}, paged = true) {
  if (!paged) return (await get(path, query)).data || [];
  const items = [];
  for (let offset = 0; ; ) {
    const page = await get(path, { ...query, limit: 500, offset });
    const data = page.data || [];
    items.push(...data);
    offset += data.length;
    const total = page.meta && page.meta.pagingInfo ? page.meta.pagingInfo.total : offset;
    if (data.length === 0 || offset >= total) return items;
  }
}
