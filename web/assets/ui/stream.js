// The live stream (GET /api/v1/stream, text/event-stream) read with fetch() and a stream
// reader instead of EventSource: EventSource cannot send an Authorization header, and the
// token must never go into a URL. This is the EventSource algorithm of the HTML standard in
// small: events are dispatched on blank lines, "id:" sets the id sent back as Last-Event-ID
// when reconnecting, "retry:" the reconnection delay, lines starting with ":" are comments
// (the server's heartbeats). A stream silent for 40 s (heartbeats come at least every 15 s)
// is taken for dead and reopened.

import { BASE, authHeader, askToken, auth } from './api.js';

const SILENCE_MS = 40000;
const UNAVAILABLE_RETRY_MS = 30000;

/**
 * openStream({query, onEvent(type, data, id), onStatus(state), lastEventId}) → {close(), restart()};
 * lastEventId resumes after an event another tab received.
 * States: connecting, live, reconnecting, unavailable (the service has no stream).
 */
export function openStream({ query = {}, onEvent, onStatus, onId, lastEventId = '' }) {
  let closed = false;
  let ctrl = null;
  let lastId = lastEventId;
  let retryMs = 1000;
  let failures = 0;
  let wake = null; // resolves the current wait early (close, online)
  let immediate = false; // restart(): reconnect without a pause
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString();
  const url = `${BASE}/stream${qs ? `?${qs}` : ''}`;

  const wait = (ms) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    wake = () => { clearTimeout(t); resolve(); };
  });
  const online = () => wake && wake();
  window.addEventListener('online', online);

  async function connectOnce() {
    ctrl = new AbortController();
    let silence = null;
    const arm = () => {
      clearTimeout(silence);
      silence = setTimeout(() => ctrl.abort(), SILENCE_MS);
    };
    try {
      const headers = { Accept: 'text/event-stream', ...authHeader() };
      if (lastId) headers['Last-Event-ID'] = lastId;
      arm();
      const res = await fetch(url, { headers, signal: ctrl.signal, cache: 'no-store', credentials: 'omit' });
      if (res.status === 401) {
        clearTimeout(silence);
        ctrl.abort();
        return (await askToken('This service needs an access token.')) ? 'retry-now' : 'needs-token';
      }
      if (res.status === 404 || res.status === 405) {
        clearTimeout(silence);
        ctrl.abort();
        return 'unavailable';
      }
      const ctype = res.headers.get('Content-Type') || '';
      if (!res.ok || !ctype.startsWith('text/event-stream') || !res.body) {
        clearTimeout(silence);
        ctrl.abort();
        return 'failed';
      }
      failures = 0;
      onStatus('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      let type = '';
      let data = [];
      let id = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        buf += value;
        let nl;
        // Lines end with \n, \r\n or \r; a lone \r at the end of the buffer may be half a \r\n.
        while ((nl = buf.search(/\r\n|\n|\r(?!$)/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
          if (line === '') {
            if (id !== null) {
              lastId = id;
              if (onId) onId(id);
            }
            if (data.length) {
              const text = data.join('\n');
              let parsed = text;
              try { parsed = JSON.parse(text); } catch { /* not JSON: hand the text over */ }
              try { onEvent(type || 'message', parsed, lastId); } catch (e) { reportError(e); }
            }
            type = '';
            data = [];
            id = null;
            continue;
          }
          if (line.startsWith(':')) continue; // heartbeat
          const colon = line.indexOf(':');
          const name = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? '' : line.slice(colon + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (name === 'event') type = val;
          else if (name === 'data') data.push(val);
          else if (name === 'id' && !val.includes('\0')) id = val;
          else if (name === 'retry' && /^\d+$/.test(val)) retryMs = Math.min(Number(val), 60000);
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError' && e.name !== 'TypeError') reportError(e);
    } finally {
      clearTimeout(silence);
    }
    return 'failed';
  }

  (async () => {
    onStatus('connecting');
    while (!closed) {
      const outcome = await connectOnce();
      if (closed) break;
      if (outcome === 'retry-now' || immediate) {
        immediate = false;
        continue;
      }
      if (outcome === 'needs-token') {
        // The user declined: wait for a token (auth change) rather than asking again.
        onStatus('reconnecting');
        await new Promise((resolve) => {
          const done = () => { auth.removeEventListener('change', done); resolve(); };
          auth.addEventListener('change', done);
          wake = done;
        });
        continue;
      }
      if (outcome === 'unavailable') {
        onStatus('unavailable');
        await wait(UNAVAILABLE_RETRY_MS);
        continue;
      }
      onStatus('reconnecting');
      failures++;
      const backoff = Math.min(retryMs * 2 ** Math.min(failures - 1, 4), 15000);
      await wait(backoff / 2 + Math.random() * (backoff / 2));
    }
  })();

  return {
    close() {
      closed = true;
      window.removeEventListener('online', online);
      if (ctrl) ctrl.abort();
      if (wake) wake();
    },
    /** Drops the connection and reconnects now (after a new token, say). */
    restart() {
      immediate = true;
      if (ctrl) ctrl.abort();
      if (wake) wake();
    },
  };
}
