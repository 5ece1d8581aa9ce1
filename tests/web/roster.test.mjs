// The roster (web/roster.js): who is in the room, and the changes the views follow.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Roster } from '../../web/roster.js';

/** @param {number} id @param {string} name @param {boolean} [screen] */
const person = (id, name, screen = false) => ({ id, name, camera: true, microphone: true, screen });

test('joined, updated, left and self changes reach every listener', () => {
  const roster = new Roster();
  /** @type {string[]} */
  const seen = [];
  /** @type {string[]} */
  const other = [];
  roster.subscribe((c) => seen.push(c.kind === 'reset' ? 'reset' : c.kind === 'left' ? `left ${c.participant.name} ${c.reason}` : `${c.kind} ${c.participant.name}`));
  const stop = roster.subscribe((c) => other.push(c.kind));
  roster.reset(7, [person(3, 'Grace'), person(7, 'Ada')]);
  assert.equal(roster.you, 7);
  assert.deepEqual([...roster.participants.keys()], [3], 'the others only');
  roster.upsert(person(9, 'Alan'));
  roster.upsert(person(9, 'Alan', true));
  roster.upsert(person(7, 'Ada', true));
  assert.equal(roster.presenterName(), 'Alan');
  stop();
  roster.remove(9, 'timeout');
  roster.remove(9, 'left');
  assert.deepEqual(seen, ['reset', 'joined Alan', 'updated Alan', 'self Ada', 'left Alan timeout']);
  assert.deepEqual(other, ['reset', 'joined', 'updated', 'self']);
  assert.equal(roster.presenterName(), null);
});

test('a lost connection empties the roster but remembers who we were', () => {
  const roster = new Roster();
  roster.reset(7, [person(3, 'Grace')]);
  roster.reset(null, []);
  assert.equal(roster.you, 7);
  assert.equal(roster.participants.size, 0);
  roster.reset(12, [person(13, 'Grace')]);
  assert.equal(roster.you, 12);
  assert.equal(roster.get(13)?.name, 'Grace');
});
