// @ts-check
/**
 * The local camera and microphone.
 *
 * Switching the camera off stops its track, so the camera light goes off, and hands
 * `null` to the sink (the publish sender sends nothing). Switching it on opens the camera
 * again and hands the new track over. The microphone is muted by disabling its track
 * (it sends silence), which keeps switching instant.
 */

import { DEFAULT_QUALITY, QUALITIES } from './publish.js';
import { t } from './i18n.js';

/** @typedef {'audio' | 'video'} TrackKind */
/** @typedef {import('./publish.js').Quality} Quality */

/**
 * What the user chose in Settings.
 * @typedef {object} MediaSettings
 * @property {Quality} quality Camera capture size.
 * @property {string} cameraId Camera device id; '' for the default.
 * @property {string} microphoneId Microphone device id; '' for the default.
 * @property {boolean} echoCancellation
 * @property {boolean} noiseSuppression
 * @property {boolean} autoGainControl
 */

/** @returns {MediaSettings} */
export function defaultSettings() {
  return {
    quality: DEFAULT_QUALITY,
    cameraId: '',
    microphoneId: '',
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
  };
}

/**
 * A device constraint: `exact` for the chosen device, `ideal` for the fallback when it
 * is gone (see `openChosen`).
 * @param {string} id
 * @param {boolean} exact
 */
function deviceConstraint(id, exact) {
  return id ? { deviceId: exact ? { exact: id } : { ideal: id } } : {};
}

/**
 * Microphone constraints for the settings.
 * @param {MediaSettings} s
 * @param {boolean} [exact]
 * @returns {MediaTrackConstraints}
 */
export function audioConstraints(s, exact = false) {
  return {
    echoCancellation: s.echoCancellation,
    noiseSuppression: s.noiseSuppression,
    autoGainControl: s.autoGainControl,
    ...deviceConstraint(s.microphoneId, exact),
  };
}

/**
 * Camera constraints for the settings: the quality's size if the camera can.
 * @param {MediaSettings} s
 * @param {boolean} [exact]
 * @returns {MediaTrackConstraints}
 */
export function videoConstraints(s, exact = false) {
  const { width, height } = QUALITIES[s.quality].capture;
  return {
    width: { ideal: width },
    height: { ideal: height },
    frameRate: { ideal: 30 },
    ...deviceConstraint(s.cameraId, exact),
  };
}

/**
 * getUserMedia for the chosen devices. The `exact` request comes first, because browsers
 * may ignore an `ideal` device id (Chromium does when the devices' formats differ, so a
 * camera chosen before joining was not the one switched on later); if a chosen device
 * is gone, the browser's pick.
 * @param {MediaSettings} settings
 * @param {(exact: boolean) => MediaStreamConstraints} constraints
 */
async function openChosen(settings, constraints) {
  const wanted = constraints(true);
  const chosen = (wanted.video && settings.cameraId) || (wanted.audio && settings.microphoneId);
  if (chosen) {
    try {
      return await navigator.mediaDevices.getUserMedia(wanted);
    } catch (err) {
      const name = err && typeof err === 'object' && 'name' in err ? err.name : '';
      if (name !== 'OverconstrainedError' && name !== 'NotFoundError') {
        throw err;
      }
    }
  }
  return navigator.mediaDevices.getUserMedia(constraints(false));
}

export class LocalMedia {
  /** @param {MediaSettings} [settings] */
  constructor(settings = defaultSettings()) {
    /** @type {MediaSettings} */
    this.settings = { ...settings };
    /** @type {MediaStreamTrack | null} */
    this.audio = null;
    /** @type {MediaStreamTrack | null} */
    this.video = null;
    /** Whether the camera is on (a live video track exists). */
    this.camera = false;
    /** Whether the microphone is on (a live, enabled audio track exists). */
    this.microphone = false;
    /** Set when a device could not be opened: text for the user. @type {string | null} */
    this.notice = null;
    /** A stream with the current video track, for the self preview. */
    this.preview = new MediaStream();
    this.stopped = false;

    /**
     * Receives the track to send whenever it changes (null: send nothing).
     * @type {(kind: TrackKind, track: MediaStreamTrack | null) => Promise<void> | void}
     */
    this.onTrack = () => {};
    /** Called after camera or microphone state changed. @type {() => void} */
    this.onChange = () => {};
  }

