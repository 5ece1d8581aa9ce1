// @ts-check
/**
 * Noticing a dead server, and when to try again. Pure logic with the time as an
 * argument, so it is tested without a browser or a clock (tests/web/liveness.test.mjs);
 * protocol.js drives it from a one-second timer.
 *
 * The server answers every `ping` at once, so a silence longer than `SILENCE_MS` after a
 * ping means the server or the network is gone. The silence counts from the first ping
 * that went unanswered, not from the last message: a background tab whose timers the
 * browser slowed to one a minute sent no ping for a minute, and that is no sign of a
 * dead server. With a ping every 2 s and 5 s of silence allowed after one, a server
 * that stops answering is noticed 5 to 7.5 s after its last message (the timer runs
 * every half second).
 */

/** How often the client pings while the socket is open. */
export const PING_INTERVAL_MS = 2000;

/** How long after an unanswered ping (or the start of an attempt) the server counts as gone. */
export const SILENCE_MS = 5000;

/** How often the driver should call `poll`. */
export const TICK_MS = 500;

/** The first retry waits this long; each further one twice as long, up to `MAX_RETRY_MS`. */
export const FIRST_RETRY_MS = 500;
export const MAX_RETRY_MS = 3000;

/** @typedef {'ping' | 'lost' | null} LivenessAction */

/** The liveness of one socket, from the moment it is opened. */
export class Liveness {
  /** @param {number} now milliseconds, any monotonic origin */
  constructor(now) {
    /**
     * Since when the client waits for a sign of life: the socket's start until it opens,
     * then the first unanswered ping. Null while nothing is awaited.
     * @type {number | null}
     */
    this.waitingSince = now;
    this.lastPing = -Infinity;
  }

  /** Anything arrived from the server (the socket opened, a message came). */
  heard() {
    this.waitingSince = null;
  }

  /**
   * What to do now: send a ping, give up on the server, or nothing.
   * @param {number} now
   * @param {boolean} open whether the socket is open (pings can be sent)
   * @returns {LivenessAction}
   */
  poll(now, open) {
    if (this.waitingSince !== null && now - this.waitingSince >= SILENCE_MS) {
      return 'lost';
    }
    if (open && now - this.lastPing >= PING_INTERVAL_MS) {
      this.lastPing = now;
      this.waitingSince ??= now;
      return 'ping';
    }
    return null;
  }
}

/**
 * How long to wait before reconnection attempt `attempt` (0 for the first): 0.5 s,
 * doubling, at most 3 s.
 * @param {number} attempt
 */
export function retryDelay(attempt) {
  return Math.min(FIRST_RETRY_MS * 2 ** Math.max(0, attempt), MAX_RETRY_MS);
}
