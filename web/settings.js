// @ts-check
/**
 * The Settings dialog (camera quality, camera and microphone, microphone processing)
 * and where the choices are remembered. Every change applies at once, in the meeting;
 * app.js does the applying through the callbacks.
 */

import { byId, el, remember, remembered } from './dom.js';
import { defaultSettings } from './media.js';
import { isQuality } from './publish.js';
import { LANGUAGES, language, onLanguageChange, t, useLanguage } from './i18n.js';

/** @typedef {import('./media.js').MediaSettings} MediaSettings */
/** @typedef {import('./publish.js').Quality} Quality */

const SETTINGS_KEY = 'lanmeet.settings';

/**
 * The remembered settings (defaults for anything missing or unreadable).
 * @returns {MediaSettings}
 */
export function loadSettings() {
  const settings = defaultSettings();
  /** @type {any} */
  let stored = null;
  try {
    stored = JSON.parse(remembered(SETTINGS_KEY) ?? 'null');
  } catch {
    // Damaged: the defaults will do.
  }
  if (stored && typeof stored === 'object') {
    if (isQuality(stored.quality)) {
      settings.quality = stored.quality;
    }
    for (const key of /** @type {const} */ (['cameraId', 'microphoneId'])) {
      if (typeof stored[key] === 'string') {
        settings[key] = stored[key];
      }
    }
    for (const key of /** @type {const} */ (['echoCancellation', 'noiseSuppression', 'autoGainControl'])) {
      if (typeof stored[key] === 'boolean') {
        settings[key] = stored[key];
      }
    }
  }
  return settings;
}

/** @param {MediaSettings} settings */
export function saveSettings(settings) {
  remember(SETTINGS_KEY, JSON.stringify(settings));
}

export class SettingsDialog {
  constructor() {
    this.dialog = byId('settings', HTMLDialogElement);
    this.form = byId('settings-form', HTMLFormElement);
    this.quality = byId('settings-quality', HTMLSelectElement);
    this.camera = byId('settings-camera', HTMLSelectElement);
    this.microphone = byId('settings-microphone', HTMLSelectElement);
    this.echo = byId('settings-echo', HTMLInputElement);
    this.noise = byId('settings-noise', HTMLInputElement);
    this.gain = byId('settings-gain', HTMLInputElement);
    this.error = byId('settings-error', HTMLElement);
    bindLanguageMenu(byId('settings-language', HTMLSelectElement));

    /** @type {(quality: Quality) => Promise<void>} */
    this.onQuality = async () => {};
    /** @type {(deviceId: string) => Promise<void>} */
    this.onCamera = async () => {};
    /** @type {(deviceId: string) => Promise<void>} */
    this.onMicrophone = async () => {};
    /** @type {(processing: {echoCancellation: boolean, noiseSuppression: boolean, autoGainControl: boolean}) => Promise<void>} */
    this.onProcessing = async () => {};

    this.quality.addEventListener('change', () => {
      const value = this.quality.value;
      if (isQuality(value)) {
        this.run(this.onQuality(value));
      }
    });
    this.camera.addEventListener('change', () => this.run(this.onCamera(this.camera.value)));
    this.microphone.addEventListener('change', () => this.run(this.onMicrophone(this.microphone.value)));
    for (const box of [this.echo, this.noise, this.gain]) {
      box.addEventListener('change', () =>
        this.run(
          this.onProcessing({
            echoCancellation: this.echo.checked,
            noiseSuppression: this.noise.checked,
            autoGainControl: this.gain.checked,
          }),
        ),
      );
    }
  }

  /**
   * Opens the dialog showing `settings` and the devices in use.
   * @param {MediaSettings} settings
   * @param {{camera: string, microphone: string}} inUse device ids of the live tracks
   */
  async open(settings, inUse) {
    this.quality.value = settings.quality;
    this.echo.checked = settings.echoCancellation;
    this.noise.checked = settings.noiseSuppression;
    this.gain.checked = settings.autoGainControl;
    this.error.hidden = true;
    await this.listDevices(settings.cameraId || inUse.camera, settings.microphoneId || inUse.microphone);
    if (!this.dialog.open) {
      this.dialog.showModal();
    }
  }

  close() {
    if (this.dialog.open) {
      this.dialog.close();
    }
  }

  /**
   * Fills the device selects (labels are known once a device was allowed).
   * @param {string} cameraId
   * @param {string} microphoneId
   */
  async listDevices(cameraId, microphoneId) {
    /** @type {MediaDeviceInfo[]} */
    let devices = [];
    try {
      devices = (await navigator.mediaDevices?.enumerateDevices()) ?? [];
    } catch {
      // No device access: the selects offer the default only.
    }
    fillDevices(this.camera, devices.filter((d) => d.kind === 'videoinput'), cameraId, 'camera');
    fillDevices(this.microphone, devices.filter((d) => d.kind === 'audioinput'), microphoneId, 'microphone');
  }

  /**
   * Shows a failed change in the dialog.
   * @param {Promise<void>} change
   */
  run(change) {
    this.error.hidden = true;
    change.catch((err) => {
      this.error.textContent = t('settings.failed', { reason: err instanceof Error ? err.message || err.name : String(err) });
      this.error.hidden = false;
    });
  }
}

/**
 * Fills a device choice: the default, then each device (by its label, or "Camera 2"
 * while labels are withheld), with `selected` chosen if it is there.
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string} selected
 * @param {'camera' | 'microphone'} what
 */
export function fillDevices(select, devices, selected, what) {
  const options = [el('option', '', t('settings.default_device'))];
  options[0].value = '';
  devices.forEach((d, i) => {
    if (!d.deviceId || d.deviceId === 'default') {
      return;
    }
    const option = el('option', '', d.label || t(what === 'camera' ? 'settings.camera_n' : 'settings.microphone_n', { n: i + 1 }));
    option.value = d.deviceId;
    options.push(option);
  });
  select.replaceChildren(...options);
  select.value = options.some((o) => o.value === selected) ? selected : '';
}

/**
 * A language menu (in Settings, and on the pre-join screen): every language with a
 * catalogue, by its own name; choosing one switches the page at once and is remembered.
 * @param {HTMLSelectElement} select
 */
export function bindLanguageMenu(select) {
  select.replaceChildren(
    ...Object.entries(LANGUAGES).map(([code, name]) => {
      const option = el('option', '', name);
      option.value = code;
      option.lang = code;
      return option;
    }),
  );
  select.value = language();
  select.addEventListener('change', () => {
    useLanguage(select.value).catch(() => {
      select.value = language();
    });
  });
  onLanguageChange(() => {
    select.value = language();
  });
}
