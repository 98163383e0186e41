// The pipeline board: one column per stage of the chosen pipeline, each paged from
// GET /opportunities?pipelineId&stageId&ownerId&limit (never every card at once), the
// board's totals from GET /forecast (the server's exact, converted figures). Cards move by
// drag and drop, by keyboard (Space picks a card up, arrows choose the column, Space drops,
// Escape cancels) or through the card's actions; a refusal puts the card back and shows the
// problem's field errors on it. Changes from the stream move, add and drop cards in place.

import { h, announce, $$, replace, clear } from './dom.js';
import { get, pipelines as loadPipelines, owners as loadOwners, reportingCurrency, fxRates, Problem, ALL_FROM, ALL_TO } from './api.js';
import { money, moneyShort, count, shortDate, date, today, daysSince, CATEGORY_LABELS, fieldLabel } from './format.js';
import { on, touches } from './live.js';
import { toast, toastProblem, modal } from './dialogs.js';
import { problemText, problemBanner } from './forms.js';
import { moveStage, reopen, closeWonDialog, closeLostDialog, newDealDialog, openStages, stageOf, isConflict } from './deals.js';

const PAGE = 25;
const DND_TYPE = 'application/x-crm-opportunity';
// Remembered per build of the dashboard (its assets' version is in this module's URL), so a
// new binary asks again.
const NO_STAGE_TOTALS = `crm-pipeline.no-stage-totals.${(import.meta.url.match(/\/ui\/([0-9a-f]{16})\//) || [])[1] || 'dev'}`;

export async function mount(root, { query, setQuery }) {
  const all = await loadPipelines();
  const pipeline = all.find((p) => p.id === query.get('pipeline')) || all.find((p) => p.id === 'default') || all[0];
  const owner = query.get('owner') || '';
  if (!pipeline) {
    root.append(h('section', { class: 'page' }, h('h1', 'Pipeline board'), h('p', 'No pipeline is configured yet. Add one in Settings.')));
    return {};
  }
  const board = new Board(root, { all, pipeline, owner, setQuery });
  await board.load();
  return board;
}

class Board {
  constructor(root, { all, pipeline, owner, setQuery }) {
    this.root = root;
    this.all = all;
    this.pipeline = pipeline;
    this.owner = owner;
    this.setQuery = setQuery;
    this.columns = new Map(); // stageId -> Column
    this.byId = new Map(); // opportunity id -> {opp, column}
    this.pending = new Map(); // id -> stageId of a move in flight
    this.lifted = null; // keyboard move: {id, index}
    this.ac = new AbortController();
    this.offs = [
      on('opportunity', (o) => this.apply(o)),
      on('analytics', (ev) => { if (touches(ev, { pipelineId: this.pipeline.id, ownerId: this.owner })) this.refreshTotals(); }),
    ];
    this.render();
  }

  unmount() {
    this.ac.abort();
    this.offs.forEach((f) => f());
    for (const c of this.columns.values()) c.io.disconnect();
  }

