// SDP for the mediasoup benchmark server (server.mjs): reads the load generator's
// publish offer into mediasoup producer parameters, writes mediasoup's answer to it,
// writes the offer of a subscriber's consumers and reads the subscriber's answer.
// Plain line handling: the load generator's offers are str0m's, one BUNDLE of an audio
// and a video section, with rids when it sends simulcast.

/** Header extensions mediasoup's worker knows (it refuses others) and we pass on. */
const PRODUCER_EXTENSIONS = [
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
  'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
  'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
];

/** Codecs we accept from a publisher, by lower-case name. */
const CODECS = { opus: 'audio/opus', vp8: 'video/VP8', rtx: 'video/rtx' };

function attrs(lines, name) {
  const prefix = `a=${name}:`;
  return lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
}

function sections(sdp) {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  const session = [];
  const media = [];
  for (const line of lines) {
    if (line.startsWith('m=')) media.push([line]);
    else (media.length ? media[media.length - 1] : session).push(line);
  }
  return { session, media };
}

function dtlsOf(session, section) {
  const fp = attrs(section, 'fingerprint')[0] ?? attrs(session, 'fingerprint')[0];
  if (!fp) throw new Error('the SDP has no a=fingerprint');
  const [algorithm, value] = fp.split(' ');
  const setup = attrs(section, 'setup')[0] ?? attrs(session, 'setup')[0] ?? 'actpass';
  // The remote's role: actpass lets us (mediasoup) be the DTLS server.
  const role = setup === 'passive' ? 'server' : 'client';
  return { role, fingerprints: [{ algorithm: algorithm.toLowerCase(), value }] };
}

/**
 * Reads a publisher's offer: its DTLS parameters and, per media section, mediasoup
 * producer parameters (payload types as offered, rids as simulcast encodings lowest
 * first, otherwise the section's SSRC if it names one).
 */
export function parseOffer(sdp) {
  const { session, media } = sections(sdp);
  const dtls = dtlsOf(session, media[0] ?? []);
  const out = [];
  for (const section of media) {
    const [kind, port, , ...pts] = section[0].slice(2).split(' ');
    if (port === '0') continue;
    const mid = attrs(section, 'mid')[0];
    const codecs = [];
    for (const pt of pts) {
      const rtpmap = attrs(section, 'rtpmap').find((r) => r.startsWith(`${pt} `));
      if (!rtpmap) continue;
      const [name, clock, channels] = rtpmap.split(' ')[1].split('/');
      const mimeType = CODECS[name.toLowerCase()];
      if (!mimeType || !mimeType.startsWith(kind)) continue;
      const parameters = {};
      for (const f of attrs(section, 'fmtp').filter((x) => x.startsWith(`${pt} `))) {
        for (const kv of f.slice(pt.length + 1).split(';')) {
          const [k, v] = kv.trim().split('=');
          if (k) parameters[k] = Number.isNaN(Number(v)) ? v : Number(v);
        }
      }
      const rtcpFeedback = attrs(section, 'rtcp-fb')
        .filter((x) => x.startsWith(`${pt} `))
        .map((x) => {
          const [type, parameter] = x.slice(pt.length + 1).split(' ');
          return { type, parameter: parameter ?? '' };
        });
      const codec = { mimeType, payloadType: Number(pt), clockRate: Number(clock), parameters, rtcpFeedback };
      if (kind === 'audio') codec.channels = Number(channels ?? 1);
      codecs.push(codec);
    }
    // RTX only for a codec we kept; the media codec first.
    const kept = new Set(codecs.filter((c) => !c.mimeType.endsWith('/rtx')).map((c) => c.payloadType));
    const ordered = codecs
      .filter((c) => !c.mimeType.endsWith('/rtx'))
      .concat(codecs.filter((c) => c.mimeType.endsWith('/rtx') && kept.has(c.parameters.apt)));
    if (!ordered.length) throw new Error(`no Opus or VP8 in the ${kind} section`);
    const headerExtensions = attrs(section, 'extmap')
      .map((x) => {
        const [id, uri] = x.split(' ');
        return { uri, id: Number(id.split('/')[0]) };
      })
      .filter((e) => PRODUCER_EXTENSIONS.includes(e.uri));
    const rids = attrs(section, 'rid')
      .map((x) => x.split(' '))
      .filter(([, dir]) => dir === 'send')
      .map(([rid]) => rid);
    const ssrcs = attrs(section, 'ssrc').map((x) => Number(x.split(' ')[0]));
    const fid = attrs(section, 'ssrc-group').find((x) => x.startsWith('FID '));
    const cname = attrs(section, 'ssrc').map((x) => x.match(/cname:(\S+)/)?.[1]).find(Boolean);
    let encodings;
    if (rids.length) {
      encodings = rids.map((rid) => ({ rid }));
    } else if (fid) {
      const [, ssrc, rtx] = fid.split(' ').map(Number);
      encodings = [{ ssrc, rtx: { ssrc: rtx } }];
    } else if (ssrcs.length) {
      encodings = [{ ssrc: ssrcs[0] }];
    } else {
      encodings = [{}];
    }
    out.push({
      kind,
      mid,
      rids,
      codecs: ordered,
      headerExtensions,
      rtpParameters: {
        mid,
        codecs: ordered,
        headerExtensions,
        encodings,
        rtcp: { cname: cname ?? `lg-${mid}`, reducedSize: true },
      },
    });
  }
  return { dtls, media: out };
}

