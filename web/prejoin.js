// @ts-check
/**
 * The pre-join screen: name and room, a live preview of the camera, the microphone's
 * level, device choice and camera and microphone switches. Nothing reaches the server
 * until Join is pressed; the meeting then starts with the devices (and their on/off
 * state) chosen here, on the same tracks (the camera is not asked for twice).
 *
 * `JoinView` only renders and reports input; `PreJoin` owns the previewed `LocalMedia`
 * until app.js hands it to the meeting (`release`).
 */

import { byId } from './dom.js';
import { LocalMedia, describeMediaError } from './media.js';
import { bindLanguageMenu, fillDevices, loadSettings, saveSettings } from './settings.js';
import { onLanguageChange, t } from './i18n.js';

export class JoinView {
  constructor() {
    this.root = byId('join-view', HTMLElement);
    this.form = byId('join-form', HTMLFormElement);
    this.nameInput = byId('join-name', HTMLInputElement);
    this.roomInput = byId('join-room', HTMLInputElement);
    this.passwordField = byId('join-password-field', HTMLElement);
    this.passwordInput = byId('join-password', HTMLInputElement);
    this.error = byId('join-error', HTMLElement);
    this.button = byId('join-button', HTMLButtonElement);
    this.frame = byId('preview-frame', HTMLElement);
    this.video = byId('preview-video', HTMLVideoElement);
    this.cameraButton = byId('preview-camera', HTMLButtonElement);
    this.micButton = byId('preview-microphone', HTMLButtonElement);
    this.cameraSelect = byId('join-camera', HTMLSelectElement);
    this.micSelect = byId('join-microphone', HTMLSelectElement);
    this.level = byId('mic-level', HTMLMeterElement);
    this.status = byId('preview-status', HTMLElement);
    bindLanguageMenu(byId('join-language', HTMLSelectElement));
    /** The user asked to join (`password` '' unless asked for). @type {(name: string, room: string, password: string) => void} */
    this.onSubmit = () => {};
    /** The camera switch was pressed. @type {() => void} */
    this.onCamera = () => {};
    /** The microphone switch was pressed. @type {() => void} */
    this.onMicrophone = () => {};
    /** Another camera was chosen ('' for the default). @type {(deviceId: string) => void} */
    this.onCameraDevice = () => {};
    /** Another microphone was chosen ('' for the default). @type {(deviceId: string) => void} */
    this.onMicrophoneDevice = () => {};
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.onSubmit(this.nameInput.value, this.roomInput.value, this.passwordField.hidden ? '' : this.passwordInput.value);
    });
    // Another room may need another password, or none.
    this.roomInput.addEventListener('input', () => this.hidePassword());
    this.cameraButton.addEventListener('click', () => this.onCamera());
    this.micButton.addEventListener('click', () => this.onMicrophone());
    this.cameraSelect.addEventListener('change', () => this.onCameraDevice(this.cameraSelect.value));
    this.micSelect.addEventListener('change', () => this.onMicrophoneDevice(this.micSelect.value));
  }

  /**
   * Shows the screen, prefilled, with the focus on the Join button when name and room
   * are known (a room link), else on the first empty field.
   * @param {{name?: string, room?: string}} values
   */
  show({ name, room }) {
    if (name !== undefined) {
      this.nameInput.value = name;
    }
    if (room !== undefined) {
      this.roomInput.value = room;
    }
    this.setBusy(false);
    this.root.hidden = false;
    document.title = 'lanmeet';
    (this.nameInput.value && this.roomInput.value ? this.button : this.nameInput.value ? this.roomInput : this.nameInput).focus();
  }

  hide() {
    this.root.hidden = true;
  }

  /**
   * While joining, nothing on the screen can be changed.
   * @param {boolean} busy
   */
  setBusy(busy) {
    this.button.disabled = busy;
    this.button.textContent = busy ? t('join.joining') : t('join.join');
    this.setDevicesBusy(busy);
  }

  /**
   * Disables the switches and device choices (while one applies, or while joining).
   * @param {boolean} busy
   */
  setDevicesBusy(busy) {
    for (const control of [this.cameraButton, this.micButton, this.cameraSelect, this.micSelect]) {
      control.disabled = busy;
    }
  }

  /**
   * Shows the camera's track or, with null, the camera-off frame.
   * @param {MediaStreamTrack | null} track
   */
  setPreview(track) {
    this.frame.classList.toggle('camera-off', !track);
    const shown = this.video.srcObject instanceof MediaStream ? this.video.srcObject.getVideoTracks()[0] : null;
    if (shown === track) {
      return;
    }
    this.video.srcObject = track ? new MediaStream([track]) : null;
    if (track) {
      this.video.play().catch(() => {});
    }
  }

  /**
   * @param {boolean} camera
   * @param {boolean} microphone
   */
  setSwitches(camera, microphone) {
    setSwitch(this.cameraButton, camera);
    setSwitch(this.micButton, microphone);
  }

  /**
   * Fills the device choices (labels are known once a device was allowed).
   * @param {MediaDeviceInfo[]} devices
   * @param {string} cameraId selected camera
   * @param {string} microphoneId selected microphone
   */
  setDevices(devices, cameraId, microphoneId) {
    fillDevices(this.cameraSelect, devices.filter((d) => d.kind === 'videoinput'), cameraId, 'camera');
    fillDevices(this.micSelect, devices.filter((d) => d.kind === 'audioinput'), microphoneId, 'microphone');
  }

  /** @param {number} level 0 (silence) to 1 */
  setLevel(level) {
    this.level.value = level;
  }

  /**
   * Says what is wrong with the devices, politely, for screen readers too ('' clears).
   * @param {string} text
   */
  setStatus(text) {
    this.status.textContent = text;
  }

  /**
   * Shows an error; `field` gets focus and is marked invalid.
   * @param {string} message
   * @param {'name' | 'room' | null} [field]
   */
  showError(message, field = null) {
    this.error.textContent = message;
    this.error.hidden = false;
    for (const input of [this.nameInput, this.roomInput]) {
      input.removeAttribute('aria-invalid');
    }
    const input = field === 'name' ? this.nameInput : field === 'room' ? this.roomInput : null;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.select();
    }
  }

  /**
   * The room needs a password: shows its field with the focus on it (the name and room
   * stay as they are), saying that one is needed or that the one given was wrong.
   * @param {boolean} wrong
   */
  askPassword(wrong) {
    this.passwordField.hidden = false;
    this.showError(t(wrong ? 'join.wrong_password' : 'join.password_required'));
    if (wrong) {
      this.passwordInput.setAttribute('aria-invalid', 'true');
    }
    this.passwordInput.focus();
    this.passwordInput.select();
  }

  /** Shows the password field without asking (a moderator's link). */
  showPassword() {
    this.passwordField.hidden = false;
  }

  hidePassword() {
    this.passwordField.hidden = true;
    this.passwordInput.value = '';
    this.passwordInput.removeAttribute('aria-invalid');
  }

  clearError() {
    this.passwordInput.removeAttribute('aria-invalid');
    this.error.textContent = '';
    this.error.hidden = true;
    this.nameInput.removeAttribute('aria-invalid');
    this.roomInput.removeAttribute('aria-invalid');
  }
}

