// ANSI colour codes (SGR) in logs become spans with JupyterLab's ansi-* classes, which
// follow the theme; every other escape sequence is dropped. Text stays text (textContent).
import { h } from "./dom.js";

const NAMES = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
// CSI sequences (colours and the rest, e.g. cursor moves) and OSC ones (titles, links).
const ESCAPE = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?/g;

/** `text` as nodes: strings and coloured spans. */
export function ansi(text) {
  const out = [];
  let fg = null, bg = null, bold = false, underline = false, at = 0;
  const emit = (chunk) => {
    if (!chunk) return;
    const classes = [fg && `ansi-${fg}-fg`, bg && `ansi-${bg}-bg`, bold && "ansi-bold",
      underline && "ansi-underline"].filter(Boolean);
    out.push(classes.length ? h("span", { class: classes.join(" ") }, chunk) : chunk);
  };
  for (const match of text.matchAll(ESCAPE)) {
    emit(text.slice(at, match.index));
    at = match.index + match[0].length;
    if (match[2] !== "m") continue;
    const codes = (match[1] || "0").split(";").map(Number);
    for (let k = 0; k < codes.length; k++) {
      const c = codes[k];
      if (c === 0) { fg = bg = null; bold = underline = false; }
      else if (c === 1) bold = true;
      else if (c === 4) underline = true;
      else if (c === 22) bold = false;
      else if (c === 24) underline = false;
      else if (c >= 30 && c <= 37) fg = NAMES[c - 30];
      else if (c >= 90 && c <= 97) fg = `intense-${NAMES[c - 90]}`;
      else if (c === 39) fg = null;
      else if (c >= 40 && c <= 47) bg = NAMES[c - 40];
      else if (c >= 100 && c <= 107) bg = `intense-${NAMES[c - 100]}`;
      else if (c === 49) bg = null;
      else if (c === 38 || c === 48) k += codes[k + 1] === 5 ? 2 : 4;  // 256/RGB: skipped
    }
  }
  emit(text.slice(at));
  return out;
}
