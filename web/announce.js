// @ts-check
/**
 * What screen readers hear without looking: two visually hidden live regions of the
 * page (`#announcer`, polite; `#alerter`, assertive) that stay in the document, so each
 * new text is read out. Joins and leaves, new chat messages, the own microphone's state
 * and the active speaker go through `announce`; errors have their own `role=alert`
 * elements next to where they happen.
 */

/** The active speaker is announced at most this often (a lively talk would drown out the rest). */
export const SPEAKER_ANNOUNCE_MS = 10_000;

/**
 * Says `text` through the page's live region.
 * @param {string} text
 * @param {'polite' | 'assertive'} [urgency]
 */
export function announce(text, urgency = 'polite') {
  const region = document.getElementById(urgency === 'polite' ? 'announcer' : 'alerter');
  if (!region) {
    return;
  }
  // The same text twice in a row is still news (a second message "ok"): clear first.
  if (region.textContent === text) {
    region.textContent = '';
  }
  region.textContent = text;
}

/**
 * Announces the latest of a changing value at most once per `intervalMs`: the first
 * change at once, later ones when the interval is over (only the newest, and only if
 * it differs from what was said last).
 * @template T
 */
export class Throttled {
  /**
   * @param {number} intervalMs
   * @param {(value: T) => void} say
   * @param {{now?: () => number, later?: (run: () => void, ms: number) => number, cancel?: (timer: number) => void}} [clock]
   *   the time and timers (the page's by default; the unit tests bring their own)
   */
  constructor(intervalMs, say, clock = {}) {
    this.intervalMs = intervalMs;
    this.say = say;
    this.now = clock.now ?? (() => performance.now());
    this.later = clock.later ?? ((run, ms) => window.setTimeout(run, ms));
    this.cancel = clock.cancel ?? ((timer) => window.clearTimeout(timer));
    /** @type {T | undefined} */
    this.said = undefined;
    /** @type {T | undefined} */
    this.pending = undefined;
    this.last = -Infinity;
    /** @type {number | null} */
    this.timer = null;
  }

  /** @param {T} value */
  push(value) {
    this.pending = value;
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0) {
      this.flush();
    } else if (this.timer === null) {
      this.timer = this.later(() => this.flush(), wait);
    }
  }

  flush() {
    this.timer = null;
    const value = /** @type {T} */ (this.pending);
    if (value !== this.said) {
      this.said = value;
      this.last = this.now();
      this.say(value);
    }
  }

  /** Forgets what was said (a new meeting). */
  reset() {
    if (this.timer !== null) {
      this.cancel(this.timer);
    }
    this.timer = null;
    this.said = undefined;
    this.last = -Infinity;
  }
}
