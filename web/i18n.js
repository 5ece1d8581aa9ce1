// @ts-check
/**
 * Translations: every user-visible string of the client comes from a message
 * catalogue, `web/i18n/<lang>.json` (a flat object of key → text; `{name}` marks a
 * parameter). `t(key, params)` looks the key up in the chosen language, then in
 * English, and finally returns the key itself so a missing string is visible, not
 * blank. The English catalogue is loaded before any module that renders text runs
 * (top-level await), so `t` is synchronous everywhere.
 */

/** @typedef {Record<string, string>} Catalogue */

/**
 * @param {string} lang
 * @returns {Promise<Catalogue>}
 */
async function fetchCatalogue(lang) {
  const response = await fetch(`/i18n/${lang}.json`);
  if (!response.ok) throw new Error(`no catalogue for ${lang}: ${response.status}`);
  return /** @type {Catalogue} */ (await response.json());
}

/** @type {Catalogue} */
const english = await fetchCatalogue('en');
/** @type {Catalogue} */
let current = english;

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

/**
 * Switches to another language's catalogue (English stays the fallback).
 * @param {string} lang
 * @returns {Promise<void>}
 */
export async function useLanguage(lang) {
  current = lang === 'en' ? english : await fetchCatalogue(lang);
  document.documentElement.lang = lang;
}
