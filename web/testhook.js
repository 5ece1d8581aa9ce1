// @ts-check
/**
 * What the page holds, published at `window.lanmeet` for the browser tests
 * (tests/e2e) and for debugging in the console. Read-only views of the current
 * connection; nothing in the client reads it.
 */

/** @typedef {import('./protocol.js').Connection} Connection */

/**
 * Installs `window.lanmeet`.
 * @param {() => Connection | null} current the current (or last) connection
 */
export function installTestHook(current) {
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
    /** The connection's state: `connecting`, `connected`, `lost`, `reconnecting` or `closed`. */
    get state() {
      return current()?.state.kind ?? null;
    },
  };
}
