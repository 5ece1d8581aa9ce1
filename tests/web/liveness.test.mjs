// The client's liveness check and retry delays (web/liveness.js): pure logic on a
// virtual clock, run by node without a browser.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Liveness, PING_INTERVAL_MS, SILENCE_MS, TICK_MS, retryDelay } from '../../web/liveness.js';

/**
 * Drives a Liveness like protocol.js does: a poll every `tick` ms from `start`, the
 * server answering each ping after `rtt` ms while `answers(now)` says so.
 * @param {{until: number, tick?: number, rtt?: number, answers?: (now: number) => boolean, openAt?: number}} options
 * @returns {{pings: number[], lostAt: number | null, lastHeard: number}}
 */
function run({ until, tick = TICK_MS, rtt = 5, answers = () => true, openAt = 0 }) {
  const liveness = new Liveness(0);
  /** @type {number[]} */
  const pings = [];
  /** @type {number[]} */
  const pongsDue = [];
  let lastHeard = 0;
  for (let now = 0; now <= until; now += tick) {
    if (now === openAt) {
      liveness.heard();
    }
    while (pongsDue.length && pongsDue[0] <= now) {
      lastHeard = /** @type {number} */ (pongsDue.shift());
      liveness.heard();
    }
    const action = liveness.poll(now, now >= openAt);
    if (action === 'lost') {
      return { pings, lostAt: now, lastHeard };
    }
    if (action === 'ping') {
      pings.push(now);
      if (answers(now)) {
        pongsDue.push(now + rtt);
      }
    }
  }
  return { pings, lostAt: null, lastHeard };
}

test('pings every 2 s once the socket is open, none before', () => {
  const { pings, lostAt } = run({ until: 10_000, openAt: 1000 });
  assert.equal(lostAt, null);
  assert.deepEqual(pings, [1000, 3000, 5000, 7000, 9000]);
  assert.equal(PING_INTERVAL_MS, 2000);
});

test('a server that stops answering is noticed within 8 s of its last answer', () => {
  for (const stop of [0, 500, 1000, 1999, 2000, 4321]) {
    const { lostAt, lastHeard } = run({ until: 60_000, answers: (now) => now < stop });
    assert.ok(lostAt !== null, `stop at ${stop}: noticed`);
    assert.ok(lostAt - lastHeard <= 8000, `stop at ${stop}: noticed at ${lostAt}, last answer at ${lastHeard}`);
    assert.ok(lostAt - stop <= 8000, `stop at ${stop}: noticed at ${lostAt}`);
    assert.ok(lostAt - lastHeard >= SILENCE_MS, `stop at ${stop}: not before ${SILENCE_MS} ms of silence`);
  }
});

test('a socket that never opens is given up after the silence', () => {
  const { pings, lostAt } = run({ until: 60_000, openAt: Infinity });
  assert.deepEqual(pings, []);
  assert.equal(lostAt, SILENCE_MS);
});

test('timers slowed to one a minute (a background tab) are no sign of a dead server', () => {
  const { pings, lostAt } = run({ until: 10 * 60_000, tick: 60_000 });
  assert.equal(lostAt, null);
  assert.equal(pings.length, 11);
});

test('retries wait 0.5 s, doubling up to 3 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 50].map(retryDelay), [500, 1000, 2000, 3000, 3000, 3000]);
});
