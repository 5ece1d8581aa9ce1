// @ts-check
/**
 * What the page holds, published at `window.lanmeet` for the browser tests
 * (tests/e2e) and for debugging in the console. Read-only views of the current
 * connection; nothing in the client reads it.
 */

/** @typedef {import('./protocol.js').Connection} Connection */
/** @typedef {import('./stats.js').StatsSampler} StatsSampler */
/** @typedef {import('./statspanel.js').StatsPanel} StatsPanel */

/**
 * Installs `window.lanmeet`.
 * @param {() => Connection | null} current the current (or last) connection
 * @param {() => StatsSampler | null} sampler the current meeting's statistics
 * @param {StatsPanel} panel the Statistics panel
 */
export function installTestHook(current, sampler, panel) {
  /** @type {any} */ (window).lanmeet = {
    /** The connection (protocol.js), or null before the first join. */
    get conn() {
      return current();
    },
    /** The current session's publish peer connection. */
    get publishPc() {
      return current()?.publishPc ?? null;
    },
    /** The current session's subscribe peer connection. */
    get subscribePc() {
      return current()?.subscribePc ?? null;
    },
    /** The last `view` sent: `{tracks: [{mid, width, height}]}`, or null. */
    get view() {
      return current()?.lastView ?? null;
    },
    /** The last minute of statistics (stats.js `History`), or null. */
    get statsHistory() {
      return sampler()?.history ?? null;
    },
    /** The latest statistics sample (stats.js `Sample`), or null. */
    get statsLatest() {
      return sampler()?.latest ?? null;
    },
    /** How many points each plot of the Statistics panel shows, or null before it opened. */
    get statsPlotPoints() {
      return panel.pointCounts();
    },
    /** The connection's state: `connecting`, `connected`, `lost`, `reconnecting` or `closed`. */
    get state() {
      return current()?.state.kind ?? null;
    },
  };
}
