// The forecast: a period (this quarter, next quarter, custom), grouped by owner, month or
// category; the exclusive categories (pipeline, best case, commit, closed won) and the
// cumulative rollups (commit and best-case forecast) as a table and a stacked bar chart, in
// the chosen currency; the rolling 30/60/90 days. Every figure is the server's; a currency
// without an FX rate shows the problem instead of any figure.

import { h, debounce, replace, clear } from './dom.js';
import { get, pipelines as loadPipelines, owners as loadOwners, reportingCurrency, fxRates, Problem } from './api.js';
import { money, moneyShort, count, monthKey, date, CATEGORY_LABELS } from './format.js';
import { on, touches } from './live.js';
import { problemBanner } from './forms.js';
import { stackedBars } from './charts.js';
import { segmented, periodOf, periodPicker, pipelineSelect, ownerSelect, currencySelect } from './controls.js';

const SERIES = [
  { key: 'closedWon', cls: 'fill-won', label: 'Closed won', sw: 'sw-won' },
  { key: 'commit', cls: 'fill-commit', label: 'Commit', sw: 'sw-commit' },
  { key: 'bestCase', cls: 'fill-best', label: 'Best case', sw: 'sw-best' },
  { key: 'pipeline', cls: 'fill-pipeline', label: 'Pipeline', sw: 'sw-pipeline' },
];
const deals = (n) => `${count(n)} ${n === 1 ? 'deal' : 'deals'}`;
const CAT_KEYS = { open: 'Open', pipeline: 'Pipeline', bestCase: 'Best case', commit: 'Commit', closedWon: 'Closed won', closedLost: 'Closed lost' };