  /**
   * Opens the camera and the microphone, or only those wanted (a device that starts off
   * is not opened: its light stays off; switching it on opens it). Never throws:
   * whatever cannot be opened stays off and `notice` explains why.
   * @param {{camera?: boolean, microphone?: boolean}} [wanted]
   */
  async start({ camera = true, microphone = true } = {}) {
    if (!camera && !microphone) {
      return;
    }
    if (!navigator.mediaDevices?.getUserMedia) {
      this.notice = t('media.insecure');
      return;
    }
    /** @type {string[]} */
    const problems = [];
    try {
      const stream = await openChosen(this.settings, (exact) => ({
        ...(microphone ? { audio: audioConstraints(this.settings, exact) } : {}),
        ...(camera ? { video: videoConstraints(this.settings, exact) } : {}),
      }));
      this.adopt(stream);
    } catch (bothErr) {
      if (camera && microphone) {
        // One device may work on its own: try each separately.
        for (const kind of /** @type {TrackKind[]} */ (['audio', 'video'])) {
          try {
            const stream = await openChosen(this.settings, (exact) =>
              kind === 'audio' ? { audio: audioConstraints(this.settings, exact) } : { video: videoConstraints(this.settings, exact) },
            );
            this.adopt(stream);
          } catch (err) {
            problems.push(t(kind === 'audio' ? 'media.problem_microphone' : 'media.problem_camera', { reason: describeMediaError(err) }));
          }
        }
      }
      if (problems.length === 0) {
        problems.push(describeMediaError(bothErr));
      }
    }
    if (this.stopped) {
      this.stop();
      return;
    }
    const noCamera = camera && !this.video;
    const noMicrophone = microphone && !this.audio;
    if (noCamera && noMicrophone) {
      this.notice = t('media.none_usable', { problems: problems.join('; ') });
    } else if (noCamera) {
      this.notice = t('media.camera_unusable', { problems: problems.join('; ') });
    } else if (noMicrophone) {
      this.notice = t('media.microphone_unusable', { problems: problems.join('; ') });
    }
  }

  /**
   * Takes the tracks of a fresh getUserMedia stream.
   * @param {MediaStream} stream
   */
  adopt(stream) {
    for (const track of stream.getAudioTracks()) {
      this.audio = track;
      this.microphone = true;
    }
    for (const track of stream.getVideoTracks()) {
      this.setVideo(track);
    }
  }

  /** @param {MediaStreamTrack | null} track */
  setVideo(track) {
    if (this.video) {
      this.preview.removeTrack(this.video);
    }
    this.video = track;
    this.camera = track !== null;
    if (track) {
      this.preview.addTrack(track);
    }
  }

  /**
   * Switches the camera. Throws if the camera cannot be opened.
   * @param {boolean} on
   */
  async setCamera(on) {
    if (on === this.camera) {
      return;
    }
    if (on) {
      const stream = await openChosen(this.settings, (exact) => ({ video: videoConstraints(this.settings, exact) }));
      const track = stream.getVideoTracks()[0];
      if (this.stopped || this.camera) {
        track.stop();
        return;
      }
      this.setVideo(track);
      await this.onTrack('video', track);
    } else {
      const track = this.video;
      this.setVideo(null);
      await this.onTrack('video', null);
      // Stopping the track releases the camera (its light goes off).
      track?.stop();
    }
    this.onChange();
  }