  render() {
    const pipelineSel = h('select', { id: 'board-pipeline', 'aria-label': 'Pipeline' },
      this.all.map((p) => h('option', { value: p.id, selected: p.id === this.pipeline.id }, p.name)));
    pipelineSel.addEventListener('change', () => this.setQuery({ pipeline: pipelineSel.value, owner: this.owner }));
    this.ownerSel = h('select', { id: 'board-owner', 'aria-label': 'Owner' }, h('option', { value: '' }, 'All owners'),
      this.owner ? h('option', { value: this.owner, selected: true }, this.owner) : null);
    this.ownerSel.addEventListener('change', () => this.setQuery({ pipeline: this.pipeline.id, owner: this.ownerSel.value }));
    const newBtn = h('button', { class: 'btn btn-primary', type: 'button', id: 'new-deal' }, '+ New deal');
    newBtn.addEventListener('click', () => this.newDeal());

    this.summary = h('div', { class: 'summary', 'aria-label': 'Board totals', role: 'group' }, h('p', { class: 'muted' }, 'Loading totals…'));
    this.boardEl = h('div', { class: 'board', id: 'board' });
    const openIds = openStages(this.pipeline).map((s) => s.id);
    for (const st of this.pipeline.stages) {
      const col = new Column(this, st, openIds.includes(st.id));
      this.columns.set(st.id, col);
      this.boardEl.append(col.el);
    }
    this.root.append(h('section', { class: 'page page-board', 'aria-labelledby': 'board-title' },
      h('header', { class: 'page-head' },
        h('div', { class: 'page-title' }, h('h1', { id: 'board-title' }, 'Pipeline board'),
          h('p', { class: 'muted' }, `${this.pipeline.name} · all close dates`)),
        h('div', { class: 'filters' },
          h('label', { class: 'filter' }, h('span', 'Pipeline'), pipelineSel),
          h('label', { class: 'filter' }, h('span', 'Owner'), this.ownerSel),
          newBtn)),
      this.summary,
      h('p', { id: 'kbd-help', class: 'sr-only' },
        'Deal card. Press Space to pick it up, Left and Right arrows to choose a column, Space to drop it there, Escape to cancel. Enter opens the deal; the actions button offers moving, winning and losing.'),
      this.boardEl));
  }

  async load() {
    const signal = this.ac.signal;
    performance.mark('board:load');
    const cols = [...this.columns.values()].map((c) => c.loadMore(signal));
    await Promise.allSettled([this.refreshTotals(), ...cols]);
    this.root.dataset.ready = 'true';
    performance.mark('board:ready');
    document.body.dataset.boardReady = String(performance.now());
    await this.fillOwners();
  }

  async reload() {
    for (const c of this.columns.values()) c.reset();
    this.byId.clear();
    await this.load();
  }

  async fillOwners() {
    try {
      const list = await loadOwners(this.pipeline.id);
      const keep = this.owner;
      replace(this.ownerSel, h('option', { value: '' }, 'All owners'),
        ...[...new Set([...list, keep].filter(Boolean))].sort().map((o) => h('option', { value: o, selected: o === keep }, o)));
    } catch (e) {
      if (e.name === 'AbortError') return;
      // The owners come from the forecast, which needs every FX rate; without one, the owners
      // of the cards on the board are offered.
      if (!(e instanceof Problem)) throw e;
      const seen = new Set([...this.byId.values()].map((x) => x.opp.ownerId));
      if (this.owner) seen.add(this.owner);
      replace(this.ownerSel, h('option', { value: '' }, 'All owners'),
        ...[...seen].sort().map((o) => h('option', { value: o, selected: o === this.owner }, o)));
    }
  }

  /**
   * The board's totals, and each column's, from GET /forecast over all close dates. The
   * per-column figures need the forecast grouped by stage; a service without that grouping
   * answers 400 naming groupBy, which this browser remembers for this build of the dashboard, and the columns then show
   * what the loaded cards say exactly (see Column.renderHead).
   */
  async refreshTotals() {
    if (this.totalsBusy) { this.totalsAgain = true; return; }
    this.totalsBusy = true;
    const q = { pipelineId: this.pipeline.id, ownerId: this.owner, from: ALL_FROM, to: ALL_TO };
    try {
      do {
        this.totalsAgain = false;
        let f = null;
        if (localStorage.getItem(NO_STAGE_TOTALS) !== '1') {
          try {
            f = await get('/forecast', { ...q, groupBy: 'stage' }, { signal: this.ac.signal });
          } catch (e) {
            if (!(e instanceof Problem && e.status === 400 && e.errors.some((x) => x.field === 'groupBy'))) throw e;
            localStorage.setItem(NO_STAGE_TOTALS, '1');
          }
        }
        if (!f) f = await get('/forecast', q, { signal: this.ac.signal });
        this.stageFigures = f.groups.length && localStorage.getItem(NO_STAGE_TOTALS) !== '1'
          ? { currency: f.currency, byStage: new Map(f.groups.map((g) => [g.key, g])), total: f.total } : null;
        this.renderSummary(f);
        for (const c of this.columns.values()) c.renderHead();
      } while (this.totalsAgain);
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(this.summary, e instanceof Problem ? problemBanner(e, 'No board totals') : h('p', { class: 'inline-problem', role: 'alert' }, String(e)));
    } finally {
      this.totalsBusy = false;
    }
  }

