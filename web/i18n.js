// @ts-check
/**
 * Translations: every user-visible string of the client comes from a message
 * catalogue, `web/i18n/<lang>.json` (a flat object of key → text; `{name}` marks a
 * parameter). `t(key, params)` looks the key up in the chosen language, then in
 * English, and finally returns the key itself so a missing string is visible, not
 * blank. The catalogues are loaded before any module that renders text runs
 * (top-level await), so `t` is synchronous everywhere.
 *
 * The language is the one remembered from the language menu, else the first of the
 * browser's languages (`navigator.languages`) that has a catalogue, else English.
 * Text in `index.html` carries its key in `data-i18n` (and `data-i18n-aria-label`,
 * `-title`, `-placeholder` for attributes); `translatePage` fills it in at start and on
 * every change of language. Numbers, sizes, dates and times go through `Intl` in the
 * chosen language (`formatNumber`, `formatTime`, `formatDateTime`).
 */

/** @typedef {Record<string, string>} Catalogue */

/** The languages with a catalogue, by their own name (shown so in the language menu). */
export const LANGUAGES = /** @type {const} */ ({ en: 'English', de: 'Deutsch', es: 'Español', fr: 'Français' });

/** @typedef {keyof typeof LANGUAGES} Language */

const LANGUAGE_KEY = 'lanmeet.language';

/**
 * @param {unknown} lang
 * @returns {lang is Language}
 */
export function isLanguage(lang) {
  return typeof lang === 'string' && Object.prototype.hasOwnProperty.call(LANGUAGES, lang);
}

/**
 * The first of the browser's preferred languages that has a catalogue (`de-AT` → `de`),
 * else English.
 * @param {readonly string[]} preferred e.g. `navigator.languages`
 * @returns {Language}
 */
export function pickLanguage(preferred) {
  for (const tag of preferred) {
    const primary = tag.toLowerCase().split('-')[0];
    if (isLanguage(primary)) {
      return primary;
    }
  }
  return 'en';
}

/**
 * @param {string} lang
 * @returns {Promise<Catalogue>}
 */
async function fetchCatalogue(lang) {
  const response = await fetch(`/i18n/${lang}.json`);
  if (!response.ok) throw new Error(`no catalogue for ${lang}: ${response.status}`);
  return /** @type {Catalogue} */ (await response.json());
}

/** The remembered choice of the language menu, if any (storage may be disabled). */
function rememberedLanguage() {
  try {
    const stored = window.localStorage.getItem(LANGUAGE_KEY);
    return isLanguage(stored) ? stored : null;
  } catch {
    return null;
  }
}

// Node (the catalogue checks in tests/web) imports this module for its pure functions.
const inBrowser = typeof document !== 'undefined';

/** @type {Catalogue} */
const english = inBrowser ? await fetchCatalogue('en') : {};
/** @type {Catalogue} */
let current = english;
/** @type {Language} */
let currentLanguage = 'en';
/** @type {Set<() => void>} */
const listeners = new Set();

if (inBrowser) {
  const wanted = rememberedLanguage() ?? pickLanguage(navigator.languages ?? [navigator.language]);
  if (wanted !== 'en') {
    try {
      current = await fetchCatalogue(wanted);
      currentLanguage = wanted;
    } catch {
      // The English text will do.
    }
  }
  document.documentElement.lang = currentLanguage;
}

/**
 * The text for `key` with `{param}` placeholders filled in.
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 * @returns {string}
 */
export function t(key, params) {
  const text = current[key] ?? english[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole,
  );
}

/** The language in use. @returns {Language} */
export function language() {
  return currentLanguage;
}

/**
 * Switches to another language (English stays the fallback), remembers the choice,
 * translates the page and tells the views (`onLanguageChange`).
 * @param {string} lang
 * @returns {Promise<void>}
 */
export async function useLanguage(lang) {
  const chosen = isLanguage(lang) ? lang : 'en';
  current = chosen === 'en' ? english : await fetchCatalogue(chosen);
  currentLanguage = chosen;
  document.documentElement.lang = chosen;
  try {
    window.localStorage.setItem(LANGUAGE_KEY, chosen);
  } catch {
    // Storage disabled: the choice lasts this page only.
  }
  translatePage();
  for (const listener of listeners) {
    listener();
  }
}

/**
 * Runs `listener` after every change of language (to render text again).
 * @param {() => void} listener
 */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/** Attributes translated from `data-i18n-<attribute>`. */
const ATTRIBUTES = ['aria-label', 'title', 'placeholder'];

/**
 * Fills in every `data-i18n` text and `data-i18n-<attribute>` of `root`. A text may
 * hold elements: `{name}` in the translation stands for the child marked
 * `data-i18n-slot="name"` (e.g. a `<kbd>`), so the words around it can be reordered.
 * @param {ParentNode} [root]
 */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll('[data-i18n]')) {
    const text = t(/** @type {string} */ (node.getAttribute('data-i18n')));
    const slots = [...node.querySelectorAll('[data-i18n-slot]')];
    if (!slots.length) {
      node.textContent = text;
      continue;
    }
    /** @type {(string | Element)[]} */
    const parts = [];
    for (const piece of text.split(/(\{\w+\})/)) {
      const slot = slots.find((s) => `{${s.getAttribute('data-i18n-slot')}}` === piece);
      parts.push(slot ?? piece);
    }
    node.replaceChildren(...parts);
  }
  for (const attribute of ATTRIBUTES) {
    for (const node of root.querySelectorAll(`[data-i18n-${attribute}]`)) {
      node.setAttribute(attribute, t(/** @type {string} */ (node.getAttribute(`data-i18n-${attribute}`))));
    }
  }
}

/**
 * A number in the chosen language's notation.
 * @param {number} value
 * @param {Intl.NumberFormatOptions} [options]
 */
export function formatNumber(value, options) {
  return new Intl.NumberFormat(currentLanguage, options).format(value);
}

/**
 * A time of day as hours and minutes.
 * @param {number | Date} when milliseconds since the Unix epoch, or a date
 */
export function formatTime(when) {
  return new Intl.DateTimeFormat(currentLanguage, { hour: '2-digit', minute: '2-digit' }).format(when);
}

/**
 * A date and time of day, in full.
 * @param {number | Date} when milliseconds since the Unix epoch, or a date
 */
export function formatDateTime(when) {
  return new Intl.DateTimeFormat(currentLanguage, { dateStyle: 'medium', timeStyle: 'medium' }).format(when);
}

/**
 * A list of names, "A, B and C", in the chosen language.
 * @param {string[]} items
 */
export function formatList(items) {
  return new Intl.ListFormat(currentLanguage, { style: 'long', type: 'conjunction' }).format(items);
}
