/** Building DOM from user data: text goes in as text, never as HTML. */

/** An element with attributes and children (strings become text nodes). */
export function h(
  tag: string,
  attrs: { [name: string]: string | null | undefined } = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) {
      el.setAttribute(name, value);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      el.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }
  return el;
}

/** A local time of day for a Unix time in seconds ('' for none). */
export function clock(at: number | null): string {
  return at === null ? '' : new Date(at * 1000).toLocaleTimeString([], { hour12: false });
}
