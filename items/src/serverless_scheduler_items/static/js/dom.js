// Safe DOM building: every string becomes a text node; nothing is parsed as HTML.

/** Create an element. attrs: class, dataset, on<Event> handlers, other attributes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an SVG element (same rules as h). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "href") {
      const safe = safeHref(value);
      if (safe) el.setAttribute("href", safe);
    } else if (/^(on|style$|srcdoc$|src$)/i.test(key)) {
      throw new Error(`attribute ${key} is not allowed`);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
}

/** Append children: nodes as they are, strings and numbers as text, arrays flattened. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's content. */
export function mount(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** An in-app link (hash route) or an http(s) URL; anything else gives null. */
export function safeHref(value) {
  const text = String(value);
  if (text.startsWith("#")) return text;
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** An external link when the URL is http(s), otherwise plain text. */
export function externalLink(url) {
  const href = safeHref(url);
  if (!href || href.startsWith("#")) return h("span", { class: "url" }, String(url ?? ""));
  return h("a", { href, class: "url", target: "_blank", rel: "noopener noreferrer" }, String(url));
}