  renderSummary(f) {
    const t = f.total;
    const tile = (label, m, cls, note) => h('div', { class: ['tile', cls] },
      h('p', { class: 'tile-label' }, label),
      h('p', { class: 'tile-value', title: money(m.amount, f.currency) }, moneyShort(m.amount, f.currency)),
      h('p', { class: 'tile-sub' }, `${count(m.count)} ${m.count === 1 ? 'deal' : 'deals'}${note ? ` · ${note(m)}` : ''}`));
    replace(this.summary, 
      tile('Open pipeline', t.open, 'tile-open', (m) => `${moneyShort(m.weighted, f.currency)} weighted`),
      tile('Commit forecast', t.commitForecast, 'tile-commit', () => 'won + commit'),
      tile('Best-case forecast', t.bestCaseForecast, 'tile-best', () => 'won + commit + best case'),
      tile('Closed won', t.closedWon, 'tile-won'),
      h('p', { class: 'summary-note muted' }, `Server figures in ${f.currency}, all close dates.`));
    this.summary.dataset.currency = f.currency;
  }

  /** Applies an opportunity as it is now (a write's answer or a stream event). */
  apply(o) {
    if (!o || !o.id) return;
    const known = this.byId.get(o.id);
    if (known && known.opp.version >= o.version) return;
    if (this.pending.has(o.id)) {
      // Our own move is in flight: its answer decides; keep the newest state for then.
      this.pending.set(o.id, { ...this.pending.get(o.id), latest: o });
      return;
    }
    const target = o.pipelineId === this.pipeline.id && (!this.owner || o.ownerId === this.owner) ? this.columns.get(o.stageId) : null;
    if (known && known.column !== target) known.column.remove(o.id);
    if (target) target.upsert(o);
    else this.byId.delete(o.id);
  }

  // --- moving cards ------------------------------------------------------------------------

  /** Moves the card of id to stage stageId through the command that stage needs. */
  async move(id, stageId) {
    const known = this.byId.get(id);
    if (!known || this.pending.has(id)) return;
    const { opp, column: from } = known;
    const to = this.columns.get(stageId);
    if (!to || to === from) return;
    const st = to.stage;
    if (st.status === 'won' || st.status === 'lost') {
      if (opp.status !== 'open') {
        toast(`“${opp.name}” is closed; reopen it into an open stage first.`, { kind: 'error' });
        return;
      }
      const res = await (st.status === 'won' ? closeWonDialog(opp) : closeLostDialog(opp));
      if (res && typeof res === 'object') this.apply(res);
      if (res) this.refreshTotals();
      this.focusCard(id);
      return;
    }
    // An open stage: optimistic move, put back on refusal.
    const card = from.cardEl(id);
    const anchor = card ? card.parentElement.nextElementSibling : null;
    from.clearError(id);
    if (card) {
      to.placeOptimistic(card.parentElement, id);
      card.classList.add('pending');
      card.setAttribute('aria-busy', 'true');
    }
    this.pending.set(id, { stageId });
    from.renderHead();
    to.renderHead();
    try {
      const res = opp.status === 'open' ? await moveStage(opp, stageId) : await reopen(opp, stageId);
      const latest = this.pending.get(id)?.latest;
      this.pending.delete(id);
      if (card) { card.classList.remove('pending'); card.removeAttribute('aria-busy'); }
      from.items.delete(id);
      if (res) {
        known.column = to;
        this.apply(res);
        announce(`Moved ${opp.name} to ${st.name}.`);
      } else {
        known.column = to; // accepted, not applied yet: the stream brings the outcome
        if (latest) this.apply(latest);
      }
      this.refreshTotals();
    } catch (e) {
      const latest = this.pending.get(id)?.latest;
      this.pending.delete(id);
      if (card) {
        card.classList.remove('pending');
        card.removeAttribute('aria-busy');
        from.putBack(card.parentElement, anchor);
      }
      from.renderHead();
      to.renderHead();
      if (!(e instanceof Problem)) throw e;
      from.showError(id, e, st);
      const what = isConflict(e) ? 'It was changed by someone else meanwhile' : 'Refused';
      toastProblem(`“${opp.name}” stays in ${from.stage.name}. ${what}`, e);
      announce(`${opp.name} could not move to ${st.name}: ${problemText(e)}`);
      if (latest) this.apply(latest);
      if (isConflict(e)) this.refetch(id);
      this.focusCard(id);
    }
  }