function transportLines(transport, setup) {
  const ice = transport.iceParameters;
  const lines = [`c=IN IP4 ${transport.iceCandidates[0].address ?? transport.iceCandidates[0].ip}`, 'a=rtcp-mux', 'a=rtcp-rsize'];
  lines.push(`a=ice-ufrag:${ice.usernameFragment}`, `a=ice-pwd:${ice.password}`);
  for (const c of transport.iceCandidates) {
    lines.push(`a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address ?? c.ip} ${c.port} typ ${c.type}`);
  }
  lines.push('a=end-of-candidates');
  const fp = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === 'sha-256');
  lines.push(`a=fingerprint:sha-256 ${fp.value}`, `a=setup:${setup}`);
  return lines;
}

function codecLines(codecs) {
  const lines = [];
  for (const c of codecs) {
    const [, name] = c.mimeType.split('/');
    lines.push(`a=rtpmap:${c.payloadType} ${name}/${c.clockRate}${c.channels > 1 ? `/${c.channels}` : ''}`);
    const params = Object.entries(c.parameters ?? {});
    if (params.length) lines.push(`a=fmtp:${c.payloadType} ${params.map(([k, v]) => `${k}=${v}`).join(';')}`);
    for (const f of c.rtcpFeedback ?? []) {
      lines.push(`a=rtcp-fb:${c.payloadType} ${f.type}${f.parameter ? ` ${f.parameter}` : ''}`);
    }
  }
  return lines;
}

function session(mids) {
  return ['v=0', `o=mediasoup ${Date.now()} 1 IN IP4 0.0.0.0`, 's=-', 't=0 0', 'a=ice-lite', `a=group:BUNDLE ${mids.join(' ')}`, 'a=msid-semantic: WMS *'];
}

/** mediasoup's answer to a parsed publish offer, on `transport` (recvonly, DTLS passive). */
export function answerSdp(offer, transport) {
  const port = transport.iceCandidates[0].port;
  const lines = session(offer.media.map((m) => m.mid));
  for (const m of offer.media) {
    lines.push(`m=${m.kind} ${port} UDP/TLS/RTP/SAVPF ${m.codecs.map((c) => c.payloadType).join(' ')}`);
    lines.push(...transportLines(transport, 'passive'), `a=mid:${m.mid}`, 'a=recvonly');
    lines.push(...codecLines(m.codecs));
    for (const e of m.headerExtensions) lines.push(`a=extmap:${e.id} ${e.uri}`);
    if (m.rids.length) {
      for (const rid of m.rids) lines.push(`a=rid:${rid} recv`);
      lines.push(`a=simulcast:recv ${m.rids.join(';')}`);
    }
  }
  return lines.join('\r\n') + '\r\n';
}

/** The offer of `consumers` on a subscriber's `transport` (sendonly, DTLS actpass). */
export function consumerOfferSdp(transport, consumers, peer) {
  const port = transport.iceCandidates[0].port;
  const mids = consumers.map((c) => c.rtpParameters.mid);
  const lines = session(mids);
  for (const c of consumers) {
    const p = c.rtpParameters;
    lines.push(`m=${c.kind} ${port} UDP/TLS/RTP/SAVPF ${p.codecs.map((x) => x.payloadType).join(' ')}`);
    lines.push(...transportLines(transport, 'actpass'), `a=mid:${p.mid}`, 'a=sendonly');
    lines.push(`a=msid:${c.producerId} ${c.id}`);
    lines.push(...codecLines(p.codecs));
    for (const e of p.headerExtensions) lines.push(`a=extmap:${e.id} ${e.uri}`);
    const enc = p.encodings[0];
    const cname = p.rtcp?.cname ?? peer;
    if (enc.rtx?.ssrc) lines.push(`a=ssrc-group:FID ${enc.ssrc} ${enc.rtx.ssrc}`);
    lines.push(`a=ssrc:${enc.ssrc} cname:${cname}`);
    if (enc.rtx?.ssrc) lines.push(`a=ssrc:${enc.rtx.ssrc} cname:${cname}`);
  }
  return lines.join('\r\n') + '\r\n';
}

/** The DTLS parameters of a subscriber's answer. */
export function parseAnswer(sdp) {
  const { session: s, media } = sections(sdp);
  return dtlsOf(s, media[0] ?? []);
}
