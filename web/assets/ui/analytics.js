// Analytics: win/loss (rates, loss reasons, competitors, deal size, cycle), the funnel with
// conversion per stage, velocity, pipeline changes and the stale deals, for one pipeline
// (the funnel needs one) and optionally one owner, over a period.

import { h, debounce, replace } from './dom.js';
import { get, pipelines as loadPipelines, owners as loadOwners, reportingCurrency, enc, Problem } from './api.js';
import { money, count, rate, date, shortDate } from './format.js';
import { on, touches } from './live.js';
import { problemText } from './forms.js';
import { hbars, funnel } from './charts.js';
import { segmented, periodOf, periodPicker, ownerSelect } from './controls.js';

const deals = (n) => `${count(n)} ${n === 1 ? 'deal' : 'deals'}`;
const fig = (label, value, sub, id) => h('div', { class: 'figure', dataset: id ? { fig: id } : undefined },
  h('dt', label), h('dd', value, sub ? h('div', { class: 'sub' }, sub) : null));

export async function mount(root, { query, setQuery }) {
  const [pipes, currency] = await Promise.all([loadPipelines(), reportingCurrency()]);
  const state = {
    period: periodOf(query),
    pipelineId: query.get('pipeline') || (pipes.find((p) => p.id === 'default') || pipes[0] || {}).id || 'default',
    ownerId: query.get('owner') || '',
    velocityDays: Number(query.get('days')) || 90,
  };
  const push = (patch) => {
    Object.assign(state, patch);
    const p = state.period;
    setQuery({ period: p.kind, from: p.kind === 'custom' ? p.from : '', to: p.kind === 'custom' ? p.to : '',
      pipeline: state.pipelineId, owner: state.ownerId, days: state.velocityDays === 90 ? '' : String(state.velocityDays) });
  };
  let owners = [];
  try { owners = await loadOwners(state.pipelineId); } catch { /* optional */ }
  const pipeSel = h('select', { id: 'a-pipeline', 'aria-label': 'Pipeline' }, pipes.map((p) => h('option', { value: p.id, selected: p.id === state.pipelineId }, p.name)));
  pipeSel.addEventListener('change', () => push({ pipelineId: pipeSel.value }));

  const panels = {
    winloss: h('section', { class: 'panel', 'aria-labelledby': 'wl-title', id: 'panel-winloss' }),
    funnel: h('section', { class: 'panel', 'aria-labelledby': 'fn-title', id: 'panel-funnel' }),
    velocity: h('section', { class: 'panel', 'aria-labelledby': 'vel-title', id: 'panel-velocity' }),
    changes: h('section', { class: 'panel', 'aria-labelledby': 'ch-title', id: 'panel-changes' }),
    stale: h('section', { class: 'panel table-wrap', 'aria-labelledby': 'st-title', id: 'panel-stale' }),
  };
  const note = h('p', { class: 'muted' });
  root.append(h('section', { class: 'page page-analytics', 'aria-labelledby': 'an-title' },
    h('header', { class: 'page-head' },
      h('div', { class: 'page-title' }, h('h1', { id: 'an-title' }, 'Analytics'), note),
      h('div', { class: 'filters' },
        periodPicker(state.period, [['this', 'This quarter'], ['last', 'Last quarter'], ['last30', 'Last 30 days'], ['custom', 'Custom']],
          (p) => push({ period: p.kind === 'custom' ? p : periodOf(new URLSearchParams({ period: p.kind })) })),
        h('label', { class: 'filter' }, h('span', 'Pipeline'), pipeSel),
        ownerSelect(owners, state.ownerId, (o) => push({ ownerId: o })))),
    h('div', { class: 'grid-2' }, panels.winloss, panels.changes),
    panels.funnel,
    h('div', { class: 'grid-2' }, panels.velocity, panels.stale)));

  const ac = new AbortController();
  const base = () => ({ pipelineId: state.pipelineId, ownerId: state.ownerId });
  const period = () => ({ from: state.period.from, to: state.period.to });

  const fail = (el, title, e) => {
    if (e.name === 'AbortError') return;
    if (!(e instanceof Problem)) throw e;
    replace(el, h('h2', title), h('p', { class: 'inline-problem', role: 'alert' }, problemText(e)));
  };

  async function winLoss() {
    const el = panels.winloss;
    try {
      const w = await get('/analytics/win-loss', { ...base(), ...period() }, { signal: ac.signal });
      const c = w.currency;
      replace(el, 
        h('h2', { id: 'wl-title' }, 'Win / loss'),
        h('dl', { class: 'figures' },
          fig('Win rate', rate(w.winRateByCount), `by amount ${rate(w.winRateByAmount)}`, 'win-rate'),
          fig('Won', money(w.won.amount, c), deals(w.won.count), 'won'),
          fig('Lost', money(w.lost.amount, c), deals(w.lost.count), 'lost'),
          fig('Average won deal', money(w.avgDealSizeWon, c), null, 'avg-deal'),
          fig('Average cycle', `${w.avgCycleDaysWon} days`, 'created to won', 'cycle')),
        h('h3', { class: 'sub-title' }, 'Loss reasons'),
        hbars({ items: w.lossReasons.map((r) => ({ label: r.reason, value: r.count, title: `${r.count} · ${money(r.amount, c)}` })), label: 'Lost deals by reason', cls: 'fill-lost', host: el }),
        w.competitors.length ? h('table', {},
          h('caption', 'Lost to competitors'),
          h('thead', h('tr', h('th', { scope: 'col' }, 'Competitor'), h('th', { scope: 'col', class: 'num' }, 'Deals'), h('th', { scope: 'col', class: 'num' }, 'Amount'))),
          h('tbody', w.competitors.map((x) => h('tr', h('th', { scope: 'row' }, x.competitor), h('td', { class: 'num' }, count(x.count)), h('td', { class: 'num' }, money(x.amount, c)))))) : null);
    } catch (e) { fail(el, 'Win / loss', e); }
  }

  async function funnelPanel() {
    const el = panels.funnel;
    try {
      const f = await get('/analytics/funnel', { ...base(), ...period() }, { signal: ac.signal });
      const open = f.stages.filter((s) => s.status === 'open');
      replace(el, 
        h('h2', { id: 'fn-title' }, 'Funnel'),
        funnel({ stages: open.map((s) => ({ label: s.stageName, value: s.entered, note: `${rate(s.conversionRate)} moved on` })), label: 'Deals entering each open stage and the share that moved on', host: el }),
        h('div', { class: 'table-wrap' }, h('table', { id: 'funnel-table' },
          h('caption', 'Per stage: entered, then what happened to those stays'),
          h('thead', h('tr', ['Stage', 'Entered', 'Advanced', 'Won', 'Lost', 'Regressed', 'Conversion', 'Avg days'].map((t, i) => h('th', { scope: 'col', class: i ? 'num' : '' }, t)))),
          h('tbody', f.stages.map((s) => h('tr', { dataset: { stage: s.stageId } },
            h('th', { scope: 'row' }, s.stageName),
            [s.entered, s.advanced, s.won, s.lost, s.regressed].map((n) => h('td', { class: 'num' }, count(n))),
            h('td', { class: 'num' }, rate(s.conversionRate)),
            h('td', { class: 'num' }, s.avgDaysInStage)))))));
    } catch (e) { fail(el, 'Funnel', e); }
  }

  async function velocity() {
    const el = panels.velocity;
    try {
      const v = await get('/analytics/velocity', { ...base(), days: state.velocityDays }, { signal: ac.signal });
      replace(el, 
        h('div', { class: 'panel-head' }, h('h2', { id: 'vel-title' }, 'Velocity'),
          segmented('Window', [[30, '30 d'], [90, '90 d'], [180, '180 d']], state.velocityDays, (d) => push({ velocityDays: d }), 'vel-days')),
        h('dl', { class: 'figures' },
          fig('Per day', money(v.velocityPerDay, v.currency), `${date(v.from)} – ${date(v.to)}`, 'velocity'),
          fig('Open deals', count(v.openCount)),
          fig('Win rate', rate(v.winRate), `${count(v.wonCount)} won · ${count(v.lostCount)} lost`),
          fig('Average won deal', money(v.avgDealSizeWon, v.currency)),
          fig('Average cycle', `${v.avgCycleDaysWon} days`)),
        h('p', { class: 'muted' }, 'Open deals × win rate × average won deal ÷ average cycle.'));
    } catch (e) { fail(el, 'Velocity', e); }
  }

  async function changes() {
    const el = panels.changes;
    try {
      const c = await get('/analytics/changes', { ...base(), ...period() }, { signal: ac.signal });
      const ca = (label, x, id) => fig(label, count(x.count), money(x.amount, c.currency), id);
      replace(el, 
        h('h2', { id: 'ch-title' }, 'Pipeline changes'),
        h('dl', { class: 'figures' },
          ca('Created', c.created, 'created'), ca('Won', c.won), ca('Lost', c.lost), ca('Reopened', c.reopened),
          ca('Close date pushed', c.closeDatePushed), ca('Close date pulled in', c.closeDatePulled),
          ca('Amount increased', c.amountIncreased), ca('Amount decreased', c.amountDecreased),
          fig('Currency changed', count(c.currencyChanged.count))));
    } catch (e) { fail(el, 'Pipeline changes', e); }
  }

  async function stale() {
    const el = panels.stale;
    try {
      const s = await get('/analytics/stale', base(), { signal: ac.signal });
      replace(el, 
        h('h2', { id: 'st-title' }, `Stale deals (${count(s.items.length)})`),
        s.items.length ? h('table', { id: 'stale-table' },
          h('caption', { class: 'sr-only' }, 'Open deals longer in their stage than the stage allows, most stale first'),
          h('thead', h('tr', ['Deal', 'Owner', 'Stage', 'Days in stage', 'Amount', 'Close date'].map((t, i) => h('th', { scope: 'col', class: i >= 3 ? 'num' : '' }, t)))),
          h('tbody', s.items.slice(0, 200).map((d) => h('tr',
            h('th', { scope: 'row' }, h('a', { href: `#/opportunity/${enc(d.id)}` }, d.name)),
            h('td', d.ownerId), h('td', d.stageName),
            h('td', { class: 'num' }, `${d.daysInStage} (limit ${d.staleAfterDays})`),
            h('td', { class: 'num' }, money(d.amount, d.currency)),
            h('td', { class: 'num' }, shortDate(d.closeDate)))))) : h('p', { class: 'muted' }, 'No deal has sat in its stage too long.'));
    } catch (e) { fail(el, 'Stale deals', e); }
  }

  async function load() {
    note.textContent = `${date(state.period.from)} – ${date(state.period.to)} · ${currency}`;
    await Promise.all([winLoss(), funnelPanel(), velocity(), changes(), stale()]);
    root.dataset.ready = 'true';
  }

  const again = debounce(load, 150);
  const offs = [on('analytics', (ev) => { if (touches(ev, base())) again(); })];
  await load();
  return { unmount() { ac.abort(); offs.forEach((f) => f()); }, reload: load };
}