  async refetch(id) {
    try {
      const o = await get(`/opportunities/${encodeURIComponent(id)}`);
      this.apply(o);
    } catch { /* the stream will bring it */ }
  }

  focusCard(id) {
    for (const c of this.columns.values()) {
      const el = c.cardEl(id);
      if (el) { el.focus(); return; }
    }
  }

  async newDeal() {
    let currencies = [];
    try {
      currencies = [await reportingCurrency(), ...(await fxRates()).map((r) => r.currency)];
    } catch { /* the form has its own list */ }
    const owners = [...this.ownerSel.options].map((o) => o.value).filter(Boolean);
    const res = await newDealDialog({ pipelines: this.all, pipelineId: this.pipeline.id, owners, currencies: [...new Set(currencies)] });
    if (res && typeof res === 'object') {
      this.apply(res);
      toast(`Created “${res.name}”.`);
      announce(`Created ${res.name} in ${res.stageName || res.stageId}.`);
      this.refreshTotals();
      this.focusCard(res.id);
    }
  }

  async actions(id) {
    const known = this.byId.get(id);
    if (!known) return;
    const { opp } = known;
    let choice = null;
    let dlg = null;
    const pick = (c) => () => { choice = c; dlg.querySelector('form').requestSubmit(); };
    const buttons = [];
    if (opp.status === 'open') {
      for (const st of openStages(this.pipeline)) {
        if (st.id !== opp.stageId) buttons.push(h('button', { type: 'button', class: 'btn', onclick: pick({ stageId: st.id }) }, `Move to ${st.name}`));
      }
      const won = this.pipeline.stages.find((s) => s.status === 'won');
      const lost = this.pipeline.stages.find((s) => s.status === 'lost');
      if (won) buttons.push(h('button', { type: 'button', class: 'btn btn-won', onclick: pick({ stageId: won.id }) }, 'Mark won…'));
      if (lost) buttons.push(h('button', { type: 'button', class: 'btn btn-lost', onclick: pick({ stageId: lost.id }) }, 'Mark lost…'));
    } else {
      for (const st of openStages(this.pipeline)) {
        buttons.push(h('button', { type: 'button', class: 'btn', onclick: pick({ stageId: st.id }) }, `Reopen into ${st.name}`));
      }
    }
    buttons.push(h('a', { class: 'btn', href: `#/opportunity/${encodeURIComponent(id)}` }, 'Open deal'));
    const p = modal({
      title: opp.name,
      description: `${stageOf(this.pipeline, opp.stageId)?.name || opp.stageId} · ${money(opp.amount, opp.currency)}`,
      body: h('div', { class: 'action-list' }, buttons),
      submitLabel: 'Close',
      onSubmit: async () => choice,
      onOpen(d, submit) {
        dlg = d;
        submit.hidden = true;
        d.querySelector('a.btn')?.addEventListener('click', () => d.close());
        d.querySelector('.action-list button')?.focus();
      },
    });
    const c = await p;
    if (c && c.stageId) await this.move(id, c.stageId);
    else this.focusCard(id);
  }

  // --- keyboard ----------------------------------------------------------------------------

