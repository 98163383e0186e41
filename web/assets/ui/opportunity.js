// One deal: every field, the edit form (field errors from errors[] beside each field),
// probability and category overrides with "back to the stage default", the stage actions and
// the audit trail as a timeline. A change made elsewhere shows at once; while the form holds
// unsaved edits it is not overwritten: saving then meets the version conflict, which is
// shown with what changed, so neither side's change is lost silently.

import { h, announce, replace, clear } from './dom.js';
import { get, pipelines as loadPipelines, fxRates, enc, Problem } from './api.js';
import { money, date, dateTime, relative, CATEGORY_LABELS, EVENT_LABELS, fieldLabel, daysSince, today } from './format.js';
import { on } from './live.js';
import { toast, toastProblem } from './dialogs.js';
import { problemSlot, showProblem, clearErrors, problemText } from './forms.js';
import { dealForm, update, moveStage, closeWonDialog, closeLostDialog, reopenDialog, openStages, stageOf, isConflict } from './deals.js';

export async function mount(root, { params, query }) {
  const id = params[0];
  const page = new DealPage(root, id, query.get('edit') === '1');
  await page.load();
  return page;
}

const EDITABLE = ['name', 'accountId', 'ownerId', 'amount', 'currency', 'closeDate', 'nextStep', 'probabilityOverride', 'forecastCategoryOverride'];

class DealPage {
  constructor(root, id, edit) {
    this.root = root;
    this.id = id;
    this.editing = edit;
    this.opp = null;
    this.base = null; // the version the form was opened on
    this.ac = new AbortController();
    this.offs = [on('opportunity', (o) => { if (o && o.id === this.id) this.changed(o); })];
    this.el = h('section', { class: 'page page-deal', 'aria-labelledby': 'deal-title' }, h('p', { class: 'muted' }, 'Loading…'));
    root.append(this.el);
  }

  unmount() {
    this.ac.abort();
    this.offs.forEach((f) => f());
  }

  async load() {
    const [opp, pipes] = await Promise.all([
      get(`/opportunities/${enc(this.id)}`, null, { signal: this.ac.signal }),
      loadPipelines(),
    ]);
    this.pipes = pipes;
    this.opp = opp;
    this.render();
    await this.loadHistory();
  }

  async reload() {
    const opp = await get(`/opportunities/${enc(this.id)}`, null, { signal: this.ac.signal });
    this.changed(opp, true);
  }

  get pipeline() { return this.pipes.find((p) => p.id === this.opp.pipelineId); }

  stageName(id) { return stageOf(this.pipeline, id)?.name || id; }

  /** A newer state arrived (stream, reload, or a command's answer). */
  changed(o, force = false) {
    if (!force && this.opp && o.version <= this.opp.version) return;
    this.opp = o;
    const dirty = this.form && Object.keys(this.form.changes()).length > 0;
    if (this.editing && dirty) {
      this.renderView();
      replace(this.conflictNote, h('div', { class: 'banner banner-warn', role: 'status' },
        h('p', `This deal changed while you were editing (now version ${o.version}, you started from ${this.base.version}). Saving will show what changed first.`)));
    } else {
      this.render();
    }
    this.loadHistory();
  }

  render() {
    const o = this.opp;
    this.headEl = h('div');
    this.viewEl = h('div', { class: 'deal-main' });
    this.timelineEl = h('div', { class: 'panel', 'aria-labelledby': 'tl-title' }, h('h2', { id: 'tl-title' }, 'Audit trail'), h('p', { class: 'muted' }, 'Loading…'));
    this.conflictNote = h('div');
    replace(this.el, 
      h('nav', { 'aria-label': 'Breadcrumb' }, h('a', { href: `#/board?pipeline=${enc(o.pipelineId)}` }, `← ${this.pipeline?.name || o.pipelineId} board`)),
      this.headEl,
      h('div', { class: 'deal-layout' }, this.viewEl, this.timelineEl));
    this.renderView();
    if (this.editing) this.openForm(false);
  }

