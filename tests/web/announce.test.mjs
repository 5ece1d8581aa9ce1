// The active speaker's name is announced at most every 10 s: the first change at once,
// then only the newest after the interval, and nothing when it did not change.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SPEAKER_ANNOUNCE_MS, Throttled } from '../../web/announce.js';

/** A clock the test moves by hand, with its pending timers. */
function fakeClock() {
  let now = 0;
  /** @type {Map<number, {at: number, run: () => void}>} */
  const timers = new Map();
  let next = 1;
  return {
    now: () => now,
    /** @param {() => void} run @param {number} ms */
    later: (run, ms) => {
      timers.set(next, { at: now + ms, run });
      return next++;
    },
    /** @param {number} id */
    cancel: (id) => void timers.delete(id),
    /** @param {number} ms */
    advance(ms) {
      now += ms;
      for (const [id, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          timers.delete(id);
          t.run();
        }
      }
    },
  };
}

test('the first speaker is said at once, changes within the interval only once it is over, and only the newest', () => {
  const clock = fakeClock();
  /** @type {[number, string][]} */
  const said = [];
  const speaker = new Throttled(SPEAKER_ANNOUNCE_MS, (name) => said.push([clock.now(), name]), clock);
  speaker.push('Ada');
  assert.deepEqual(said, [[0, 'Ada']]);
  clock.advance(2000);
  speaker.push('Ben');
  clock.advance(2000);
  speaker.push('Cy');
  speaker.push('Ben');
  assert.deepEqual(said, [[0, 'Ada']], 'nothing new within 10 s');
  clock.advance(6000);
  assert.deepEqual(said, [[0, 'Ada'], [SPEAKER_ANNOUNCE_MS, 'Ben']], 'the newest, once 10 s are over');
  clock.advance(20_000);
  speaker.push('Ben');
  assert.equal(said.length, 2, 'the same speaker is not said again');
  speaker.push('Ada');
  assert.deepEqual(said.at(-1), [30_000, 'Ada'], 'after a quiet while, at once');
});

test('a change back to the speaker last said within the interval says nothing', () => {
  const clock = fakeClock();
  /** @type {string[]} */
  const said = [];
  const speaker = new Throttled(SPEAKER_ANNOUNCE_MS, (name) => said.push(name), clock);
  speaker.push('Ada');
  clock.advance(1000);
  speaker.push('Ben');
  speaker.push('Ada');
  clock.advance(20_000);
  assert.deepEqual(said, ['Ada']);
});