export async function mount(root, { query, setQuery }) {
  const [pipes, reporting, rates] = await Promise.all([loadPipelines(), reportingCurrency(), fxRates().catch(() => [])]);
  const state = {
    period: periodOf(query),
    groupBy: ['owner', 'month', 'category'].includes(query.get('groupBy')) ? query.get('groupBy') : 'owner',
    currency: query.get('currency') || reporting,
    pipelineId: query.get('pipeline') || '',
    ownerId: query.get('owner') || '',
    measure: query.get('measure') === 'weighted' ? 'weighted' : 'amount',
  };
  const push = (patch) => {
    Object.assign(state, patch);
    const p = state.period;
    setQuery({
      period: p.kind, from: p.kind === 'custom' ? p.from : '', to: p.kind === 'custom' ? p.to : '',
      groupBy: state.groupBy, currency: state.currency === reporting ? '' : state.currency,
      pipeline: state.pipelineId, owner: state.ownerId, measure: state.measure === 'weighted' ? 'weighted' : '',
    });
  };
  let owners = [];
  try { owners = await loadOwners(state.pipelineId); } catch { /* the filter lists the chosen one only */ }

  const problemEl = h('div', { id: 'forecast-problem' });
  const chartEl = h('div', { class: 'panel', 'aria-labelledby': 'fc-chart-title' });
  const tableEl = h('div', { class: 'panel table-wrap' });
  const rollingEl = h('div', { class: 'rolling', role: 'group', 'aria-label': 'Rolling forecast' });
  const headNote = h('p', { class: 'muted' });
  root.append(h('section', { class: 'page page-forecast', 'aria-labelledby': 'fc-title' },
    h('header', { class: 'page-head' },
      h('div', { class: 'page-title' }, h('h1', { id: 'fc-title' }, 'Forecast'), headNote),
      h('div', { class: 'filters' },
        periodPicker(state.period, [['this', 'This quarter'], ['next', 'Next quarter'], ['custom', 'Custom']], (p) => push({ period: { ...p, ...(p.kind === 'custom' ? {} : periodOf(new URLSearchParams({ period: p.kind }))) } })),
        h('div', { class: 'filter' }, h('span', 'Group by'), segmented('Group by', [['owner', 'Owner'], ['month', 'Month'], ['category', 'Category']], state.groupBy, (g) => push({ groupBy: g }), 'groupby')),
        currencySelect(reporting, rates, state.currency, (c) => push({ currency: c })),
        pipelineSelect(pipes, state.pipelineId, (p) => push({ pipelineId: p })),
        ownerSelect(owners, state.ownerId, (o) => push({ ownerId: o })),
        h('div', { class: 'filter' }, h('span', 'Show'), segmented('Measure', [['amount', 'Amount'], ['weighted', 'Weighted']], state.measure, (m) => push({ measure: m }), 'measure')))),
    problemEl, rollingEl, chartEl, tableEl));

  const ac = new AbortController();
  const common = () => ({ pipelineId: state.pipelineId, ownerId: state.ownerId, currency: state.currency });

  async function load() {
    const p = state.period;
    headNote.textContent = `${p.label ? `${p.label}: ` : ''}${date(p.from)} – ${date(p.to)} · close dates · ${state.currency}`;
    try {
      const [f, ...rolling] = await Promise.all([
        get('/forecast', { ...common(), from: p.from, to: p.to, groupBy: state.groupBy }, { signal: ac.signal }),
        ...[30, 60, 90].map((days) => get('/forecast/rolling', { ...common(), days }, { signal: ac.signal })),
      ]);
      clear(problemEl);
      renderRolling(rolling);
      renderChart(f);
      renderTable(f);
      root.dataset.ready = 'true';
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (!(e instanceof Problem)) throw e;
      // Never a wrong figure: without the rate there is nothing to show but the problem.
      clear(rollingEl);
      clear(chartEl);
      clear(tableEl);
      const banner = problemBanner(e);
      banner.id = 'forecast-error';
      replace(problemEl, banner);
      root.dataset.ready = 'problem';
    }
  }

  function pick(m) { return state.measure === 'weighted' ? m.weighted : m.amount; }

  function renderRolling(list) {
    replace(rollingEl, ...list.map((f, i) => {
      const t = f.total;
      const days = [30, 60, 90][i];
      return h('div', { class: 'tile', dataset: { days: String(days) } },
        h('p', { class: 'tile-label' }, `Next ${days} days`),
        h('p', { class: 'tile-value', title: money(t.commitForecast.amount, f.currency) }, moneyShort(pick(t.commitForecast), f.currency)),
        h('p', { class: 'tile-sub' }, `commit forecast · best case ${moneyShort(pick(t.bestCaseForecast), f.currency)} · ${count(t.open.count)} open`));
    }));
  }

  function label(key) {
    if (state.groupBy === 'month') return monthKey(key);
    if (state.groupBy === 'category') return CAT_KEYS[key] || CATEGORY_LABELS[key] || key;
    return key;
  }

  function renderChart(f) {
    let groups;
    if (state.groupBy === 'category') {
      // One bar per exclusive category, in forecast order.
      groups = SERIES.map((se) => {
        const g = f.groups.find((x) => x.key === se.key);
        const m = g ? g[se.key] : { amount: '0', weighted: '0' };
        return { label: se.label, parts: [{ key: se.key, value: Number(pick(m)), title: money(pick(m), f.currency) }] };
      });
    } else {
      groups = f.groups.map((g) => ({
        label: label(g.key),
        parts: SERIES.map((se) => ({ key: se.key, value: Number(pick(g[se.key])), title: money(pick(g[se.key]), f.currency) })),
      }));
    }
    replace(chartEl, 
      h('div', { class: 'panel-head' }, h('h2', { id: 'fc-chart-title' }, `By ${state.groupBy}`),
        h('p', { class: 'muted' }, 'Bars stack the exclusive categories; the stack up to commit is the commit forecast, up to best case the best-case forecast.')),
      stackedBars({ groups, series: SERIES, host: chartEl, label: `Forecast by ${state.groupBy} in ${f.currency}, ${state.measure}` }),
      h('ul', { class: 'legend' }, SERIES.map((se) => h('li', h('span', { class: ['swatch', se.sw] }), se.label))));
  }

  function renderTable(f) {
    const cols = [
      ['pipeline', 'Pipeline'], ['bestCase', 'Best case'], ['commit', 'Commit'], ['closedWon', 'Closed won'],
      ['commitForecast', 'Commit forecast'], ['bestCaseForecast', 'Best-case forecast'], ['closedLost', 'Closed lost'], ['open', 'Open'],
    ];
    const cell = (m, k) => h('td', { class: 'num', title: deals(m.count), dataset: { col: k, amount: pick(m), count: String(m.count) } },
      money(pick(m), f.currency), h('br'), h('span', { class: 'muted' }, deals(m.count)));
    const row = (key, figs, foot) => h('tr', { dataset: { key } }, h(foot ? 'td' : 'th', { scope: 'row' }, key), cols.map(([k]) => cell(figs[k], k)));
    replace(tableEl, h('table', { id: 'forecast-table' },
      h('caption', `Forecast by ${state.groupBy} (${state.measure}) in ${f.currency}, ${date(f.from)} – ${date(f.to)}`),
      h('thead', h('tr', h('th', { scope: 'col' }, state.groupBy === 'none' ? '' : `${state.groupBy[0].toUpperCase()}${state.groupBy.slice(1)}`),
        cols.map(([, t]) => h('th', { scope: 'col', class: 'num' }, t)))),
      h('tbody', f.groups.length ? f.groups.map((g) => row(label(g.key), g)) : h('tr', h('td', { colspan: cols.length + 1, class: 'muted' }, 'No deals close in this period.'))),
      h('tfoot', row('Total', f.total, true))));
  }

  const again = debounce(load, 120);
  const offs = [
    on('analytics', (ev) => { if (touches(ev, { pipelineId: state.pipelineId, ownerId: state.ownerId })) again(); }),
  ];
  await load();
  return {
    unmount() { ac.abort(); offs.forEach((f) => f()); },
    reload: load,
  };
}