  renderView() {
    const o = this.opp;
    const st = stageOf(this.pipeline, o.stageId);
    const badges = [
      h('span', { class: ['badge', o.status !== 'open' && `badge-${o.status}`] }, o.status === 'open' ? st?.name || o.stageId : o.status === 'won' ? 'Won' : 'Lost'),
      o.status === 'open' ? h('span', { class: 'badge' }, CATEGORY_LABELS[o.forecastCategory] || o.forecastCategory) : null,
      o.status === 'open' && o.closeDate < today() ? h('span', { class: 'badge badge-lost' }, 'Close date passed') : null,
      o.status === 'open' && st?.staleAfterDays > 0 && daysSince(o.stageEnteredAt) > st.staleAfterDays ? h('span', { class: 'badge badge-lost' }, `Stale · ${daysSince(o.stageEnteredAt)} d`) : null,
    ];
    const actions = [];
    if (!this.editing) actions.push(h('button', { class: 'btn btn-primary', type: 'button', id: 'edit-deal', onclick: () => { this.editing = true; this.openForm(true); } }, 'Edit'));
    if (o.status === 'open') {
      const sel = h('select', { 'aria-label': 'Move to stage', id: 'move-stage' }, openStages(this.pipeline).map((s) => h('option', { value: s.id, selected: s.id === o.stageId }, s.name)));
      actions.push(h('span', { class: 'filter' }, sel),
        h('button', { class: 'btn', type: 'button', onclick: () => this.run(() => moveStage(this.opp, sel.value), `Moved to ${this.stageName(sel.value)}.`) }, 'Move'),
        h('button', { class: 'btn btn-won', type: 'button', onclick: () => this.dialog(closeWonDialog(this.opp), 'Closed won.') }, 'Mark won…'),
        h('button', { class: 'btn btn-lost', type: 'button', onclick: () => this.dialog(closeLostDialog(this.opp), 'Closed lost.') }, 'Mark lost…'));
    } else {
      actions.push(h('button', { class: 'btn', type: 'button', onclick: () => this.dialog(reopenDialog(this.opp, this.pipeline), 'Reopened.') }, 'Reopen…'));
    }
    replace(this.headEl, h('header', { class: 'deal-head' },
      h('div', { class: 'deal-title' },
        h('h1', { id: 'deal-title' }, o.name),
        h('p', { class: 'muted' }, `${o.account?.name || o.accountId} · ${money(o.amount, o.currency)} · closes ${date(o.closeDate)}`),
        h('div', { class: 'badges' }, badges)),
      h('div', { class: 'deal-actions' }, actions)));
    document.title = `${o.name} · Pipeline`;

    const ov = (label, value, override, clearKey, unit = '') => h('div', {},
      h('span', `${value}${unit}`),
      override
        ? h('span', { class: 'override-note' }, ` · set by hand by ${override.by} ${relative(override.at)} `,
          h('button', { class: 'btn btn-small', type: 'button', dataset: { reset: clearKey },
            onclick: () => this.run(() => update(this.opp, { [clearKey]: null }), `${label} back to the stage default.`) }, 'Back to the stage default'))
        : h('span', { class: 'override-note' }, ' · stage default'));
    const rows = [
      ['Name', o.name],
      ['Account', o.account ? `${o.account.name} (${o.accountId}) · ${o.account.segment || '—'} · ${o.account.region || '—'}` : o.accountId],
      ['Owner', o.ownerId],
      ['Pipeline', this.pipeline?.name || o.pipelineId],
      ['Stage', `${o.stageName || st?.name || o.stageId} since ${dateTime(o.stageEnteredAt)}`],
      ['Status', o.status],
      ['Amount', money(o.amount, o.currency)],
      ['Probability', ov('Probability', o.probability, o.probabilityOverride, 'probability', '%')],
      ['Forecast category', ov('Forecast category', CATEGORY_LABELS[o.forecastCategory] || o.forecastCategory, o.forecastCategoryOverride, 'forecastCategory')],
      ['Weighted amount', money(o.weightedAmount, o.currency)],
      ['Close date', `${date(o.closeDate)}${o.closeDatePushCount ? ` · pushed ${o.closeDatePushCount}×` : ''}`],
      ['Next step', o.nextStep || '—'],
      ['Lead', o.leadId || '—'],
      ['Source', o.source || '—'],
      o.status === 'lost' ? ['Loss reason', o.lossReason || '—'] : null,
      o.status === 'lost' ? ['Competitor', o.competitor || '—'] : null,
      o.status === 'lost' ? ['Loss note', o.lossNote || '—'] : null,
      ['Closed at', o.closedAt ? dateTime(o.closedAt) : '—'],
      ['Created', dateTime(o.createdAt)],
      ['Updated', `${dateTime(o.updatedAt)} (version ${o.version})`],
      ['Id', h('code', o.id)],
    ].filter(Boolean);
    const visits = h('table', {},
      h('caption', 'Stage history'),
      h('thead', h('tr', h('th', 'Stage'), h('th', 'Entered'), h('th', 'Left'))),
      h('tbody', (o.stageHistory || []).map((v) => h('tr',
        h('td', this.stageName(v.stageId)),
        h('td', `${dateTime(v.enteredAt)} by ${v.enteredBy}`),
        h('td', v.leftAt ? `${dateTime(v.leftAt)}${v.leftBy ? ` by ${v.leftBy}` : ''}` : 'now')))));
    replace(this.viewEl, 
      this.conflictNote,
      this.formHost || (this.formHost = h('div')),
      h('div', { class: 'panel', 'aria-labelledby': 'details-title' },
        h('h2', { id: 'details-title' }, 'Details'),
        h('dl', { class: 'props', id: 'deal-props' }, rows.map(([k, v]) => [h('dt', k), h('dd', { dataset: { prop: k } }, v)]))),
      h('div', { class: 'panel table-wrap' }, visits));
  }

