// Schedules in words ("every 5 minutes", "weekdays at 09:00 Europe/Warsaw") and the
// next fire time, computed in the browser from the schedule alone.

const DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const DOW_ALIASES = { SUN: 0, MON: 1, TUE: 2, WED: 3, THU: 4, FRI: 5, SAT: 6 };
const MONTH_ALIASES = { JAN: 1, FEB: 2, MAR: 3, APR: 4, MAY: 5, JUN: 6, JUL: 7, AUG: 8, SEP: 9, OCT: 10, NOV: 11, DEC: 12 };
const UNIT_SECONDS = { minutes: 60, hours: 3600, days: 86400 };

function plural(count, unit) {
  const singular = unit.replace(/s$/, "");
  return count === 1 ? `every ${singular}` : `every ${count} ${unit}`;
}

const pad = (n) => String(n).padStart(2, "0");

/** A schedule as a short English phrase. */
export function describeSchedule(schedule) {
  if (!schedule || typeof schedule !== "object") return "no schedule";
  if (schedule.kind === "rate") return plural(Number(schedule.every), schedule.unit || "minutes");
  if (schedule.kind === "at") return `once, ${formatDateTime(schedule.at)}`;
  if (schedule.kind === "cron") return describeCron(schedule.expression || "", schedule.timezone || "UTC");
  return "unknown schedule";
}

function describeCron(expression, timezone) {
  const fields = cronFields(expression);
  if (fields.length !== 5) return `cron “${expression}” ${timezone}`;
  const [minute, hour, dom, month, dow] = fields;
  const isNum = (v) => /^\d+$/.test(v);
  const step = /^\*\/(\d+)$/;
  if (month === "*" && dom === "*" && dow === "*") {
    if (minute === "*" && hour === "*") return "every minute";
    if (step.test(minute) && hour === "*") return plural(Number(step.exec(minute)[1]), "minutes");
    if (isNum(minute) && hour === "*") return `every hour at :${pad(minute)}`;
    if (isNum(minute) && step.test(hour)) return `${plural(Number(step.exec(hour)[1]), "hours")} at :${pad(minute)} ${timezone}`;
  }
  if (isNum(minute) && isNum(hour) && month === "*") {
    const at = `at ${pad(hour)}:${pad(minute)} ${timezone}`;
    if (dom === "*" && dow === "*") return `every day ${at}`;
    if (dom === "*") {
      const days = describeDays(dow);
      if (days) return `${days} ${at}`;
    }
    if (dow === "*" && isNum(dom)) return `on day ${Number(dom)} of every month ${at}`;
  }
  return `cron “${expression}” ${timezone}`;
}

function describeDays(field) {
  const days = parseField(field, CRON_FIELDS[4]).values;
  if (!days) return null;
  const set = new Set([...days].map((d) => d % 7));
  const key = [...set].sort().join(",");
  if (key === "1,2,3,4,5") return "weekdays";
  if (key === "0,6") return "weekends";
  if (set.size === 7) return "every day";
  // The week read from Monday, as people read it (FRI-SUN: Friday, Saturday, Sunday).
  const mondayFirst = [...set].sort((a, b) => ((a + 6) % 7) - ((b + 6) % 7));
  return `every ${mondayFirst.map((d) => DAY_NAMES[d]).join(", ")}`;
}

// -- cron: parsing, checking, next fire ------------------------------------------------

// The shorthands the API accepts, normalised the same way.
const CRON_MACROS = {
  "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
  "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
};
const CRON_FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31, anyMark: true },
  { name: "month", min: 1, max: 12, aliases: MONTH_ALIASES },
  { name: "day-of-week", min: 0, max: 7, aliases: DOW_ALIASES, anyMark: true },
];
/** How far ahead the next fire is looked for: a leap day is at most 8 years away. */
export const CRON_HORIZON_YEARS = 8;

function cronFields(expression) {
  const text = String(expression).trim().split(/\s+/).join(" ");
  return (CRON_MACROS[text.toLowerCase()] || text).split(" ");
}

