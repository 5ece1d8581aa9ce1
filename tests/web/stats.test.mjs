// The client's statistics math (web/stats.js): snapshots from stats reports, rates from
// two snapshots, the quality grade. Pure functions, run by node without a browser.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GRADE_LIMITS, gradeOf, participantGrades, rates, snapshotOf, streamFigures } from '../../web/stats.js';

/**
 * A stats report at `t` ms: a camera layer and audio sent, a camera received.
 * @param {number} t
 * @param {{sent: number, audioSent: number, received: number, packets: number, lost: number, frames: number}} c
 */
function report(t, c) {
  return [
    { type: 'transport', id: 'T', selectedCandidatePairId: 'P' },
    { type: 'candidate-pair', id: 'P', nominated: true, state: 'succeeded', currentRoundTripTime: 0.012 },
    { type: 'candidate-pair', id: 'Q', nominated: false, state: 'failed', currentRoundTripTime: 0.5 },
    { type: 'outbound-rtp', id: 'O1', kind: 'video', mid: '1', rid: 'f', timestamp: t, bytesSent: c.sent, packetsSent: 0, framesEncoded: c.frames, frameWidth: 640, frameHeight: 480, qualityLimitationReason: 'cpu' },
    { type: 'outbound-rtp', id: 'O0', kind: 'audio', mid: '0', timestamp: t, bytesSent: c.audioSent, packetsSent: 0 },
    { type: 'inbound-rtp', id: 'I2', kind: 'video', trackIdentifier: 'track-2', timestamp: t, bytesReceived: c.received, packetsReceived: c.packets, packetsLost: c.lost, framesDecoded: c.frames, frameWidth: 320, frameHeight: 240, jitter: 0.004, freezeCount: 1 },
  ];
}

test('a snapshot keeps the streams, finds a missing mid and reads the selected pair round trip', () => {
  const s = snapshotOf(report(1000, { sent: 0, audioSent: 0, received: 0, packets: 0, lost: 0, frames: 0 }), (id) => (id === 'track-2' ? '7' : null));
  assert.equal(s.rttMs, 12);
  assert.equal(s.streams.length, 3);
  const inbound = s.streams.find((x) => x.direction === 'inbound');
  assert.equal(inbound?.mid, '7');
  assert.equal(inbound?.jitterMs, 4);
  assert.equal(inbound?.freezeCount, 1);
  const camera = s.streams.find((x) => x.rid === 'f');
  assert.equal(camera?.limitation, 'cpu');
  assert.equal(camera?.width, 640);
});

test('without a selected pair or one at all, the round trip comes from the nominated pair or the remote report', () => {
  assert.equal(snapshotOf([{ type: 'candidate-pair', id: 'P', nominated: true, state: 'succeeded', currentRoundTripTime: 0.03 }]).rttMs, 30);
  assert.equal(snapshotOf([{ type: 'remote-inbound-rtp', id: 'R', roundTripTime: 0.05 }]).rttMs, 50);
  assert.equal(snapshotOf([]).rttMs, null);
});

test('rates are byte deltas over the report clock, by kind', () => {
  const a = snapshotOf(report(1000, { sent: 10_000, audioSent: 1000, received: 50_000, packets: 100, lost: 0, frames: 10 }));
  const b = snapshotOf(report(3000, { sent: 110_000, audioSent: 9000, received: 90_000, packets: 196, lost: 4, frames: 50 }));
  const figures = streamFigures(a, b);
  const sent = rates(
    figures.filter((f) => f.stream.direction === 'outbound'),
    (s) => (s.kind === 'audio' ? 'audio' : 'camera'),
  );
  assert.deepEqual(sent, { camera: 50_000, screen: 0, audio: 4000, total: 54_000 });
  const received = rates(
    figures.filter((f) => f.stream.direction === 'inbound'),
    () => 'screen',
  );
  assert.deepEqual(received, { camera: 0, screen: 20_000, audio: 0, total: 20_000 });
  const inbound = figures.find((f) => f.stream.direction === 'inbound');
  assert.equal(inbound?.fps, 20);
  // 4 lost of 100 expected in the interval.
  assert.equal(inbound?.lossPercent, 4);
  assert.equal(figures.find((f) => f.stream.rid === 'f')?.lossPercent, null, 'no loss figure for what is sent');
});

test('a first snapshot, a new stream or a restarted counter gives no negative rate', () => {
  const b = snapshotOf(report(2000, { sent: 100, audioSent: 100, received: 100, packets: 1, lost: 0, frames: 1 }));
  assert.deepEqual(streamFigures(null, b), [], 'nothing to compare with');
  const a = snapshotOf(report(1000, { sent: 5000, audioSent: 5000, received: 5000, packets: 50, lost: 3, frames: 40 }));
  for (const f of streamFigures(a, b)) {
    assert.equal(f.bytesPerSecond, 0);
    assert.equal(f.fps, 0);
  }
  const same = snapshotOf(report(1000, { sent: 0, audioSent: 0, received: 0, packets: 0, lost: 0, frames: 0 }));
  assert.deepEqual(streamFigures(same, same), [], 'no time passed');
});

test('the grade follows the documented limits', () => {
  assert.equal(gradeOf({ lossPercent: 0, rttMs: 2, fps: 20 }), 'good');
  assert.equal(gradeOf({ lossPercent: null, rttMs: null, fps: null }), 'good', 'nothing known is nothing wrong');
  assert.equal(gradeOf({ lossPercent: GRADE_LIMITS.good.lossPercent, rttMs: 2, fps: 20 }), 'fair');
  assert.equal(gradeOf({ lossPercent: 0, rttMs: 200, fps: 20 }), 'fair');
  assert.equal(gradeOf({ lossPercent: 0, rttMs: 2, fps: 10 }), 'fair');
  assert.equal(gradeOf({ lossPercent: 10, rttMs: 2, fps: 20 }), 'poor');
  assert.equal(gradeOf({ lossPercent: 0, rttMs: 500, fps: 20 }), 'poor');
  assert.equal(gradeOf({ lossPercent: 0, rttMs: 2, fps: 3 }), 'poor');
});

test('a participant is graded on the worst loss of their streams; fps counts only for a camera that is on and not paused', () => {
  /** @param {number} participant @param {'camera' | 'microphone' | 'screen'} source @param {number} loss @param {number} fps @param {any} [paused] */
  const row = (participant, source, loss, fps, paused = null) => ({
    participant, source, mid: `${participant}${source}`, width: null, height: null, fps, bitsPerSecond: 0,
    lossPercent: loss, jitterMs: null, freezeCount: null, layer: null, paused,
  });
  const grades = participantGrades(
    [
      row(1, 'camera', 0, 20), row(1, 'microphone', 0, 0),
      row(2, 'camera', 0, 0), row(2, 'microphone', 5, 0),
      row(3, 'camera', 0, 0, 'not_visible'), row(3, 'screen', 50, 0),
      row(4, 'camera', 0, 0),
    ],
    3,
    (id) => id !== 4,
  );
  assert.deepEqual(Object.fromEntries(grades), { 1: 'good', 2: 'poor', 3: 'good', 4: 'good' });
});