  async openForm(focus = false) {
    let currencies = [];
    try { currencies = (await fxRates()).map((r) => r.currency); } catch { /* optional */ }
    this.base = this.opp;
    this.form = dealForm({ opp: this.opp, pipelines: this.pipes, currencies });
    const slot = problemSlot();
    const save = h('button', { class: 'btn btn-primary', type: 'submit', id: 'save-deal' }, 'Save changes');
    const cancel = h('button', { class: 'btn', type: 'button' }, 'Cancel');
    const formEl = h('form', { class: 'panel deal-form', novalidate: true, 'aria-labelledby': 'edit-title', id: 'deal-form' },
      h('h2', { id: 'edit-title' }, 'Edit deal'), slot, this.form.el, h('div', { class: 'form-actions' }, cancel, save));
    cancel.addEventListener('click', () => this.closeForm());
    formEl.addEventListener('submit', (e) => { e.preventDefault(); this.save(formEl, save); });
    replace(this.formHost, formEl);
    this.renderView();
    if (focus) this.form.controls.name.focus();
  }

  closeForm() {
    this.editing = false;
    this.form = null;
    this.base = null;
    clear(this.formHost);
    clear(this.conflictNote);
    this.renderView();
  }

  async save(formEl, btn) {
    const changes = this.form.changes();
    if (!Object.keys(changes).length) { this.closeForm(); return; }
    btn.disabled = true;
    clearErrors(formEl);
    try {
      const res = await update(this.base, changes);
      this.closeForm();
      if (res) this.changed(res);
      toast('Saved.');
      announce('Saved.');
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      if (isConflict(e)) await this.conflict(e, formEl, changes);
      else showProblem(formEl, e);
    } finally {
      btn.disabled = false;
    }
  }

