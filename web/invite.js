// @ts-check
/**
 * The invite dialog, opened by "Copy link": the room link in a read-only field with a
 * Copy button, and a QR code of it, so a phone joins by pointing its camera at the
 * screen. The QR code comes from the vendored qrcode-generator (web/vendor/) and is
 * drawn on a canvas: no inline styles or images, within the page's
 * Content-Security-Policy. The dialog is built here, not in index.html, so it is one
 * module.
 */

import qrcode from './vendor/qrcode-generator/qrcode.js';
import { t } from './i18n.js';

/** Pixels per QR module, and the quiet zone around the code in modules (the standard's 4). */
const CELL = 6;
const QUIET = 4;

/**
 * Draws `text` as a QR code (error correction M, the smallest version that fits) on
 * `canvas`, dark modules on white, with the quiet zone.
 * @param {HTMLCanvasElement} canvas
 * @param {string} text
 */
export function drawQr(canvas, text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const count = qr.getModuleCount();
  const size = (count + 2 * QUIET) * CELL;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  if (!ctx) {
    return;
  }
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = '#000';
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < count; col++) {
      if (qr.isDark(row, col)) {
        ctx.fillRect((col + QUIET) * CELL, (row + QUIET) * CELL, CELL, CELL);
      }
    }
  }
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @returns {HTMLElementTagNameMap[K]}
 */
function make(tag, className) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  return node;
}

export class InviteDialog {
  constructor() {
    this.dialog = make('dialog', 'settings invite');
    this.dialog.id = 'invite';
    this.dialog.setAttribute('aria-labelledby', 'invite-title');
    const form = make('form', 'settings-card');
    form.method = 'dialog';
    const title = make('h2', 'settings-title');
    title.id = 'invite-title';
    title.textContent = t('invite.title');
    const hint = make('p', 'invite-hint');
    hint.textContent = t('invite.hint');

    const field = make('div', 'field');
    const label = make('label');
    label.htmlFor = 'invite-link';
    label.textContent = t('invite.link');
    this.link = make('input', 'invite-link');
    this.link.id = 'invite-link';
    this.link.type = 'url';
    this.link.readOnly = true;
    field.append(label, this.link);

    this.copyButton = make('button', 'secondary');
    this.copyButton.type = 'button';
    this.copyButton.textContent = t('invite.copy');
    this.copyButton.addEventListener('click', () => this.copy());
    this.status = make('p', 'invite-status');
    this.status.setAttribute('role', 'status');

    this.canvas = make('canvas', 'invite-qr');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', t('invite.qr'));

    const close = make('button', 'primary');
    close.type = 'submit';
    close.textContent = t('invite.close');
    form.append(title, hint, field, this.copyButton, this.status, this.canvas, close);
    this.dialog.append(form);
    document.body.append(this.dialog);
  }

  /**
   * Shows the dialog for `url`.
   * @param {string} url
   */
  open(url) {
    this.link.value = url;
    this.status.textContent = '';
    drawQr(this.canvas, url);
    if (!this.dialog.open) {
      this.dialog.showModal();
    }
    this.copyButton.focus();
  }

  /** Copies the link; without clipboard access (plain http off localhost) selects it. */
  async copy() {
    try {
      await navigator.clipboard.writeText(this.link.value);
      this.status.textContent = t('invite.copied');
    } catch {
      this.link.focus();
      this.link.select();
      this.status.textContent = t('invite.copyFailed');
    }
  }
}
