// The dashboard's shell: the login form, the navigation, and one page at a time in #view (the part after '#' in
// the address names it). Each page is a module whose mount(view, ctx) builds it; ctx.every() and ctx.onLeave()
// tie its timers and connections to it, so leaving the page stops them.
import { AuthError, credentials, get, keyName, logIn, logOut } from './api.js';
import { fill } from './dom.js';

const pages = {
  overview: () => import('./overview.js'),
  clients: () => import('./clients.js'),
  subscriptions: () => import('./lists.js').then((m) => ({ mount: m.mountSubscriptions })),
  topics: () => import('./lists.js').then((m) => ({ mount: m.mountTopics })),
  retained: () => import('./retained.js'),
  banned: () => import('./banned.js'),
  listeners: () => import('./lists.js').then((m) => ({ mount: m.mountListeners })),
  mqtt: () => import('./mqtt-client.js'),
};

const $ = (id) => document.getElementById(id);
let leave = [];
let generation = 0;

function showError(error) {
  if (error instanceof AuthError) {
    logOut();
    showLogin('The key was refused; log in again.');
    return;
  }
  const banner = $('error');
  banner.textContent = String(error?.message ?? error);
  banner.hidden = false;
}

function clearError() {
  $('error').hidden = true;
}

function showLogin(message = '') {
  stopPage();
  $('shell').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('login-form').elements.key.focus();
}

function stopPage() {
  for (const fn of leave) {
    try {
      fn();
    } catch {
      // a page's cleanup must not stop the next page
    }
  }
  leave = [];
}

async function route() {
  if (!credentials()) {
    showLogin();
    return;
  }
  $('login').hidden = true;
  $('shell').hidden = false;
  $('who').textContent = `key ${keyName()}`;
  let name = location.hash.slice(1);
  if (!(name in pages)) name = 'overview';
  for (const a of document.querySelectorAll('.side a')) a.classList.toggle('active', a.getAttribute('href') === `#${name}`);
  stopPage();
  clearError();
  const mine = ++generation;
  const view = fill($('view'));
  view.dataset.page = name;
  const ctx = {
    error: showError,
    onLeave: (fn) => leave.push(fn),
    every(ms, fn) {
      let running = false;
      const tick = async () => {
        if (running || mine !== generation) return;
        running = true;
        try {
          await fn();
        } catch (e) {
          showError(e);
        } finally {
          running = false;
        }
      };
      const id = setInterval(tick, ms);
      leave.push(() => clearInterval(id));
      tick();
    },
  };
  try {
    const page = await pages[name]();
    if (mine !== generation) return;
    await page.mount(view, ctx);
  } catch (e) {
    showError(e);
  }
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  logIn(form.elements.key.value.trim(), form.elements.secret.value);
  try {
    await get('/nodes');
  } catch (error) {
    logOut();
    $('login-error').textContent = error instanceof AuthError ? 'Wrong key or secret.' : String(error.message);
    return;
  }
  form.reset();
  route();
});

// Logging out ends everything the tab holds: the key, and the MQTT client page's connection and log.
$('logout').addEventListener('click', () => {
  logOut();
  location.hash = '';
  location.reload();
});

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => showError(e.reason));
route();
