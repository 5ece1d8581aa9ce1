// SRTP sanity: UDP -> PlainTransport(router1) -> pipeToRouter(enableSrtp) -> router2 -> DirectTransport consumer.
import * as mediasoup from 'mediasoup';
import dgram from 'node:dgram';

const codecs = [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }];
const worker = await mediasoup.createWorker({ logLevel: 'warn' });
const r1 = await worker.createRouter({ mediaCodecs: codecs });
const worker2 = await mediasoup.createWorker({ logLevel: 'warn' });
const r2 = await worker2.createRouter({ mediaCodecs: codecs });
const plain = await r1.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
const producer = await plain.produce({
  kind: 'audio',
  rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] },
});
const { pipeProducer } = await r1.pipeToRouter({ producerId: producer.id, router: r2, enableSrtp: true });
const direct = await r2.createDirectTransport();
const consumer = await direct.consume({ producerId: pipeProducer.id, rtpCapabilities: r2.rtpCapabilities });
let got = 0;
consumer.on('rtp', () => { got++; });
const sock = dgram.createSocket('udp4');
for (let i = 0; i < 50; i++) {
  const pkt = Buffer.alloc(12 + 40, 0xab);
  pkt[0] = 0x80; pkt[1] = 100; pkt.writeUInt16BE(i, 2); pkt.writeUInt32BE(i * 960, 4); pkt.writeUInt32BE(1111, 8);
  sock.send(pkt, plain.tuple.localPort, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 10));
}
await new Promise((r) => setTimeout(r, 300));
console.log('consumer received RTP packets via SRTP pipe:', got);
sock.close(); worker.close(); worker2.close();
process.exit(got > 0 ? 0 : 1);
