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
  const fields = expression.trim().split(/\s+/);
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
  const days = parseField(field, 0, 7, DOW_ALIASES);
  if (!days) return null;
  const set = new Set([...days].map((d) => d % 7));
  const key = [...set].sort().join(",");
  if (key === "1,2,3,4,5") return "weekdays";
  if (key === "0,6") return "weekends";
  if (set.size === 7) return "every day";
  return `every ${[...set].sort().map((d) => DAY_NAMES[d]).join(", ")}`;
}

/** Parse one cron field into a Set of numbers, or null when it cannot be read. */
function parseField(field, min, max, aliases = {}) {
  const out = new Set();
  const value = (token) => {
    const upper = token.toUpperCase();
    if (upper in aliases) return aliases[upper];
    return /^\d+$/.test(token) ? Number(token) : NaN;
  };
  for (const part of field.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    let lo;
    let hi;
    if (range === "*" || range === "?") {
      lo = min;
      hi = max;
    } else if (range.includes("-")) {
      [lo, hi] = range.split("-").map(value);
    } else {
      lo = value(range);
      hi = stepText === undefined ? lo : max;
    }
    if (![lo, hi, step].every(Number.isFinite) || step < 1 || lo > hi) return null;
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

function zonedParts(date, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
    hour: "numeric", minute: "numeric", weekday: "short",
  }).formatToParts(date);
  const get = (type) => parts.find((p) => p.type === type).value;
  return {
    month: Number(get("month")), day: Number(get("day")), hour: Number(get("hour")) % 24,
    minute: Number(get("minute")), dow: DOW_ALIASES[get("weekday").toUpperCase()],
  };
}

/**
 * Whether the wall time `p` of instant `t` already came earlier that day, before the
 * clocks went back: like EventBridge Scheduler, a repeated wall time fires once, the
 * first time. (Walking real instants never meets a wall time the clocks skipped.)
 */
function repeated(t, p, timeZone) {
  return [30, 60, 120].some((back) => {
    const q = zonedParts(new Date(t - back * 60_000), timeZone);
    return q.day === p.day && q.hour === p.hour && q.minute === p.minute;
  });
}

function nextCron(expression, timeZone, after) {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5) return null;
  const [minutes, hours, doms, months, dows] = [
    parseField(fields[0], 0, 59), parseField(fields[1], 0, 23), parseField(fields[2], 1, 31),
    parseField(fields[3], 1, 12, MONTH_ALIASES), parseField(fields[4], 0, 7, DOW_ALIASES),
  ];
  if (![minutes, hours, doms, months, dows].every(Boolean)) return null;
  if (dows.has(7)) dows.add(0);
  const domAny = fields[2] === "*" || fields[2] === "?";
  const dowAny = fields[4] === "*" || fields[4] === "?";
  const MIN = 60_000;
  let t = Math.floor(after.getTime() / MIN) * MIN + MIN;
  const limit = t + 400 * 86_400_000;
  while (t < limit) {
    let p;
    try {
      p = zonedParts(new Date(t), timeZone);
    } catch {
      return null;
    }
    const dayOk = domAny && dowAny ? true
      : domAny ? dows.has(p.dow)
      : dowAny ? doms.has(p.day)
      : doms.has(p.day) || dows.has(p.dow);
    if (!months.has(p.month) || !dayOk) {
      t += ((23 - p.hour) * 60 + (60 - p.minute)) * MIN;
    } else if (!hours.has(p.hour)) {
      t += (60 - p.minute) * MIN;
    } else if (!minutes.has(p.minute) || repeated(t, p, timeZone)) {
      t += MIN;
    } else {
      return new Date(t);
    }
  }
  return null;
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
    next = nextCron(schedule.expression || "", schedule.timezone || "UTC", after);
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
