// Rich output a task displayed (display(df), a figure, Markdown), shown in its attempt's
// entry without letting it run anything on the page.
//
// HTML is parsed inertly (DOMParser runs no script and loads nothing) and rebuilt from an
// allowlist of elements and attributes: tables, lists, headings and inline text survive,
// as a pandas DataFrame needs; scripts, styles, event handlers, links, forms, frames and
// images are dropped (their text stays). Images come only from the bundle's own base64
// data, through <img src="data:...">, where an SVG cannot run a script either. Markdown
// and JSON show as their text.
import { h } from "./dom.js";
import { ansi } from "./ansi.js";

const ELEMENTS = new Set(["table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
  "colgroup", "col", "p", "div", "span", "br", "hr", "b", "i", "em", "strong", "u", "s",
  "small", "sub", "sup", "code", "pre", "kbd", "samp", "ul", "ol", "li", "dl", "dt", "dd",
  "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"]);
// Their content is not text a person reads: dropped with the element.
const SILENT = new Set(["script", "style", "template", "noscript", "iframe", "object", "embed",
  "head", "title", "meta", "link"]);
const ATTRIBUTES = new Set(["colspan", "rowspan", "title", "align"]);
const BASE64 = /^[A-Za-z0-9+/=\s]*$/;
const IMAGES = ["image/png", "image/jpeg"];

/** The DOM of one display's bundle ({data: {mime: text}, metadata?}). */
export function richOutput(bundle) {
  const data = bundle?.data ?? {};
  const meta = bundle?.metadata ?? {};
  const box = (mime, ...content) => h("div", { class: "nbflow-rich", "data-mime": mime }, ...content);
  if (typeof data["text/html"] === "string") {
    return box("text/html", h("div", { class: "nbflow-rich-html" }, ...sanitised(data["text/html"])));
  }
  for (const mime of IMAGES) {
    const b64 = data[mime];
    if (typeof b64 === "string" && BASE64.test(b64)) {
      return box(mime, image(`data:${mime};base64,${b64.replace(/\s/g, "")}`, meta[mime]));
    }
  }
  if (typeof data["image/svg+xml"] === "string") {
    return box("image/svg+xml", image(
      `data:image/svg+xml;charset=utf-8,${encodeURIComponent(data["image/svg+xml"])}`,
      meta["image/svg+xml"]));
  }
  for (const mime of ["text/markdown", "application/json"]) {
    if (typeof data[mime] === "string") return box(mime, h("pre", { class: "nbflow-rich-text" }, data[mime]));
  }
  const text = typeof data["text/plain"] === "string" ? data["text/plain"] : "";
  return box("text/plain", h("div", { class: "jp-RenderedText" },
    h("pre", { class: "nbflow-rich-text" }, ...ansi(text))));
}

function image(src, size) {
  const img = h("img", { src, alt: "an image the task displayed" });
  for (const side of ["width", "height"]) {
    const v = Number(size?.[side]);
    if (Number.isFinite(v) && v > 0) img.setAttribute(side, String(Math.round(v)));
  }
  return img;
}

/** The nodes of `html` that are safe to show, rebuilt element by element. */
export function sanitised(html) {
  const doc = new DOMParser().parseFromString(String(html), "text/html");
  return [...doc.body.childNodes].map(copy).flat();
}

function copy(node) {
  if (node.nodeType === Node.TEXT_NODE) return [document.createTextNode(node.nodeValue)];
  if (node.nodeType !== Node.ELEMENT_NODE) return [];
  const tag = node.localName;
  if (SILENT.has(tag)) return [];
  const children = [...node.childNodes].map(copy).flat();
  if (!ELEMENTS.has(tag)) return children;   // an unknown element keeps its text
  const out = document.createElement(tag);
  for (const attr of node.attributes) {
    if (ATTRIBUTES.has(attr.name) && attr.value.length < 200) out.setAttribute(attr.name, attr.value);
  }
  out.append(...children);
  return [out];
}