/**
 * Shows a switch's state: pressed means on.
 * @param {HTMLButtonElement} button
 * @param {boolean} on
 */
function setSwitch(button, on) {
  button.setAttribute('aria-pressed', String(on));
  const state = button.querySelector('.state');
  if (state) {
    state.textContent = on ? t('controls.on') : t('controls.off');
  }
}

/**
 * Follows a microphone track's loudness, once per animation frame, through Web Audio.
 * A page may not start audio before the user interacted with it: then the meter starts
 * at the first click or key press.
 */
export class MicMeter {
  /** @param {(level: number) => void} onLevel 0 (silence) to 1 (loud) */
  constructor(onLevel) {
    this.onLevel = onLevel;
    /** @type {AudioContext | null} */
    this.context = null;
    /** @type {AnalyserNode | null} */
    this.analyser = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this.source = null;
    /** @type {MediaStreamTrack | null} */
    this.track = null;
    this.frame = 0;
    this.level = 0;
    this.samples = new Float32Array(1024);
    this.resume = () => {
      this.context?.resume().catch(() => {});
    };
  }

  /**
   * Measures `track` from now on (null: nothing, the level drops to 0).
   * @param {MediaStreamTrack | null} track
   */
  follow(track) {
    if (track === this.track) {
      return;
    }
    this.source?.disconnect();
    this.source = null;
    this.track = track;
    if (!track || typeof AudioContext === 'undefined') {
      window.cancelAnimationFrame(this.frame);
      this.frame = 0;
      this.level = 0;
      this.onLevel(0);
      return;
    }
    if (!this.context) {
      this.context = new AudioContext();
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = this.samples.length;
      if (this.context.state === 'suspended') {
        document.addEventListener('pointerdown', this.resume, { once: true });
        document.addEventListener('keydown', this.resume, { once: true });
      }
    }
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(/** @type {AnalyserNode} */ (this.analyser));
    if (!this.frame) {
      this.frame = window.requestAnimationFrame(() => this.measure());
    }
  }

