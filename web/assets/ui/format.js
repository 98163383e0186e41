// Formatting of the API's figures. Money arrives as exact decimal text ("12500.00") and is
// shown exactly: the integer part goes through Intl as a BigInt, the fraction digits are the
// API's own. Dates are calendar dates in UTC, as the service counts them.

const nfCache = new Map();
function currencyFormat(currency, digits, compact) {
  const key = `${currency}|${digits}|${compact}`;
  let nf = nfCache.get(key);
  if (!nf) {
    try {
      nf = compact
        ? new Intl.NumberFormat(undefined, { style: 'currency', currency, notation: 'compact', maximumFractionDigits: 1 })
        : new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits });
    } catch {
      nf = null;
    }
    nfCache.set(key, nf);
  }
  return nf;
}

/** money("12500.00", "USD") → "$12,500.00", exactly. */
export function money(amount, currency) {
  if (amount === null || amount === undefined || amount === '') return '—';
  const text = String(amount);
  const neg = text.startsWith('-');
  const [ip, fp = ''] = (neg ? text.slice(1) : text).split('.');
  const nf = currency && /^\d+$/.test(ip) ? currencyFormat(currency, fp.length, false) : null;
  if (!nf) return `${text} ${currency || ''}`.trim();
  const out = nf.formatToParts(BigInt(ip)).map((p) => (p.type === 'fraction' ? fp : p.value)).join('');
  return neg ? `−${out}` : out;
}

/** A short figure for headers ("$1.2M"); the exact one goes in a title. */
export function moneyShort(amount, currency) {
  if (amount === null || amount === undefined || amount === '') return '—';
  const n = Number(amount);
  const nf = currency ? currencyFormat(currency, 0, true) : null;
  if (!nf || !Number.isFinite(n)) return money(amount, currency);
  return Math.abs(n) < 10000 ? money(amount, currency).replace(/[.,]00$/, '') : nf.format(n);
}

export function count(n) {
  return new Intl.NumberFormat().format(n ?? 0);
}

/** A rate with 6 decimals ("0.250000") as a percentage. */
export function rate(r) {
  if (r === null || r === undefined || r === '') return '—';
  const n = Number(r) * 100;
  return `${n.toLocaleString(undefined, { maximumFractionDigits: 1, minimumFractionDigits: n % 1 ? 1 : 0 })}%`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' });
const shortDateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const monthFmt = new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric', timeZone: 'UTC' });

/** "2027-01-31" → "31 Jan 2027". */
export function date(d) {
  if (!d) return '—';
  const t = Date.parse(d.length === 10 ? `${d}T00:00:00Z` : d);
  return Number.isNaN(t) ? d : dateFmt.format(t);
}

/** A close date on a card: the year only when it is not this year's. */
export function shortDate(d) {
  if (!d) return '—';
  const t = Date.parse(`${d}T00:00:00Z`);
  if (Number.isNaN(t)) return d;
  return d.slice(0, 4) === today().slice(0, 4) ? shortDateFmt.format(t) : dateFmt.format(t);
}

export function dateTime(ts) {
  if (!ts) return '—';
  const t = Date.parse(ts);
  return Number.isNaN(t) ? ts : timeFmt.format(t);
}

/** "2025-03" → "Mar 2025"; other keys unchanged. */
export function monthKey(k) {
  if (/^\d{4}-\d{2}$/.test(k)) return monthFmt.format(Date.parse(`${k}-01T00:00:00Z`));
  return k;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
export function relative(ts) {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return '';
  const sec = Math.round((t - Date.now()) / 1000);
  const abs = Math.abs(sec);
  if (abs < 45) return rtf.format(0, 'second').replace(/^in 0 seconds$/, 'now');
  if (abs < 3600) return rtf.format(Math.round(sec / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(sec / 3600), 'hour');
  if (abs < 86400 * 45) return rtf.format(Math.round(sec / 86400), 'day');
  return rtf.format(Math.round(sec / (86400 * 30)), 'month');
}

/** Today as the service counts it: the UTC calendar date, YYYY-MM-DD. */
export function today() {
  return new Date().toISOString().slice(0, 10);
}

function iso(y, m, d) {
  return new Date(Date.UTC(y, m, d)).toISOString().slice(0, 10);
}

/** The calendar quarter holding day (offset quarters later): {from, to, label}. */
export function quarter(offset = 0, day = today()) {
  const y = Number(day.slice(0, 4));
  const q = Math.floor((Number(day.slice(5, 7)) - 1) / 3) + offset;
  const year = y + Math.floor(q / 4);
  const qi = ((q % 4) + 4) % 4;
  return { from: iso(year, qi * 3, 1), to: iso(year, qi * 3 + 3, 0), label: `Q${qi + 1} ${year}` };
}

export function addDays(day, n) {
  const t = Date.parse(`${day}T00:00:00Z`) + n * 86400000;
  return new Date(t).toISOString().slice(0, 10);
}

/** Whole days since an instant, truncated, as the stale report counts them. */
export function daysSince(ts) {
  const t = Date.parse(ts);
  return Number.isNaN(t) ? 0 : Math.floor((Date.now() - t) / 86400000);
}

export const CATEGORY_LABELS = {
  pipeline: 'Pipeline',
  best_case: 'Best case',
  commit: 'Commit',
  closed: 'Closed',
  omitted: 'Omitted',
};

export const EVENT_LABELS = {
  OpportunityCreatedEvent: 'Created',
  OpportunityUpdatedEvent: 'Updated',
  OpportunityStageChangedEvent: 'Stage changed',
  OpportunityClosedWonEvent: 'Closed won',
  OpportunityClosedLostEvent: 'Closed lost',
  OpportunityReopenedEvent: 'Reopened',
};

/** Human labels of the opportunity's JSON fields (errors[] and the audit trail name them). */
export const FIELD_LABELS = {
  name: 'Name',
  accountId: 'Account',
  ownerId: 'Owner',
  pipelineId: 'Pipeline',
  stageId: 'Stage',
  status: 'Status',
  amount: 'Amount',
  currency: 'Currency',
  probability: 'Probability',
  forecastCategory: 'Forecast category',
  closeDate: 'Close date',
  nextStep: 'Next step',
  leadId: 'Lead',
  source: 'Source',
  lossReason: 'Loss reason',
  reason: 'Loss reason',
  competitor: 'Competitor',
  note: 'Note',
  lossNote: 'Loss note',
  closedAt: 'Closed at',
  probabilityOverride: 'Probability override',
  forecastCategoryOverride: 'Category override',
  expectedVersion: 'Version',
};

export const fieldLabel = (f) => FIELD_LABELS[f] || f;
