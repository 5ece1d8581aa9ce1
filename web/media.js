// @ts-check
/**
 * The local camera and microphone.
 *
 * Switching the camera off stops its track, so the camera light goes off, and hands
 * `null` to the sink (the publish sender sends nothing). Switching it on opens the camera
 * again and hands the new track over. The microphone is muted by disabling its track
 * (it sends silence), which keeps switching instant.
 */

/** Microphone constraints: the processing a meeting needs. */
export const AUDIO_CONSTRAINTS = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
};

/** Camera constraints: 720p if the camera can. */
export const VIDEO_CONSTRAINTS = {
  width: { ideal: 1280 },
  height: { ideal: 720 },
  frameRate: { ideal: 30 },
};

/** @typedef {'audio' | 'video'} TrackKind */

export class LocalMedia {
  constructor() {
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
   * Opens camera and microphone. Never throws: whatever cannot be opened stays off and
   * `notice` explains why.
   */
  async start() {
    if (!navigator.mediaDevices?.getUserMedia) {
      this.notice =
        'This page cannot use a camera or microphone here (it needs https or localhost). ' +
        'You joined without them.';
      return;
    }
    /** @type {string[]} */
    const problems = [];
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: AUDIO_CONSTRAINTS,
        video: VIDEO_CONSTRAINTS,
      });
      this.adopt(stream);
    } catch (bothErr) {
      // One device may work on its own: try each separately.
      for (const kind of /** @type {TrackKind[]} */ (['audio', 'video'])) {
        try {
          const stream = await navigator.mediaDevices.getUserMedia(
            kind === 'audio' ? { audio: AUDIO_CONSTRAINTS } : { video: VIDEO_CONSTRAINTS },
          );
          this.adopt(stream);
        } catch (err) {
          problems.push(`${kind === 'audio' ? 'microphone' : 'camera'} (${describeMediaError(err)})`);
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
    if (!this.audio && !this.video) {
      this.notice = `No camera or microphone could be used: ${problems.join('; ')}. You joined without them.`;
    } else if (!this.video) {
      this.notice = `Your camera could not be used: ${problems.join('; ')}. You joined with your microphone only.`;
    } else if (!this.audio) {
      this.notice = `Your microphone could not be used: ${problems.join('; ')}. You joined with your camera only.`;
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
      const stream = await navigator.mediaDevices.getUserMedia({ video: VIDEO_CONSTRAINTS });
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
      const stream = await navigator.mediaDevices.getUserMedia({ audio: AUDIO_CONSTRAINTS });
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
      return 'no device found';
    case 'NotAllowedError':
      return 'permission denied';
    case 'NotReadableError':
      return 'the device is in use or not working';
    case 'OverconstrainedError':
      return 'the device does not support the requested settings';
    default:
      return err instanceof Error ? err.message || name : String(err);
  }
}