  keydown(e, id, column) {
    if (e.target !== e.currentTarget) return; // the link and the button inside handle their own keys
    const cols = [...this.columns.values()];
    const lifted = this.lifted && this.lifted.id === id;
    if (e.key === ' ' || (lifted && e.key === 'Enter')) {
      e.preventDefault();
      if (!lifted) {
        this.lift(id, cols.indexOf(column));
      } else {
        const target = cols[this.lifted.index];
        this.drop();
        if (target !== column) this.move(id, target.stage.id);
        else announce('Dropped where it was.');
      }
      return;
    }
    if (lifted && (e.key === 'ArrowRight' || e.key === 'ArrowLeft')) {
      e.preventDefault();
      const next = this.lifted.index + (e.key === 'ArrowRight' ? 1 : -1);
      if (next >= 0 && next < cols.length) {
        this.lifted.index = next;
        this.markTarget(cols[next]);
        announce(`${cols[next].stage.name}${next === cols.indexOf(column) ? ' (where it is now)' : ''}. Space to drop.`);
      }
      return;
    }
    if (lifted && e.key === 'Escape') {
      e.preventDefault();
      this.drop();
      announce('Move cancelled.');
      return;
    }
    if (e.key === 'Enter') {
      location.hash = `#/opportunity/${encodeURIComponent(id)}`;
      return;
    }
    // Moving the focus around the board.
    const cards = column.cardEls();
    const i = cards.findIndex((c) => c.dataset.id === id);
    let to = null;
    if (e.key === 'ArrowDown') to = cards[i + 1];
    if (e.key === 'ArrowUp') to = cards[i - 1];
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const step = e.key === 'ArrowRight' ? 1 : -1;
      for (let j = cols.indexOf(column) + step; j >= 0 && j < cols.length && !to; j += step) {
        to = cols[j].cardEls()[Math.min(i, cols[j].cardEls().length - 1)];
      }
    }
    if (to) { e.preventDefault(); to.focus(); }
  }

  lift(id, index) {
    this.drop();
    this.lifted = { id, index };
    const known = this.byId.get(id);
    const el = known && known.column.cardEl(id);
    if (el) el.classList.add('lifted');
    this.markTarget([...this.columns.values()][index]);
    announce(`Picked up ${known ? known.opp.name : id} in ${[...this.columns.values()][index].stage.name}. Left and Right arrows choose a column, Space drops, Escape cancels.`);
  }

  drop() {
    if (!this.lifted) return;
    for (const el of $$('.card.lifted', this.boardEl)) el.classList.remove('lifted');
    this.markTarget(null);
    this.lifted = null;
  }

  markTarget(col) {
    for (const c of this.columns.values()) c.el.classList.toggle('drop-target', c === col);
  }
}