/**
 * Parse one cron field into {values: Set} or {problem: "why"}; {values: null} alone
 * means valid syntax the browser does not preview (day-of-month `L` and `15W`).
 */
function parseField(field, { name, min, max, aliases = {}, anyMark = false }) {
  const out = new Set();
  let previewable = true;
  const value = (token) => {
    const upper = token.toUpperCase();
    const v = upper in aliases ? aliases[upper] : /^\d+$/.test(token) ? Number(token) : NaN;
    if (Number.isNaN(v)) return { problem: `${name} value “${token}” is not understood` };
    if (v < min || v > max) return { problem: `${name} ${v} is out of range ${min}-${max}` };
    return { v };
  };
  for (const part of field.split(",")) {
    if (!part) return { problem: `${name} has an empty item in “${field}”` };
    if (name === "day-of-month" && /^(L|\d{1,2}W)$/i.test(part)) {
      previewable = false;
      continue;
    }
    const pieces = part.split("/");
    if (pieces.length > 2) return { problem: `${name} “${part}” has more than one step` };
    const [range, stepText] = pieces;
    if (stepText !== undefined && !/^[1-9]\d*$/.test(stepText)) {
      return { problem: `${name} step “${stepText}” must be a whole number above 0` };
    }
    const step = stepText === undefined ? 1 : Number(stepText);
    let lo = min;
    let hi = max;
    if (range === "?" && !anyMark) return { problem: `${name} cannot be “?” (only the day fields can)` };
    if (range !== "*" && range !== "?") {
      const ends = range.split("-");
      if (ends.length > 2) return { problem: `${name} range “${range}” has more than two ends` };
      const first = value(ends[0]);
      if (first.problem) return first;
      lo = first.v;
      if (ends.length === 2) {
        const last = value(ends[1]);
        if (last.problem) return last;
        // A day-of-week range may end on Sunday as 0 or SUN (FRI-SUN), as in cron.
        hi = name === "day-of-week" && last.v === 0 && lo > 0 ? 7 : last.v;
        if (lo > hi) {
          // The two ranges to write instead, as the server suggests them.
          const named = /^[a-z]/i.test(ends[0]);
          const names = Object.keys(aliases);
          const last = named ? names[names.length - 1] : String(name === "day-of-week" ? 6 : max);
          const first = named ? names[0] : String(min);
          const high = ends[0].toUpperCase() === last.toUpperCase() ? ends[0] : `${ends[0]}-${last}`;
          const low = ends[1].toUpperCase() === first.toUpperCase() ? ends[1] : `${first}-${ends[1]}`;
          return { problem: `${name} range ${ends[0]}-${ends[1]} runs backwards; write it as two ranges, e.g. ${high},${low}` };
        }
      } else if (stepText === undefined) {
        hi = lo;
      }
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return { values: previewable ? out : null };
}

/** Parse a cron expression: {fields: [5 Sets or null]} or {problem: "why"}. */
function parseCron(expression) {
  const fields = cronFields(expression);
  if (fields.length !== 5) {
    return { problem: `it needs 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}` };
  }
  const parsed = [];
  for (const [i, spec] of CRON_FIELDS.entries()) {
    const result = parseField(fields[i], spec);
    if (result.problem) return result;
    parsed.push(result.values);
  }
  return { fields: parsed, domAny: /^[*?]$/.test(fields[2]), dowAny: /^[*?]$/.test(fields[4]) };
}

const formatters = new Map();

/** The wall-clock time of instant `t` in `timeZone`, as milliseconds of a UTC date. */
function wallTime(t, timeZone) {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    });
    formatters.set(timeZone, format);
  }
  const p = {};
  for (const { type, value } of format.formatToParts(new Date(t))) p[type] = Number(value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second) + (t % 1000 + 1000) % 1000;
}

/**
 * The first instant whose wall-clock time in `timeZone` is `wall`, or null for a wall
 * time the clocks skip. Like EventBridge Scheduler, a wall time the clocks go back over
 * fires once, the first time. (The zone's offset a day either side covers both.)
 */
