// Unit tests of sdp.mjs (no mediasoup needed): node --test bench/mediasoup/sdp.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOffer, answerSdp, consumerOfferSdp, parseAnswer } from './sdp.mjs';

// A publish offer as the load generator's str0m writes it (simulcast video).
const OFFER = [
  'v=0',
  'o=str0m-123 1 2 IN IP4 0.0.0.0',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=fingerprint:sha-256 AA:BB:CC',
  'a=ice-options:trickle',
  'a=ice-ufrag:u1',
  'a=ice-pwd:p1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=setup:actpass',
  'a=mid:0',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=extmap:13 urn:3gpp:video-orientation',
  'a=sendonly',
  'a=msid:lg1 lg1-mic',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=ssrc:1111 cname:lgcname',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97',
  'c=IN IP4 0.0.0.0',
  'a=setup:actpass',
  'a=mid:1',
  'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
  'a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
  'a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
  'a=sendonly',
  'a=rtcp-mux',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 transport-cc',
  'a=rtcp-fb:96 nack',
  'a=rtcp-fb:96 nack pli',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rid:q send',
  'a=rid:h send',
  'a=rid:f send',
  'a=simulcast:send q;h;f',
  '',
].join('\r\n');

const TRANSPORT = {
  iceParameters: { usernameFragment: 'msu', password: 'msp' },
  iceCandidates: [{ foundation: 'udpcand', priority: 1076302079, address: '10.77.0.1', protocol: 'udp', port: 40001, type: 'host' }],
  dtlsParameters: { fingerprints: [{ algorithm: 'sha-256', value: 'DD:EE:FF' }] },
};

test('a simulcast publish offer becomes producers with rid encodings, lowest first', () => {
  const offer = parseOffer(OFFER);
  assert.deepEqual(offer.dtls, { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: 'AA:BB:CC' }] });
  const [audio, video] = offer.media;
  assert.equal(audio.kind, 'audio');
  assert.equal(audio.rtpParameters.mid, '0');
  assert.deepEqual(audio.rtpParameters.encodings, [{ ssrc: 1111 }]);
  assert.equal(audio.rtpParameters.rtcp.cname, 'lgcname');
  assert.deepEqual(audio.rtpParameters.codecs, [
    { mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2, parameters: { minptime: 10, useinbandfec: 1 }, rtcpFeedback: [] },
  ]);
  // mediasoup refuses header extensions it does not know (video-orientation here).
  assert.deepEqual(audio.rtpParameters.headerExtensions.map((e) => e.id), [1, 3, 4]);
  assert.deepEqual(video.rtpParameters.encodings, [{ rid: 'q' }, { rid: 'h' }, { rid: 'f' }]);
  assert.deepEqual(video.rtpParameters.codecs.map((c) => [c.mimeType, c.payloadType]), [['video/VP8', 96], ['video/rtx', 97]]);
  assert.deepEqual(video.rtpParameters.codecs[0].rtcpFeedback[2], { type: 'nack', parameter: 'pli' });
});

test('the answer is ICE-lite, DTLS passive, receives the offered rids and payload types', () => {
  const sdp = answerSdp(parseOffer(OFFER), TRANSPORT);
  const lines = sdp.split('\r\n');
  for (const l of ['a=ice-lite', 'a=group:BUNDLE 0 1', 'm=audio 40001 UDP/TLS/RTP/SAVPF 111', 'm=video 40001 UDP/TLS/RTP/SAVPF 96 97',
    'a=setup:passive', 'a=recvonly', 'a=fingerprint:sha-256 DD:EE:FF', 'a=candidate:udpcand 1 udp 1076302079 10.77.0.1 40001 typ host',
    'a=rid:q recv', 'a=simulcast:recv q;h;f', 'a=fmtp:97 apt=96', 'a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id']) {
    assert.ok(lines.includes(l), `answer lacks ${l}`);
  }
  assert.ok(!sdp.includes('video-orientation'));
  assert.ok(!lines.includes('a=sendonly'));
});

test('a single-layer offer with an RTX group keeps both SSRCs', () => {
  const single = OFFER.replace(/a=rid:.*\r\n/g, '').replace(/a=simulcast:.*\r\n/, '')
    .replace('a=fmtp:97 apt=96\r\n', 'a=fmtp:97 apt=96\r\na=ssrc-group:FID 2222 3333\r\na=ssrc:2222 cname:lgcname\r\na=ssrc:3333 cname:lgcname\r\n');
  const video = parseOffer(single).media[1];
  assert.deepEqual(video.rtpParameters.encodings, [{ ssrc: 2222, rtx: { ssrc: 3333 } }]);
  assert.ok(!answerSdp(parseOffer(single), TRANSPORT).includes('a=simulcast'));
});

test('consumers are offered sendonly with their SSRCs, and the answer gives the DTLS role', () => {
  const consumer = {
    id: 'c1', producerId: 'p1', kind: 'video',
    rtpParameters: {
      mid: '0',
      codecs: [{ mimeType: 'video/VP8', payloadType: 101, clockRate: 90000, parameters: {}, rtcpFeedback: [{ type: 'nack', parameter: '' }] },
        { mimeType: 'video/rtx', payloadType: 102, clockRate: 90000, parameters: { apt: 101 }, rtcpFeedback: [] }],
      headerExtensions: [{ uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 1 }],
      encodings: [{ ssrc: 5, rtx: { ssrc: 6 } }],
      rtcp: { cname: 'x' },
    },
  };
  const lines = consumerOfferSdp(TRANSPORT, [consumer], 'peer').split('\r\n');
  for (const l of ['a=group:BUNDLE 0', 'm=video 40001 UDP/TLS/RTP/SAVPF 101 102', 'a=sendonly', 'a=setup:actpass',
    'a=rtcp-fb:101 nack', 'a=fmtp:102 apt=101', 'a=ssrc-group:FID 5 6', 'a=ssrc:5 cname:x', 'a=msid:p1 c1']) {
    assert.ok(lines.includes(l), `offer lacks ${l}`);
  }
  const answer = 'v=0\r\na=fingerprint:sha-256 12:34\r\nm=video 9 UDP/TLS/RTP/SAVPF 101\r\na=setup:active\r\n';
  assert.deepEqual(parseAnswer(answer), { role: 'client', fingerprints: [{ algorithm: 'sha-256', value: '12:34' }] });
  assert.equal(parseAnswer(answer.replace('active', 'passive')).role, 'server');
  assert.throws(() => parseAnswer('v=0\r\nm=video 9 X 1\r\n'), /fingerprint/);
});
