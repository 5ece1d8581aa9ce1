// @ts-check
/**
 * Tiles of the meeting stage: one per person (video or camera-off placeholder, name,
 * muted mark, Pin button, low-bandwidth mark, connection-quality mark) and one per shared screen.
 * All user-provided text goes through `textContent`.
 */

import { el, hueOf, icon, initials } from './dom.js';
import { t } from './i18n.js';

/** @typedef {import('./protocol.js').Participant} Participant */

/** A video element that plays muted and inline (sound has its own element). */
function silentVideo() {
  const video = el('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true;
  video.setAttribute('playsinline', '');
  video.setAttribute('muted', '');
  return video;
}

/** One person's tile: video, camera-off placeholder, name, muted mark and Pin. */
export class Tile {
  /**
   * @param {string} name
   * @param {boolean} self
   */
  constructor(name, self) {
    this.self = self;
    this.name = name;
    this.camera = false;
    this.root = el('div', self ? 'tile self' : 'tile');
    this.video = silentVideo();
    this.video.addEventListener('loadeddata', () => this.root.classList.remove('waiting'));

    this.avatar = el('div', 'avatar');
    this.placeholderName = el('div', 'placeholder-name');
    const placeholder = el('div', 'placeholder');
    placeholder.append(this.avatar, this.placeholderName);

    this.nameLabel = el('span', 'name');
    this.mutedMark = el('span', 'muted-mark');
    this.mutedMark.setAttribute('role', 'img');
    this.mutedMark.setAttribute('aria-label', t('tile.muted'));
    this.mutedMark.title = t('tile.microphone_off');
    this.mutedMark.append(icon('microphone', 'slash'));
    this.mutedMark.hidden = true;
    const caption = el('div', 'caption');
    caption.append(this.mutedMark, this.nameLabel);
    this.caption = caption;

    this.pinButton = el('button', 'pin-button');
    this.pinButton.type = 'button';
    this.pinButton.setAttribute('aria-pressed', 'false');
    this.pinButton.append(icon('pin'));
    /** The Pin button was pressed. @type {() => void} */
    this.onPin = () => {};
    this.pinButton.addEventListener('click', () => this.onPin());

    this.pausedMark = el('div', 'paused-mark', t('tile.paused'));
    this.pausedMark.hidden = true;

    this.root.append(this.video, placeholder, this.pausedMark, caption, this.pinButton);
    this.root.classList.add('waiting');
    this.setName(name, self);
  }

  /**
   * @param {string} name
   * @param {boolean} self
   */
  setName(name, self) {
    this.name = name;
    this.nameLabel.textContent = self ? t('tile.you', { name }) : name;
    this.placeholderName.textContent = name;
    this.avatar.textContent = initials(name);
    this.avatar.style.setProperty('--hue', String(hueOf(name)));
    const label = t('tile.pin', { name });
    this.mutedMark.setAttribute('aria-label', t('tile.muted'));
    this.mutedMark.title = t('tile.microphone_off');
    this.pausedMark.textContent = t('tile.paused');
    this.pinButton.setAttribute('aria-label', label);
    this.pinButton.title = label;
  }

  /**
   * @param {boolean} camera
   * @param {boolean} microphone
   */
  setState(camera, microphone) {
    this.camera = camera;
    this.root.classList.toggle('camera-off', !camera);
    this.mutedMark.hidden = microphone;
  }

  /** @param {boolean} pinned */
  setPinned(pinned) {
    this.pinButton.setAttribute('aria-pressed', String(pinned));
    this.root.classList.toggle('pinned', pinned);
  }

  /**
   * Shows or hides the "paused: low bandwidth" mark.
   * @param {boolean} paused
   */
  setPaused(paused) {
    this.pausedMark.hidden = !paused;
  }

  /** @param {MediaStream | null} stream */
  setVideo(stream) {
    if (this.video.srcObject !== stream) {
      this.root.classList.add('waiting');
      this.video.srcObject = stream;
    }
    this.resume();
  }

  /** Starts playback again (after the tile moved in the page, or a new stream). */
  resume() {
    if (this.video.srcObject) {
      // Autoplay of muted video is always allowed; a rejection here is only an interruption.
      this.video.play().catch(() => {});
    }
  }
}

/** A remote participant's tile, with a separate element for their sound. */
export class RemoteTile extends Tile {
  /** @param {Participant} participant */
  constructor(participant) {
    super(participant.name, false);
    this.root.dataset.participantId = String(participant.id);
    /** The subscribe connection's media section showing this camera. @type {string | null} */
    this.mid = null;
    // Sound plays through its own element so it keeps playing when the video is off.
    this.audio = el('audio');
    this.audio.autoplay = true;
    this.audio.hidden = true;
    this.root.append(this.audio);
    /** The connection-quality mark: three bars, shown after the first statistics. */
    this.qualityMark = el('span', 'quality-mark');
    this.qualityMark.setAttribute('role', 'img');
    this.qualityMark.append(el('i'), el('i'), el('i'));
    this.qualityMark.hidden = true;
    this.caption.prepend(this.qualityMark);
    this.setState(participant.camera, participant.microphone);
  }

  /**
   * Shows how well this participant's media arrives (stats.js, `gradeOf`).
   * @param {import('./stats.js').Grade | null} grade
   */
  setQuality(grade) {
    this.qualityMark.hidden = grade === null;
    if (grade !== null && this.qualityMark.dataset.quality !== grade) {
      const label = t('tile.connection', { quality: t(`quality.${grade}`) });
      this.qualityMark.dataset.quality = grade;
      this.qualityMark.setAttribute('aria-label', label);
      this.qualityMark.title = label;
    }
  }
}

/** A participant's shared screen: large, uncropped, labelled "<name>'s screen". */
export class PresentationTile {
  /** @param {number} participantId */
  constructor(participantId) {
    this.participantId = participantId;
    /** The subscribe connection's media section carrying the screen. @type {string | null} */
    this.mid = null;
    this.root = el('div', 'tile presentation');
    this.root.dataset.screenOf = String(participantId);
    this.root.setAttribute('role', 'img');
    this.video = silentVideo();
    this.nameLabel = el('span', 'name');
    const caption = el('div', 'caption');
    caption.setAttribute('aria-hidden', 'true');
    caption.append(this.nameLabel);
    this.pausedMark = el('div', 'paused-mark', t('tile.paused'));
    this.pausedMark.hidden = true;
    this.root.append(this.video, this.pausedMark, caption);
  }

  /** @param {string} name The presenter's name. */
  setName(name) {
    const label = t('tile.screen_of', { name });
    this.nameLabel.textContent = label;
    this.root.setAttribute('aria-label', label);
  }

  /** @param {boolean} paused */
  setPaused(paused) {
    this.pausedMark.hidden = !paused;
  }

  /** @param {MediaStreamTrack} track */
  setTrack(track) {
    const current = /** @type {MediaStream | null} */ (this.video.srcObject);
    if (current?.getVideoTracks()[0] !== track) {
      this.video.srcObject = new MediaStream([track]);
    }
    this.resume();
  }

  resume() {
    if (this.video.srcObject) {
      this.video.play().catch(() => {});
    }
  }
}