function firstInstant(wall, timeZone) {
  let first = null;
  for (const probe of [wall - 86_400_000, wall + 86_400_000]) {
    const t = wall - (wallTime(probe, timeZone) - probe);
    if (wallTime(t, timeZone) === wall && (first === null || t < first)) first = t;
  }
  return first;
}

/**
 * The next fire of a cron expression strictly after `after`: {next: Date}, or
 * {next: null, problem} (invalid), {next: null, none: true} (nothing within
 * CRON_HORIZON_YEARS), {next: null} (not previewed: day-of-month L/W, bad timezone).
 * The search walks calendar days and skips whole months that cannot match; only the
 * candidate times of matching days are converted to instants, so it is quick for any
 * expression.
 */
export function nextCronFire(expression, timeZone, after) {
  const cron = parseCron(expression);
  if (cron.problem) return { next: null, problem: cron.problem };
  const [minutes, hours, doms, months, dows] = cron.fields;
  if (!doms) return { next: null };
  const days = new Set([...dows].map((d) => d % 7));
  const hourList = [...hours].sort((a, b) => a - b);
  const minuteList = [...minutes].sort((a, b) => a - b);
  const MIN = 60_000;
  let from;
  try {
    from = Math.floor(wallTime(after.getTime(), timeZone) / MIN) * MIN;
  } catch {
    return { next: null };
  }
  const start = new Date(from);
  let date = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
  const end = Date.UTC(start.getUTCFullYear() + CRON_HORIZON_YEARS, start.getUTCMonth(), start.getUTCDate());
  while (date <= end) {
    const d = new Date(date);
    if (!months.has(d.getUTCMonth() + 1)) {
      date = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      continue;
    }
    const dayOk = cron.domAny && cron.dowAny ? true
      : cron.domAny ? days.has(d.getUTCDay())
      : cron.dowAny ? doms.has(d.getUTCDate())
      : doms.has(d.getUTCDate()) || days.has(d.getUTCDay());
    if (dayOk) {
      for (const hour of hourList) {
        for (const minute of minuteList) {
          const wall = date + (hour * 60 + minute) * MIN;
          // A wall time up to `after`'s own came first no later than `after` did.
          if (wall <= from) continue;
          const t = firstInstant(wall, timeZone);
          if (t !== null && t > after.getTime()) return { next: new Date(t) };
        }
      }
    }
    date += 86_400_000;
  }
  return { next: null, none: true };
}

/** The next fire after `now` (a Date), or null (paused, finished, unknown). */
export function nextRun(job, now = new Date()) {
  const schedule = job && job.schedule;
  if (!schedule || job.enabled === false) return null;
  const endAt = schedule.end_at ? new Date(schedule.end_at) : null;
  let next = null;
  if (schedule.kind === "at") {
    const at = new Date(schedule.at);
    return at > now ? at : null;
  }
  const startAt = schedule.start_at ? new Date(schedule.start_at) : null;
  const after = startAt && startAt > now ? new Date(startAt.getTime() - 1) : now;
  if (schedule.kind === "rate") {
    const period = Number(schedule.every) * (UNIT_SECONDS[schedule.unit] || 60) * 1000;
    const anchor = (startAt || (job.created_at ? new Date(job.created_at) : new Date(0))).getTime();
    if (after.getTime() < anchor) next = new Date(anchor);
    else next = new Date(anchor + (Math.floor((after.getTime() - anchor) / period) + 1) * period);
  } else if (schedule.kind === "cron") {
    next = nextCronFire(schedule.expression || "", schedule.timezone || "UTC", after).next;
  }
  if (next && endAt && next > endAt) return null;
  return next;
}

/** A timestamp in the reader's locale and timezone (empty for none). */
export function formatDateTime(value) {
  if (!value) return "";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** "3 min ago" / "in 2 h" relative phrasing. */
export function relativeTime(value, now = new Date()) {
  if (!value) return "";
  const date = value instanceof Date ? value : new Date(value);
  const seconds = Math.round((date.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(seconds);
  const [amount, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "min"]
    : abs < 86400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  if (abs < 5) return "just now";
  return seconds < 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
}
