// mediasoup as a benchmark peer: a small signaling server that the load generator
// (`lanmeet-loadgen --target mediasoup`) drives, as it drives Janus's videoroom.
//
// It creates mediasoup workers and one router per room (VP8 + Opus), a WebRtcTransport
// per publishing participant and another per subscribing one (mediasoup is ICE-lite,
// UDP only, on --ip), a producer per published track (simulcast when the offer has
// rids) and a consumer per track of everyone else in the room. The protocol is HTTP
// with JSON bodies, every request a POST:
//
//   /publish   {room, peer, sdp}                  -> {sdp}   the publisher's offer, answered
//   /subscribe {room, peer, publishers, small}    -> {sdp}   an offer with a consumer for every
//              track of the room's other publishers, sent once `publishers` of them publish;
//              `small`: the participant shows small tiles, so consumers prefer the lowest
//              simulcast layer (mediasoup's preferredLayers), otherwise the top one
//   /answer    {peer, sdp}                        -> {}      the subscriber's answer
//   /leave     {peer}                             -> {}      closes the participant's transports
//
// Consumers get no bandwidth estimation (no transport-cc, no REMB feedback negotiated):
// each forwards the preferred layer at once, as lanmeet forwards the layer a `view`
// asks for. Prints "mediasoup ready" when it listens.
//
//   MEDIASOUP_WORKER_BIN=... node server.mjs --listen 10.77.0.1:8300 --ip 10.77.0.1 --workers 1
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as mediasoup from 'mediasoup';
import { parseOffer, answerSdp, consumerOfferSdp, parseAnswer } from './sdp.mjs';

const { values: opts } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:8300' },
    ip: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '1' },
    'min-port': { type: 'string', default: '40000' },
    'max-port': { type: 'string', default: '49999' },
  },
});

const mediaCodecs = [
  { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
  { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

const workers = [];
for (let i = 0; i < Number(opts.workers); i++) {
  const worker = await mediasoup.createWorker({
    // MEDIASOUP_LOG=debug for the worker's debug log (on stderr).
    logLevel: process.env.MEDIASOUP_LOG ?? 'warn',
    logTags: ['info', 'ice', 'dtls', 'rtp', 'srtp', 'rtcp', 'simulcast'],
    rtcMinPort: Number(opts['min-port']),
    rtcMaxPort: Number(opts['max-port']),
  });
  worker.on('died', (e) => {
    console.error('mediasoup worker died', e);
    process.exit(1);
  });
  workers.push(worker);
}

/** Rooms by name: their router, producers by peer, and subscribers waiting for them. */
const rooms = new Map();
/** Participants by peer name: their transports. */
const peers = new Map();

async function room(name) {
  let r = rooms.get(name);
  if (!r) {
    // Rooms are spread over the workers in turn; a room stays on one worker.
    const worker = workers[rooms.size % workers.length];
    r = { router: null, producers: new Map(), waiting: new Set() };
    r.ready = worker.createRouter({ mediaCodecs }).then((router) => (r.router = router));
    rooms.set(name, r);
  }
  await r.ready;
  return r;
}

function peer(name) {
  let p = peers.get(name);
  if (!p) {
    p = { send: null, recv: null };
    peers.set(name, p);
  }
  return p;
}

function transport(router) {
  return router.createWebRtcTransport({
    listenInfos: [{ protocol: 'udp', ip: opts.ip }],
    enableUdp: true,
    enableTcp: false,
    initialAvailableOutgoingBitrate: 10_000_000,
  });
}

async function publish({ room: name, peer: who, sdp }) {
  const r = await room(name);
  const p = peer(who);
  if (p.send) throw new Error(`${who} already publishes`);
  const offer = parseOffer(sdp);
  p.send = await transport(r.router);
  await p.send.connect({ dtlsParameters: offer.dtls });
  const producers = [];
  for (const m of offer.media) {
    producers.push(await p.send.produce({ kind: m.kind, rtpParameters: m.rtpParameters }));
  }
  r.producers.set(who, producers);
  for (const wake of r.waiting) wake();
  return { sdp: answerSdp(offer, p.send) };
}

/** A client's RTP capabilities: the router's, without bandwidth estimation. */
function clientCapabilities(router) {
  const caps = structuredClone(router.rtpCapabilities);
  for (const c of caps.codecs) {
    c.rtcpFeedback = (c.rtcpFeedback ?? []).filter(
      (f) => f.type !== 'transport-cc' && f.type !== 'goog-remb',
    );
  }
  caps.headerExtensions = caps.headerExtensions.filter((e) =>
    [
      'urn:ietf:params:rtp-hdrext:sdes:mid',
      'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
      'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    ].includes(e.uri),
  );
  return caps;
}

async function subscribe({ room: name, peer: who, publishers, small }) {
  const r = await room(name);
  const p = peer(who);
  if (p.recv) throw new Error(`${who} already subscribes`);
  const others = () => [...r.producers.keys()].filter((k) => k !== who);
  while (others().length < publishers) {
    // Woken by the next producer in the room (or after a second, to check again).
    let wake;
    await new Promise((resolve) => {
      wake = resolve;
      r.waiting.add(wake);
      setTimeout(resolve, 1000);
    });
    r.waiting.delete(wake);
  }
  p.recv = await transport(r.router);
  const caps = clientCapabilities(r.router);
  const consumers = [];
  for (const other of others()) {
    for (const producer of r.producers.get(other)) {
      const layers = producer.kind === 'video' ? { spatialLayer: small ? 0 : 2, temporalLayer: 0 } : undefined;
      consumers.push(
        await p.recv.consume({
          producerId: producer.id,
          rtpCapabilities: caps,
          paused: false,
          preferredLayers: layers,
        }),
      );
    }
  }
  return { sdp: consumerOfferSdp(p.recv, consumers, who) };
}

async function answer({ peer: who, sdp }) {
  const p = peers.get(who);
  if (!p?.recv) throw new Error(`${who} has no subscription to answer`);
  await p.recv.connect({ dtlsParameters: parseAnswer(sdp) });
  return {};
}

async function leave({ peer: who }) {
  const p = peers.get(who);
  if (p) {
    p.send?.close();
    p.recv?.close();
    peers.delete(who);
  }
  for (const r of rooms.values()) r.producers.delete(who);
  return {};
}

const routes = { '/publish': publish, '/subscribe': subscribe, '/answer': answer, '/leave': leave };

const server = http.createServer((req, res) => {
  const route = routes[req.url];
  if (!route || req.method !== 'POST') {
    res.writeHead(404).end('{"error":"no such endpoint"}');
    return;
  }
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', async () => {
    try {
      if (process.env.MEDIASOUP_LOG) console.error(`${req.url} ${body}`);
      const reply = await route(JSON.parse(body));
      if (process.env.MEDIASOUP_LOG) console.error(`${req.url} -> ${JSON.stringify(reply)}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    } catch (e) {
      console.error(`${req.url}: ${e.stack ?? e}`);
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(e.message ?? e) }));
    }
  });
});
// Subscribers wait for the room's publishers: no request timeout.
server.requestTimeout = 0;
server.headersTimeout = 0;
server.keepAliveTimeout = 60_000;
const [host, port] = opts.listen.split(':');
server.listen(Number(port), host, () => {
  console.log(
    `mediasoup ready: ${mediasoup.version}, ${workers.length} worker(s) (pids ${workers.map((w) => w.pid).join(',')}), ` +
      `http://${opts.listen}, media on ${opts.ip}, ${os.cpus().length} cpus`,
  );
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const w of workers) w.close();
    process.exit(0);
  });
}
