// @ts-check
/**
 * The connection banner above the grid: "Connection lost — reconnecting…" while the
 * connection is being restored, then "Reconnected" for a few seconds. It is a live
 * region (`role=status`) that stays in the document, so screen readers announce each
 * new text.
 */

import { byId } from './dom.js';
import { t } from './i18n.js';

/** How long "Reconnected" stays. */
const RECONNECTED_SHOWN_MS = 4000;

export class ConnectionBanner {
  constructor() {
    this.root = byId('connection-banner', HTMLElement);
    /** @type {number | null} */
    this.timer = null;
  }

  /**
   * The connection is lost and being restored.
   * @param {string} cause e.g. "Connection lost"
   */
  reconnecting(cause) {
    this.set(t('banner.reconnecting', { cause }), 'lost');
  }

  /** The connection is back: says so briefly. */
  reconnected() {
    this.set(t('banner.reconnected'), 'restored');
    this.timer = window.setTimeout(() => this.clear(), RECONNECTED_SHOWN_MS);
  }

  clear() {
    this.set('', '');
  }

  /**
   * @param {string} text
   * @param {'lost' | 'restored' | ''} kind
   */
  set(text, kind) {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    this.root.textContent = text;
    this.root.dataset.kind = kind;
  }
}
