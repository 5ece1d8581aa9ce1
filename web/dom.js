// @ts-check
/** DOM helpers shared by the views: elements, icons, initials. */

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Icon outlines (24×24, stroked). */
const ICONS = {
  microphone: 'M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3',
  slash: 'M3 3l18 18',
  pin: 'M9 3h6l-1 6 3 3H7l3-3zM12 12v9',
};

/**
 * An SVG icon, hidden from assistive technology (the control carries the name).
 * @param {(keyof typeof ICONS)[]} names
 */
export function icon(...names) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon ${names.map((n) => `icon-${n}`).join(' ')}`);
  for (const name of names) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', ICONS[name]);
    path.setAttribute('class', `path-${name}`);
    svg.append(path);
  }
  return svg;
}

/**
 * Creates an element with a class and optional text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * Finds a required element of the page.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) {
    throw new Error(`index.html lacks #${id}`);
  }
  return node;
}

/**
 * Up to two initials of a name, for the camera-off placeholder.
 * @param {string} name
 */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => [...w][0] ?? '').join('').toUpperCase() || '?';
}

/**
 * A stable hue for a name, so each avatar keeps its colour.
 * @param {string} name
 */
export function hueOf(name) {
  let h = 0;
  for (const c of name) {
    h = (h * 31 + (c.codePointAt(0) ?? 0)) % 360;
  }
  return h;
}


/**
 * A value this browser remembered under `key`, or null (none, or storage disabled:
 * remembering is a convenience only, never a requirement).
 * @param {string} key
 * @returns {string | null}
 */
export function remembered(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

/**
 * Remembers `value` under `key` if the browser allows storage (private mode may not).
 * @param {string} key
 * @param {string} value
 */
export function remember(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // Storage disabled: the choice lasts this page only.
  }
}
