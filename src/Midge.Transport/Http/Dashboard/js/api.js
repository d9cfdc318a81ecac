// The management API, called with the key the user logged in with (HTTP Basic, docs/http-api.md). The key and
// secret are kept in sessionStorage: they last as long as the tab, and every call sends them.

const storageKey = 'midge.credentials';

/** Thrown when the API refuses the key: the app goes back to the login form. */
export class AuthError extends Error {}

export function credentials() {
  return sessionStorage.getItem(storageKey);
}

export function keyName() {
  const pair = credentials();
  return pair ? pair.slice(0, pair.indexOf(':')) : '';
}

export function logIn(key, secret) {
  sessionStorage.setItem(storageKey, `${key}:${secret}`);
}

export function logOut() {
  sessionStorage.removeItem(storageKey);
}

function basic(pair) {
  const bytes = new TextEncoder().encode(pair);
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return `Basic ${btoa(text)}`;
}

/**
 * Calls /api/v5 + path. Answers the parsed JSON (null for 204); throws AuthError on 401 and an Error with the API's
 * message on any other failure.
 */
export async function api(method, path, body) {
  const headers = { 'X-Requested-With': 'midge-dashboard' };
  const pair = credentials();
  if (pair) headers.Authorization = basic(pair);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`/api/v5${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  if (response.status === 204) return null;
  let json = null;
  try {
    json = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  if (response.status === 401) throw new AuthError(json?.message ?? 'the key was refused');
  if (!response.ok) throw new Error(json?.message ?? `${method} ${path}: HTTP ${response.status}`);
  return json;
}

export const get = (path) => api('GET', path);
export const del = (path) => api('DELETE', path);
export const post = (path, body) => api('POST', path, body);

/** Builds a query string from the fields that have a value. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : '';
}

/** A client id or topic as one path segment ('/' included). */
export const segment = (text) => encodeURIComponent(text);
