// DOM helpers. User data (study names, params, reasons) only ever goes in as text:
// textContent and text nodes, never innerHTML, so no name can become markup.

/**
 * Make an element. attrs: {id, class, text, dataset: {...}, on: {event: fn}, ...attributes}.
 * Children are nodes or strings (added as text).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else if (key === "style") throw new Error("inline styles are not allowed (CSP); use a class");
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Remove every child of node. */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** Replace node's children with the given ones. */
export function fill(node, ...children) {
  clear(node);
  for (const child of children) if (child) node.append(typeof child === "string" ? document.createTextNode(child) : child);
  return node;
}

/** A definition-list row: <dt>label</dt><dd id=...>value</dd>. */
export function field(list, label, value, id) {
  list.append(el("dt", { text: label }), el("dd", { id }, value ?? "-"));
}