class Column {
  constructor(board, stage, open) {
    this.board = board;
    this.stage = stage;
    this.open = open;
    this.cursor = '';
    this.complete = false;
    this.loading = false;
    this.items = new Map(); // id -> opp, the loaded cards of this column
    const titleId = `col-${stage.id}`;
    this.countEl = h('span', { class: 'col-count' }, '…');
    this.moneyEl = h('p', { class: 'col-money' });
    this.list = h('ol', { class: 'cards', 'aria-labelledby': titleId });
    this.more = h('button', { class: 'btn btn-quiet load-more', type: 'button', hidden: true }, 'Show more');
    this.more.addEventListener('click', () => this.loadMore(board.ac.signal));
    this.empty = h('p', { class: 'col-empty muted', hidden: true }, this.open ? 'No deals in this stage.' : 'None yet.');
    this.el = h('section', {
      class: ['column', `column-${stage.status}`], dataset: { stage: stage.id }, 'aria-labelledby': titleId,
    },
    h('header', { class: 'column-head' },
      h('h2', { id: titleId }, h('span', { class: 'col-name' }, stage.name), this.countEl),
      h('p', { class: 'col-meta' }, stage.status === 'open'
        ? `${stage.probability}% · ${CATEGORY_LABELS[stage.forecastCategory] || stage.forecastCategory}${stage.staleAfterDays ? ` · stale ${stage.staleAfterDays} d` : ''}`
        : stage.status === 'won' ? 'Drop here to close won' : 'Drop here to close lost'),
      this.moneyEl),
    this.body = h('div', { class: 'col-body' }, this.empty, this.list, this.more));
    // Drag and drop onto the column.
    this.el.addEventListener('dragover', (e) => {
      if (!e.dataTransfer.types.includes(DND_TYPE)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'move';
      board.markTarget(this);
    });
    this.el.addEventListener('dragleave', (e) => {
      if (!this.el.contains(e.relatedTarget)) this.el.classList.remove('drop-target');
    });
    this.el.addEventListener('drop', (e) => {
      const id = e.dataTransfer.getData(DND_TYPE);
      if (!id) return;
      e.preventDefault();
      board.markTarget(null);
      board.move(id, this.stage.id);
    });
    // Paging as the column scrolls.
    // The button sits at the end of the column's own scroll box: it comes near the view only
    // when the user scrolls down the column, and then the next page is read.
    this.io = new IntersectionObserver((entries) => {
      if (entries.some((x) => x.isIntersecting) && !this.complete && !this.loading) this.loadMore(board.ac.signal);
    }, { root: this.body, rootMargin: '0px 0px 300px 0px' });
    this.io.observe(this.more);
  }

  reset() {
    this.cursor = '';
    this.complete = false;
    this.items.clear();
    clear(this.list);
  }

  async loadMore(signal) {
    if (this.loading || this.complete) return;
    this.loading = true;
    this.more.disabled = true;
    this.more.textContent = 'Loading…';
    try {
      const page = await get('/opportunities', {
        pipelineId: this.board.pipeline.id, stageId: this.stage.id, ownerId: this.board.owner,
        limit: PAGE, cursor: this.cursor,
      }, { signal });
      for (const o of page.items) {
        const known = this.board.byId.get(o.id);
        if (known && known.opp.version >= o.version) continue;
        if (known && known.column !== this) known.column.remove(o.id);
        this.upsert(o, true);
      }
      this.cursor = page.nextCursor || this.cursor;
      this.complete = !page.nextCursor;
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(this.moneyEl, h('span', { class: 'inline-problem', role: 'alert' }, problemText(e)));
    } finally {
      this.loading = false;
      this.more.disabled = false;
      this.more.textContent = 'Show more';
      this.renderHead();
    }
  }

  /** The last id loaded: a card with a later id belongs to a page not read yet. */
  covers(id) {
    return this.complete || (this.cursor !== '' && id <= this.cursor);
  }

  upsert(o, fromPage = false) {
    const existing = this.items.has(o.id);
    if (!existing && !fromPage && !this.covers(o.id)) {
      this.board.byId.delete(o.id); // it will come with its page
      this.renderHead();
      return;
    }
    this.items.set(o.id, o);
    this.board.byId.set(o.id, { opp: o, column: this });
    const li = this.renderCard(o);
    const old = this.cardEl(o.id);
    if (old) {
      const hadFocus = document.activeElement === old;
      old.parentElement.replaceWith(li);
      if (hadFocus) li.firstChild.focus();
    } else {
      this.insertSorted(li, o.id);
    }
    if (!fromPage) this.renderHead();
  }

  insertSorted(li, id) {
    const after = [...this.list.children].find((x) => x.dataset.id > id);
    this.list.insertBefore(li, after || null);
  }

  placeOptimistic(li, id) {
    this.insertSorted(li, id);
  }

  putBack(li, anchor) {
    if (anchor && anchor.parentElement === this.list) this.list.insertBefore(li, anchor);
    else this.insertSorted(li, li.dataset.id);
  }

  remove(id) {
    this.items.delete(id);
    const el = this.cardEl(id);
    if (el) el.parentElement.remove();
    this.renderHead();
  }

  cardEl(id) {
    return this.list.querySelector(`.card[data-id="${CSS.escape(id)}"]`);
  }

  cardEls() {
    return [...this.list.querySelectorAll('.card')];
  }

  /**
   * The column's count and money: the server's figures of the stage (the forecast grouped by
   * stage, in the reporting currency) when the service has them. Without them, and only
   * when the column is loaded whole, the exact sums of the server's own per-deal figures, per
   * currency (nothing is converted in the browser); a longer column says how many are loaded.
   */
  renderHead() {
    const n = this.list.children.length;
    this.empty.hidden = n > 0 || !this.complete;
    this.more.hidden = this.complete;
    const server = this.board.stageFigures;
    if (server) {
      // groupBy=stage groups the open deals; a pipeline's one won stage holds every won deal
      // (the total's closedWon), its lost stage every lost one when it has only one.
      const lostStages = this.board.pipeline.stages.filter((x) => x.status === 'lost').length;
      const g = server.byStage.get(this.stage.id);
      const zero = { count: 0, amount: '0', weighted: '0' };
      let m = g ? g.open : zero;
      if (this.stage.status === 'won') m = server.total.closedWon;
      if (this.stage.status === 'lost') m = lostStages === 1 ? server.total.closedLost : null;
      if (m) {
        this.countEl.textContent = count(m.count);
        this.countEl.title = `${m.count} ${m.count === 1 ? 'deal' : 'deals'}`;
        this.moneyEl.title = `${money(m.amount, server.currency)} total, ${money(m.weighted, server.currency)} weighted`;
        replace(this.moneyEl, h('span', { class: 'col-amount' }, moneyShort(m.amount, server.currency)),
          this.stage.status === 'open' ? h('span', { class: 'col-weighted' }, ` · ${moneyShort(m.weighted, server.currency)} weighted`) : null);
        return;
      }
    }
    if (!this.complete) {
      this.countEl.textContent = `${count(n)}+`;
      this.countEl.title = `${n} loaded; more below`;
      clear(this.moneyEl);
      return;
    }
    this.countEl.textContent = count(n);
    this.countEl.title = `${n} ${n === 1 ? 'deal' : 'deals'}`;
    const opps = [...this.list.querySelectorAll('.card')].map((c) => this.items.get(c.dataset.id)).filter(Boolean);
    const byCurrency = new Map();
    for (const o of opps) {
      const e = byCurrency.get(o.currency) || { amounts: [], weighted: [] };
      e.amounts.push(o.amount);
      e.weighted.push(o.weightedAmount);
      byCurrency.set(o.currency, e);
    }
    const sums = [...byCurrency.entries()].map(([cur, e]) => ({ cur, amount: sumDecimal(e.amounts), weighted: sumDecimal(e.weighted) }));
    this.moneyEl.title = sums.map((x) => `${money(x.amount, x.cur)} total, ${money(x.weighted, x.cur)} weighted`).join('; ');
    replace(this.moneyEl,
      h('span', { class: 'col-amount' }, sums.map((x) => moneyShort(x.amount, x.cur)).join(' + ')),
      this.stage.status === 'open' && sums.length === 1 ? h('span', { class: 'col-weighted' }, ` · ${moneyShort(sums[0].weighted, sums[0].cur)} weighted`) : null);
  }

  renderCard(o) {
    const nameId = `card-${o.id}`;
    const st = this.stage;
    const flags = [];
    if (o.status === 'open' && st.staleAfterDays > 0) {
      const days = daysSince(o.stageEnteredAt);
      if (days > st.staleAfterDays) flags.push(h('span', { class: 'flag flag-stale', title: `${days} days in ${st.name}; stale after ${st.staleAfterDays}` }, `Stale · ${days} d`));
    }
    if (o.status === 'open' && o.closeDate < today()) {
      flags.push(h('span', { class: 'flag flag-overdue', title: `Close date ${date(o.closeDate)} has passed` }, 'Close date passed'));
    }
    if (o.probabilityOverride || o.forecastCategoryOverride) {
      flags.push(h('span', { class: 'flag flag-override', title: 'Probability or category set by hand' }, 'Override'));
    }
    const menu = h('button', { class: 'card-menu', type: 'button', 'aria-label': `Actions for ${o.name}`, 'aria-haspopup': 'dialog' }, '⋯');
    menu.addEventListener('click', () => this.board.actions(o.id));
    const card = h('article', {
      class: ['card', o.status !== 'open' && `card-${o.status}`], tabindex: '0', draggable: 'true',
      dataset: { id: o.id, version: String(o.version) }, 'aria-labelledby': nameId, 'aria-describedby': 'kbd-help',
    },
    h('div', { class: 'card-top' },
      h('h3', { class: 'card-name' }, h('a', { href: `#/opportunity/${encodeURIComponent(o.id)}`, id: nameId, draggable: 'false' }, o.name)),
      menu),
    h('p', { class: 'card-account' }, o.account?.name || o.accountId),
    h('p', { class: 'card-amount' },
      h('span', { class: 'amount' }, money(o.amount, o.currency)),
      o.status === 'open' ? h('span', { class: 'card-prob' }, ` · ${o.probability}%`) : null),
    h('p', { class: 'card-meta' },
      h('span', { class: 'card-owner', title: 'Owner' }, o.ownerId),
      h('span', { class: 'card-close', title: o.status === 'open' ? 'Close date' : 'Closed' }, h('time', { datetime: o.closeDate }, shortDate(o.closeDate)))),
    flags.length ? h('p', { class: 'flags' }, flags) : null,
    o.status === 'lost' && o.lossReason ? h('p', { class: 'card-reason' }, `Lost: ${o.lossReason}${o.competitor ? ` → ${o.competitor}` : ''}`) : null);
    card.addEventListener('dragstart', (e) => {
      e.dataTransfer.setData(DND_TYPE, o.id);
      e.dataTransfer.setData('text/plain', o.name);
      e.dataTransfer.effectAllowed = 'move';
      card.classList.add('dragging');
    });
    card.addEventListener('dragend', () => { card.classList.remove('dragging'); this.board.markTarget(null); });
    card.addEventListener('keydown', (e) => this.board.keydown(e, o.id, this.board.byId.get(o.id)?.column || this));
    card.addEventListener('blur', () => { if (this.board.lifted?.id === o.id) { this.board.drop(); } });
    return h('li', { class: 'card-item', dataset: { id: o.id } }, card);
  }

  showError(id, problem, target) {
    const card = this.cardEl(id);
    if (!card) return;
    this.clearError(id);
    const fields = (problem.errors || []).map((e) => h('li', h('strong', fieldLabel(e.field)), ' ', e.message));
    const close = h('button', { type: 'button', class: 'card-error-close', 'aria-label': 'Dismiss' }, '×');
    const box = h('div', { class: 'card-error', role: 'alert' },
      h('p', `Not moved to ${target.name}: ${problem.title}`),
      fields.length ? h('ul', fields) : (problem.detail ? h('p', problem.detail) : null),
      problem.code === 'required_fields_missing'
        ? h('a', { href: `#/opportunity/${encodeURIComponent(id)}?edit=1` }, 'Fill them in') : null,
      close);
    close.addEventListener('click', () => { box.remove(); card.focus(); });
    card.append(box);
  }

  clearError(id) {
    const card = this.cardEl(id);
    const box = card && card.querySelector('.card-error');
    if (box) box.remove();
  }
}

/** Exact sum of decimal strings with the same number of fraction digits (one currency). */
export function sumDecimal(values) {
  let digits = 0;
  for (const v of values) digits = Math.max(digits, (String(v).split('.')[1] || '').length);
  let total = 0n;
  for (const v of values) {
    const s = String(v);
    const neg = s.startsWith('-');
    const [i, f = ''] = (neg ? s.slice(1) : s).split('.');
    const n = BigInt(i + f.padEnd(digits, '0'));
    total += neg ? -n : n;
  }
  const neg = total < 0n;
  let t = (neg ? -total : total).toString().padStart(digits + 1, '0');
  if (digits) t = `${t.slice(0, -digits)}.${t.slice(-digits)}`;
  return (neg ? '-' : '') + t;
}