  /**
   * A version conflict: say what the other change did and keep the user's edits. The form is
   * rebuilt on the latest version with the user's changed fields put back, so what it shows
   * is what saving would store; saving again is the user's decision.
   */
  async conflict(problem, formEl, mine) {
    let latest = this.opp;
    try { latest = await get(`/opportunities/${enc(this.id)}`); } catch { /* keep what we have */ }
    const base = this.base;
    this.opp = latest;
    const theirs = EDITABLE.filter((k) => JSON.stringify(latest[k]) !== JSON.stringify(base[k]));
    const fmt = (k, o) => (k.endsWith('Override') ? (o[k] ? String(o[k].value) : 'stage default') : String(o[k] ?? '—'));
    await this.openForm();
    for (const [k, v] of Object.entries(mine)) {
      const ctl = this.form.controls[k];
      if (ctl) ctl.value = v === null ? '' : String(v);
    }
    const list = h('ul', theirs.map((k) => h('li', h('strong', fieldLabel(k)), `: ${fmt(k, base)} → ${fmt(k, latest)}`)));
    const overwrite = h('button', { class: 'btn btn-primary', type: 'button', id: 'save-anyway' }, 'Save my changes on top');
    const discard = h('button', { class: 'btn', type: 'button' }, 'Discard mine, show theirs');
    replace(this.conflictNote, h('div', { class: 'banner banner-error', role: 'alert', id: 'conflict' },
      h('div', {},
        h('p', h('strong', 'Someone else changed this deal while you were editing. '),
          `Your changes (${Object.keys(mine).map(fieldLabel).join(', ')}) were not saved; they are still in the form, now on top of version ${latest.version}.`),
        h('p', theirs.length ? 'Their change:' : 'Their change touched the stage or the status.'),
        theirs.length ? list : null),
      h('div', { class: 'deal-actions' }, discard, overwrite)));
    discard.addEventListener('click', () => { this.closeForm(); this.render(); this.loadHistory(); });
    overwrite.addEventListener('click', () => {
      clear(this.conflictNote);
      this.formHost.querySelector('form').requestSubmit();
    });
    this.loadHistory();
    overwrite.focus();
  }

  async run(fn, done) {
    try {
      const res = await fn();
      if (res) this.changed(res);
      toast(done);
      announce(done);
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      toastProblem('Refused', e);
      if (isConflict(e)) this.reload();
    }
  }

  async dialog(promise, done) {
    const res = await promise;
    if (res && typeof res === 'object') this.changed(res);
    if (res) { toast(done); announce(done); }
  }

  async loadHistory() {
    const seq = (this.histSeq = (this.histSeq || 0) + 1);
    const items = [];
    let cursor = '';
    try {
      for (let i = 0; i < 20; i++) {
        const page = await get(`/opportunities/${enc(this.id)}/history`, { cursor }, { signal: this.ac.signal });
        items.push(...page.items);
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
    } catch (e) {
      if (e.name === 'AbortError' || seq !== this.histSeq) return;
      replace(this.timelineEl, h('h2', { id: 'tl-title' }, 'Audit trail'), h('p', { class: 'inline-problem' }, problemText(e)));
      return;
    }
    if (seq !== this.histSeq) return;
    this.renderTimeline(items);
  }

  renderTimeline(items) {
    const list = h('ol', { class: 'timeline', id: 'timeline' });
    for (const ev of [...items].reverse()) {
      const cls = ev.type === 'OpportunityClosedWonEvent' ? 'ev-won' : ev.type === 'OpportunityClosedLostEvent' ? 'ev-lost' : '';
      const fields = Object.entries(ev.changes || {});
      const moved = ev.fromStageId || ev.toStageId
        ? h('p', { class: 'ev-stage' }, ev.fromStageId ? `${this.stageName(ev.fromStageId)} → ${this.stageName(ev.toStageId)}` : `Into ${this.stageName(ev.toStageId)}`)
        : null;
      list.append(h('li', { class: cls, dataset: { version: String(ev.version) } },
        h('div', { class: 'ev-head' },
          h('span', { class: 'ev-title' }, `${EVENT_LABELS[ev.type] || ev.type} · by ${ev.actor || '—'}`),
          h('time', { class: 'ev-when', datetime: ev.at, title: dateTime(ev.at) }, `${dateTime(ev.at)} · v${ev.version}`)),
        moved,
        fields.length ? h('table', { class: 'ev-changes' },
          h('thead', h('tr', h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
          h('tbody', fields.map(([k, c]) => h('tr',
            h('th', { scope: 'row' }, fieldLabel(k)),
            h('td', { class: 'before' }, c.before ?? '—'),
            h('td', { class: 'after' }, c.after ?? '—'))))) : null));
    }
    replace(this.timelineEl, h('h2', { id: 'tl-title' }, 'Audit trail'),
      h('p', { class: 'muted' }, `${items.length} ${items.length === 1 ? 'change' : 'changes'}, newest first.`), list);
  }
}
