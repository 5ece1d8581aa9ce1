// Minimal proof: create a mediasoup Worker and a Router, print info, close.
import * as mediasoup from 'mediasoup';

const worker = await mediasoup.createWorker({ logLevel: 'warn', rtcMinPort: 40000, rtcMaxPort: 40100 });
console.log('mediasoup version', mediasoup.version, 'worker pid', worker.pid);
worker.on('died', (e) => { console.error('worker died', e); process.exit(1); });
const router = await worker.createRouter({
  mediaCodecs: [
    { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
    { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
  ],
});
console.log('router id', router.id, 'codecs', router.rtpCapabilities.codecs.map((c) => c.mimeType).join(','));
const transport = await router.createWebRtcTransport({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
console.log('webrtc transport', transport.id, JSON.stringify(transport.iceCandidates[0]));
console.log('worker resource usage', JSON.stringify(await worker.getResourceUsage()).slice(0, 120));
worker.close();
console.log('OK');