  /**
   * Switches the microphone. Throws if there is no microphone and none can be opened.
   * @param {boolean} on
   */
  async setMicrophone(on) {
    if (on === this.microphone) {
      return;
    }
    if (on && !this.audio) {
      const stream = await openChosen(this.settings, (exact) => ({ audio: audioConstraints(this.settings, exact) }));
      const track = stream.getAudioTracks()[0];
      if (this.stopped) {
        track.stop();
        return;
      }
      this.audio = track;
      await this.onTrack('audio', track);
    }
    if (this.audio) {
      this.audio.enabled = on;
    }
    this.microphone = on;
    this.onChange();
  }

  /**
   * Changes the camera's capture size at once. Shrinking or growing the live track is
   * enough when the camera allows it; otherwise the camera is opened again at the new
   * size and the track replaced (no renegotiation either way).
   * @param {Quality} quality
   */
  async setQuality(quality) {
    this.settings.quality = quality;
    const track = this.video;
    if (!track) {
      return;
    }
    const want = QUALITIES[quality].capture.height;
    try {
      await track.applyConstraints(videoConstraints(this.settings));
    } catch (err) {
      console.warn('lanmeet: applyConstraints on the camera failed', err);
    }
    const got = track.getSettings().height ?? 0;
    if (Math.abs(got - want) > want * 0.1 && this.video === track) {
      await this.reopenCamera();
    }
  }

  /**
   * Switches to another camera while live.
   * @param {string} deviceId '' for the default
   */
  async setCameraDevice(deviceId) {
    this.settings.cameraId = deviceId;
    if (this.video) {
      await this.reopenCamera();
    }
  }

  /** Opens the camera again with the current settings and replaces the live track. */
  async reopenCamera() {
    const old = this.video;
    const stream = await navigator.mediaDevices.getUserMedia({ video: videoConstraints(this.settings, true) });
    const track = stream.getVideoTracks()[0];
    if (this.stopped || this.video !== old) {
      // Switched off (or stopped) meanwhile.
      track.stop();
      return;
    }
    this.setVideo(track);
    await this.onTrack('video', track);
    old?.stop();
    this.onChange();
  }

  /**
   * Switches to another microphone while live.
   * @param {string} deviceId '' for the default
   */
  async setMicrophoneDevice(deviceId) {
    this.settings.microphoneId = deviceId;
    await this.reopenMicrophone();
  }

  /**
   * Changes echo cancellation, noise suppression or automatic gain control while live.
   * Chromium does not reliably apply these to a running track, so the microphone is
   * opened again and the track replaced.
   * @param {Partial<Pick<MediaSettings, 'echoCancellation' | 'noiseSuppression' | 'autoGainControl'>>} processing
   */
  async setAudioProcessing(processing) {
    Object.assign(this.settings, processing);
    await this.reopenMicrophone();
  }

  /** Opens the microphone again with the current settings, keeping the mute state. */
  async reopenMicrophone() {
    const old = this.audio;
    if (!old) {
      return;
    }
    const stream = await navigator.mediaDevices.getUserMedia({ audio: audioConstraints(this.settings, true) });
    const track = stream.getAudioTracks()[0];
    if (this.stopped || this.audio !== old) {
      track.stop();
      return;
    }
    track.enabled = this.microphone;
    this.audio = track;
    await this.onTrack('audio', track);
    old.stop();
  }

  /** Releases camera and microphone. */
  stop() {
    this.stopped = true;
    this.audio?.stop();
    this.video?.stop();
    this.audio = null;
    this.setVideo(null);
    this.microphone = false;
  }
}

/**
 * A user-facing explanation of a getUserMedia failure.
 * @param {unknown} err
 */
export function describeMediaError(err) {
  const name = err instanceof Error || err instanceof DOMException ? err.name : '';
  switch (name) {
    case 'NotFoundError':
      return t('media.not_found');
    case 'NotAllowedError':
      return t('media.not_allowed');
    case 'NotReadableError':
      return t('media.not_readable');
    case 'OverconstrainedError':
      return t('media.overconstrained');
    default:
      return err instanceof Error ? err.message || name : String(err);
  }
}
