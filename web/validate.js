// @ts-check
/**
 * Rules for names a user types, mirroring `crates/proto/src/validate.rs`.
 *
 * The server is authoritative; checking here only spares a round trip and lets the form
 * say what is wrong before anything is sent. The server's look-alike rules (invisible
 * characters, mixed scripts, the Unicode confusable skeleton) are not repeated here:
 * they need Unicode tables, and the server's message says what is wrong.
 */

import { t } from './i18n.js';

/** Longest participant name, in characters (code points). */
export const MAX_NAME_CHARS = 32;
/** Longest room name, in characters (code points). */
export const MAX_ROOM_CHARS = 48;

// Rust's `char::is_alphanumeric` is "Alphabetic or Numeric (Nd, Nl, No)".
const ALPHANUMERIC = /^[\p{Alphabetic}\p{N}]$/u;

/**
 * Describes a character for an error message the way Rust's `{:?}` would, so control
 * characters stay visible.
 * @param {string} c
 */
function describeChar(c) {
  const code = /** @type {number} */ (c.codePointAt(0));
  if (code < 0x20 || code === 0x7f) {
    return `'\\u{${code.toString(16)}}'`;
  }
  return `'${c}'`;
}

/**
 * Checks a display name: 1 to 32 characters after trimming; letters, digits, spaces and
 * `-_.'`.
 * @param {string} raw
 * @returns {{ok: true, value: string} | {ok: false, error: string}}
 */
export function validateName(raw) {
  const name = raw.trim();
  const chars = [...name];
  if (chars.length === 0) {
    return { ok: false, error: t('validate.name_empty') };
  }
  if (chars.length > MAX_NAME_CHARS) {
    return { ok: false, error: t('validate.name_long', { max: MAX_NAME_CHARS }) };
  }
  const bad = chars.find((c) => !(ALPHANUMERIC.test(c) || " -_.'".includes(c)));
  if (bad !== undefined) {
    return {
      ok: false,
      error: t('validate.name_char', { char: describeChar(bad) }),
    };
  }
  return { ok: true, value: name };
}

/**
 * Checks a room name: 1 to 48 characters from letters, digits, `-` and `_`, so it fits in
 * a URL path unescaped. The server also refuses invisible characters and mixed scripts,
 * and treats look-alike room names (e.g. `Physics` and `physics`) as one room.
 * @param {string} raw
 * @returns {{ok: true, value: string} | {ok: false, error: string}}
 */
export function validateRoom(raw) {
  const room = raw.trim();
  const chars = [...room];
  if (chars.length === 0) {
    return { ok: false, error: t('validate.room_empty') };
  }
  if (chars.length > MAX_ROOM_CHARS) {
    return { ok: false, error: t('validate.room_long', { max: MAX_ROOM_CHARS }) };
  }
  const bad = chars.find((c) => !(ALPHANUMERIC.test(c) || c === '-' || c === '_'));
  if (bad !== undefined) {
    return {
      ok: false,
      error: t('validate.room_char', { char: describeChar(bad) }),
    };
  }
  return { ok: true, value: room };
}
