// The page's one live stream, shared by every view: opportunity changes, analytics
// invalidations (with the position their figures must be re-read at) and resets. Views
// subscribe with on(type, fn) and get an unsubscribe function back. The header's indicator
// shows the stream's state.

import { openStream } from './stream.js';
import { notePosition, auth } from './api.js';

const bus = new EventTarget();
let stream = null;
let state = 'connecting';

const LABELS = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  unavailable: 'Live updates unavailable',
  offline: 'Offline',
};

function show(next) {
  state = next;
  const el = document.getElementById('live');
  if (!el) return;
  const shown = !navigator.onLine && next !== 'live' ? 'offline' : next;
  el.dataset.state = shown;
  el.querySelector('.live-text').textContent = LABELS[shown] || shown;
  el.title = shown === 'live'
    ? 'Changes made anywhere show here within a second.'
    : shown === 'unavailable'
      ? 'This service has no live stream; reload to see changes.'
      : 'The live stream is reconnecting; what you see may be behind.';
  bus.dispatchEvent(new CustomEvent('status', { detail: shown }));
}

export function liveState() { return state; }

/** on('opportunity' | 'analytics' | 'reset' | 'status', fn(detail)) → unsubscribe. */
export function on(type, fn) {
  const h = (e) => fn(e.detail);
  bus.addEventListener(type, h);
  return () => bus.removeEventListener(type, h);
}

export function startLive() {
  if (stream) return;
  open();
  window.addEventListener('online', () => show(state));
  window.addEventListener('offline', () => show(state));
  auth.addEventListener('change', () => stream && stream.restart());
  // A page left for another keeps no stream open (a page kept in the back/forward cache would
  // hold its connection, and the browser's few connections per host with it); coming back
  // from that cache, the page reads its data again and reopens the stream.
  window.addEventListener('pagehide', () => {
    if (stream) stream.close();
    stream = null;
  });
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted || stream) return;
    open();
    bus.dispatchEvent(new CustomEvent('reset', { detail: { reason: 'page_restored' } }));
  });
}

function open() {
  stream = openStream({
    query: { types: 'opportunity,analytics' },
    onStatus: show,
    onEvent(type, data) {
      if (type === 'analytics' && data && data.position) notePosition(data.position);
      bus.dispatchEvent(new CustomEvent(type, { detail: data }));
    },
  });
}

/** Whether an analytics event touches figures of pipelineId / ownerId / [from, to]. */
export function touches(ev, { pipelineId, ownerId, from, to } = {}) {
  if (!ev) return true;
  if (pipelineId && Array.isArray(ev.pipelineIds) && ev.pipelineIds.length && !ev.pipelineIds.includes(pipelineId)) return false;
  if (ownerId && Array.isArray(ev.ownerIds) && ev.ownerIds.length && !ev.ownerIds.includes(ownerId)) return false;
  const d = ev.dates;
  if (d && from && to && d.from && d.to && (d.to < from || d.from > to)) return false;
  return true;
}
