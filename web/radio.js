// @ts-check
/**
 * The radio card of the stations page: an audio-only station (Ogg Opus) shows what is
 * playing (station, file, position / duration) and a live level meter instead of an
 * empty video. The meter reads the received audio track through a Web Audio
 * `AnalyserNode`; the track itself keeps playing through the page's video element
 * (Chromium feeds a remote WebRTC track to Web Audio only while a media element plays
 * it, which it does).
 */

import { byId } from './dom.js';
import { t } from './i18n.js';

/** How often the meter is read, ms (a timer, not animation frames, so it also runs in
 * a background tab and in headless browsers). */
const METER_INTERVAL_MS = 100;
/** The meter's range: -60 dBFS (empty) to 0 dBFS (full). */
const FLOOR_DB = -60;

/**
 * Loudness of a block of samples on a 0..1 scale: its RMS in dBFS from FLOOR_DB to 0.
 * @param {Float32Array} samples
 */
export function levelOf(samples) {
  let sum = 0;
  for (const x of samples) sum += x * x;
  const rms = Math.sqrt(sum / Math.max(1, samples.length));
  if (rms <= 0) return 0;
  const db = 20 * Math.log10(rms);
  return Math.min(1, Math.max(0, (db - FLOOR_DB) / -FLOOR_DB));
}

/** The now-playing card and level meter (`#st-radio` in stations.html). */
export class RadioCard {
  /** @param {HTMLVideoElement} video the player's video element, hidden while the card shows */
  constructor(video) {
    this.video = video;
    this.card = byId('st-radio', HTMLElement);
    this.meter = byId('st-level', HTMLMeterElement);
    /** @type {AudioContext | null} */
    this.context = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this.source = null;
    /** @type {AnalyserNode | null} */
    this.analyser = null;
    /** @type {MediaStreamTrack | null} */
    this.track = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.timer = undefined;
    /** @type {Float32Array<ArrayBuffer>} */
    this.samples = new Float32Array(1024);
  }

  /**
   * Shows the card for an audio-only station, hides it otherwise (no station, or one
   * with video).
   * @param {{name: string, playing: string, video: boolean} | undefined} station
   * @param {string} position where it plays, `mm:ss`
   * @param {string} duration one pass, `mm:ss`
   */
  render(station, position, duration) {
    const radio = Boolean(station && !station.video);
    this.card.hidden = !radio;
    this.video.hidden = radio;
    if (!station || !radio) {
      this.meter.value = 0;
      return;
    }
    byId('st-radio-station', HTMLElement).textContent = station.name;
    byId('st-radio-title', HTMLElement).textContent = t('radio.nowPlaying', { title: station.playing });
    byId('st-radio-position', HTMLElement).textContent = t('radio.position', { position, duration });
    // An autoplaying page's context may start suspended; any later render retries.
    if (this.context?.state === 'suspended') void this.context.resume().catch(() => {});
  }

  /**
   * Meters `track`, the station's received audio (replacing the previous one).
   * @param {MediaStreamTrack} track
   */
  listen(track) {
    if (track === this.track) return;
    this.stop();
    this.track = track;
    try {
      this.context ??= new AudioContext();
      this.source = this.context.createMediaStreamSource(new MediaStream([track]));
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = this.samples.length;
      this.source.connect(this.analyser);
      void this.context.resume().catch(() => {});
    } catch {
      // No Web Audio: the card shows without a moving meter.
      return;
    }
    this.timer = setInterval(() => this.read(), METER_INTERVAL_MS);
    track.addEventListener('ended', () => this.stop(), { once: true });
  }

  /** Reads the analyser into the meter. */
  read() {
    if (!this.analyser) return;
    this.analyser.getFloatTimeDomainData(this.samples);
    const level = levelOf(this.samples);
    this.meter.value = level;
    this.meter.dataset.level = level.toFixed(3);
  }

  /** Stops metering (the card stays as it is). */
  stop() {
    clearInterval(this.timer);
    this.timer = undefined;
    this.source?.disconnect();
    this.source = null;
    this.analyser = null;
    this.track = null;
    this.meter.value = 0;
  }
}