  measure() {
    const { analyser } = this;
    if (!analyser || !this.track) {
      this.frame = 0;
      return;
    }
    analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const x of this.samples) {
      sum += x * x;
    }
    const rms = Math.sqrt(sum / this.samples.length);
    // -60 dBFS (quiet room) to 0 dBFS, on a scale that looks like loudness; falls back
    // slowly so that speech reads as a level rather than a flicker.
    const now = rms > 0 ? Math.min(1, Math.max(0, (20 * Math.log10(rms) + 60) / 60)) : 0;
    this.level = Math.max(now, this.level * 0.9);
    this.onLevel(this.level);
    this.frame = window.requestAnimationFrame(() => this.measure());
  }

  /** Stops measuring and releases the audio context. */
  stop() {
    this.follow(null);
    document.removeEventListener('pointerdown', this.resume);
    document.removeEventListener('keydown', this.resume);
    this.context?.close().catch(() => {});
    this.context = null;
    this.analyser = null;
  }
}

/**
 * The devices before joining: opens the camera and microphone for the preview, follows
 * the switches and device choices, and hands the `LocalMedia` over on joining.
 */
export class PreJoin {
  /** @param {JoinView} view */
  constructor(view) {
    this.view = view;
    /** The previewed devices; null once handed over. @type {LocalMedia | null} */
    this.media = null;
    /** Settles once `media` opened what it could. @type {Promise<void>} */
    this.ready = Promise.resolve();
    this.meter = new MicMeter((level) => view.setLevel(level));
    this.listDevices = () => {
      this.refreshDevices().catch(() => {});
    };
    view.onCamera = () => this.change(async (media) => media.setCamera(!media.camera), 'camera');
    view.onMicrophone = () => this.change(async (media) => media.setMicrophone(!media.microphone), 'microphone');
    view.onCameraDevice = (deviceId) => this.change((media) => media.setCameraDevice(deviceId), 'camera');
    view.onMicrophoneDevice = (deviceId) => this.change((media) => media.setMicrophoneDevice(deviceId), 'microphone');
    onLanguageChange(() => {
      this.refresh();
      this.listDevices();
    });
  }

  /**
   * Opens the devices for the preview (none when both are off).
   * @param {{camera: boolean, microphone: boolean}} wanted
   * @param {string} [status] what to say once opened, unless a device failed
   */
  start(wanted, status = '') {
    this.stop();
    const media = new LocalMedia(loadSettings());
    this.media = media;
    media.onChange = () => this.refresh();
    this.view.setStatus('');
    this.refresh();
    navigator.mediaDevices?.addEventListener('devicechange', this.listDevices);
    this.ready = media.start(wanted).then(async () => {
      if (this.media !== media) {
        return;
      }
      this.view.setStatus(media.notice ?? status);
      this.refresh();
      await this.refreshDevices();
    });
  }

  /**
   * Hands the devices to the meeting: the preview stops showing them (they stay open).
   * @returns {{media: LocalMedia, ready: Promise<void>}}
   */
  release() {
    const media = /** @type {LocalMedia} */ (this.media);
    media.onChange = () => {};
    this.media = null;
    navigator.mediaDevices?.removeEventListener('devicechange', this.listDevices);
    this.meter.stop();
    this.view.setPreview(null);
    return { media, ready: this.ready };
  }

  /** Releases the devices (the page is closing). */
  stop() {
    if (this.media) {
      this.release().media.stop();
    }
  }

  /** Shows the current state of the devices. */
  refresh() {
    const { media } = this;
    if (!media) {
      return;
    }
    this.view.setPreview(media.camera ? media.video : null);
    this.view.setSwitches(media.camera, media.microphone);
    this.meter.follow(media.microphone ? media.audio : null);
  }

  async refreshDevices() {
    const { media } = this;
    if (!media) {
      return;
    }
    /** @type {MediaDeviceInfo[]} */
    let devices = [];
    try {
      devices = (await navigator.mediaDevices?.enumerateDevices()) ?? [];
    } catch {
      // No device access: the choices offer the default only.
    }
    // The device in use; with none open, the one shown before (the camera switched off).
    const view = this.view;
    const cameraId = media.settings.cameraId || (media.video?.getSettings().deviceId ?? view.cameraSelect.value);
    const microphoneId = media.settings.microphoneId || (media.audio?.getSettings().deviceId ?? view.micSelect.value);
    this.view.setDevices(devices, cameraId, microphoneId);
  }

  /**
   * Applies a switch or a device choice; a failure is said in the status line.
   * @param {(media: LocalMedia) => Promise<void>} action
   * @param {'camera' | 'microphone'} device
   */
  async change(action, device) {
    const { media } = this;
    if (!media) {
      return;
    }
    this.view.setDevicesBusy(true);
    try {
      await action(media);
      saveSettings(media.settings);
      this.view.setStatus('');
    } catch (err) {
      this.view.setStatus(t(device === 'camera' ? 'join.camera_failed' : 'join.microphone_failed', { reason: describeMediaError(err) }));
    } finally {
      this.view.setDevicesBusy(false);
      this.refresh();
      await this.refreshDevices();
    }
  }
}
