// The page's live stream, shared by every view: opportunity changes, analytics invalidations
// (with the position their figures must be re-read at) and resets. Views subscribe with
// on(type, fn) and get an unsubscribe function back. The header's indicator shows the state.
//
// One stream per browser, not per tab: a browser holds at most six connections to a host
// over HTTP/1.1, and each open stream keeps one. The tabs of the dashboard elect one of them
// with a Web Lock; it reads the stream and passes every event and its state on to the other
// tabs over a BroadcastChannel. When it closes, another tab takes the lock and resumes from
// the last event id it was given (Last-Event-ID), so no change is lost or seen twice. Without
// these APIs every tab reads a stream of its own.

import { openStream } from './stream.js';
import { notePosition, auth } from './api.js';

const LOCK = 'crm-pipeline.live-stream';
const bus = new EventTarget();
const channel = 'BroadcastChannel' in window ? new BroadcastChannel('crm-pipeline.live') : null;
const shared = Boolean(channel && navigator.locks);
let stream = null;
let state = 'connecting';
let lastId = '';
let release = null; // ends this tab's hold of the lock (it reads the stream)
let waiting = null; // aborts this tab's wait for the lock

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

function deliver(type, data) {
  if (type === 'analytics' && data && data.position) notePosition(data.position);
  bus.dispatchEvent(new CustomEvent(type, { detail: data }));
}

/** Reads the stream in this tab (and passes it on to the others). */
function read() {
  stream = openStream({
    query: { types: 'opportunity,analytics' },
    lastEventId: lastId,
    onStatus(st) {
      show(st);
      if (channel) channel.postMessage({ kind: 'status', state: st });
    },
    onId(id) {
      // Every id, with data or without (the stream's first block, heartbeats past filtered
      // changes), so a tab that takes over resumes exactly here.
      lastId = id;
      if (channel) channel.postMessage({ kind: 'id', id });
    },
    onEvent(type, data, id) {
      lastId = id || lastId;
      if (channel) channel.postMessage({ kind: 'event', type, data, id: lastId });
      deliver(type, data);
    },
  });
}

function stop() {
  if (stream) stream.close();
  stream = null;
  if (release) release();
  release = null;
  if (waiting) waiting.abort();
  waiting = null;
}

function start() {
  if (!shared) {
    read();
    return;
  }
  waiting = new AbortController();
  navigator.locks.request(LOCK, { signal: waiting.signal }, () => new Promise((resolve) => {
    waiting = null;
    release = resolve;
    read();
  })).catch((e) => { if (e.name !== 'AbortError') throw e; });
  channel.postMessage({ kind: 'hello' });
}

export function startLive() {
  if (channel) {
    channel.onmessage = (m) => {
      const msg = m.data || {};
      if (msg.kind === 'hello' && stream) channel.postMessage({ kind: 'status', state });
      if (stream) return; // this tab reads the stream itself
      if (msg.kind === 'status') show(msg.state);
      if (msg.kind === 'id') lastId = msg.id;
      if (msg.kind === 'event') {
        lastId = msg.id || lastId;
        deliver(msg.type, msg.data);
      }
    };
  }
  start();
  window.addEventListener('online', () => show(state));
  window.addEventListener('offline', () => show(state));
  auth.addEventListener('change', () => stream && stream.restart());
  // A page left for another keeps no stream and no lock (a page kept in the back/forward
  // cache would hold a connection); restored from that cache it reads its data again.
  window.addEventListener('pagehide', stop);
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    start();
    bus.dispatchEvent(new CustomEvent('reset', { detail: { reason: 'page_restored' } }));
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
