// The dashboard's shell: a hash router over the pages (#/board, #/opportunity/<id>,
// #/forecast, #/analytics, #/settings), the live stream and its indicator, the token prompt.
// Filters live in the hash's query (#/board?pipeline=default&owner=ann), so a reload or a
// shared link shows the same view; the URL never holds a token.

import { h, clear } from './dom.js';
import { setTokenPrompt, hasToken, signOut, auth, Problem } from './api.js';
import { tokenPrompt, toast } from './dialogs.js';
import { problemText } from './forms.js';
import { startLive, on } from './live.js';
import * as board from './board.js';


const pages = {
  board: { title: 'Board', load: async () => board },
  opportunity: { title: 'Deal', load: () => import('./opportunity.js') },
  forecast: { title: 'Forecast', load: () => import('./forecast.js') },
  analytics: { title: 'Analytics', load: () => import('./analytics.js') },
  settings: { title: 'Settings', load: () => import('./settings.js') },
};

let current = null;
let generation = 0;
let first = true;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const name = pages[parts[0]] ? parts[0] : 'board';
  return { name, params: parts.slice(1), query: new URLSearchParams(qs) };
}

function setQuery(values) {
  const { name, params } = parseHash();
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v) q.set(k, v);
  const qs = q.toString();
  location.hash = `#/${[name, ...params.map(encodeURIComponent)].join('/')}${qs ? `?${qs}` : ''}`;
}

async function route() {
  const gen = ++generation;
  const { name, params, query } = parseHash();
  if (current && current.unmount) current.unmount();
  current = null;
  const main = document.getElementById('main');
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === (name === 'opportunity' ? 'board' : name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${pages[name].title} · Pipeline`;
  clear(main);
  main.dataset.page = name;
  delete main.dataset.ready;
  const holder = h('div', { class: 'page-host' });
  main.append(holder);
  try {
    const mod = await pages[name].load();
    if (gen !== generation) return;
    const page = await mod.mount(holder, { params, query, setQuery });
    if (gen !== generation) { if (page && page.unmount) page.unmount(); return; }
    current = page || {};
    main.dataset.ready = 'true';
    if (!first) main.focus({ preventScroll: true });
    first = false;
  } catch (e) {
    if (gen !== generation || e.name === 'AbortError') return;
    clear(holder);
    holder.append(h('section', { class: 'page' },
      h('h1', 'This page could not load'),
      h('p', { class: 'inline-problem', role: 'alert' }, e instanceof Problem ? problemText(e) : String(e && e.message || e)),
      h('p', h('button', { class: 'btn', type: 'button', onclick: () => route() }, 'Try again'))));
    main.dataset.ready = 'error';
    if (!(e instanceof Problem)) throw e;
  }
}

function init() {
  setTokenPrompt(tokenPrompt);
  const out = document.getElementById('signout');
  out.hidden = !hasToken();
  out.addEventListener('click', () => {
    signOut();
    out.hidden = true;
    toast('Signed out. The token is gone from this browser.');
    route();
  });
  auth.addEventListener('change', () => { out.hidden = !hasToken(); });
  window.addEventListener('hashchange', route);
  // A reset (the service's state was rebuilt, or the stream could not resume): what the page
  // shows may be wrong, so it is read again.
  on('reset', () => {
    if (current && current.reload) current.reload();
    else route();
  });
  startLive();
  route();
}

init();
