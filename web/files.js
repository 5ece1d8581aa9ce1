// @ts-check
/**
 * File sharing over HTTP (docs/PROTOCOL.md, "Files"): uploads with `XMLHttpRequest`,
 * which streams a File body from disk and reports upload progress; downloads with
 * `fetch`, read chunk by chunk for progress, hashed as they arrive, resumed
 * with a `Range` request after an interruption, checked against the announced SHA-256
 * and then saved through a blob URL.
 *
 * The transfer functions are UI-free; `TransferView` and `FileCard` render them.
 */

// SHA-256 from the vendored, audited @noble/hashes (vendor/noble-hashes/README.md), not
// `crypto.subtle.digest`: a download is hashed chunk by chunk as it arrives, and
// crypto.subtle has no incremental API, so it would need the whole file in one more
// buffer (a second copy of a large download) and exists only in secure contexts, while a
// page on plain HTTP off localhost shares files too. The client hashes nothing whole.
import { sha256 } from './vendor/noble-hashes/sha2.js';
import { bytesToHex } from './vendor/noble-hashes/utils.js';
import { formatNumber, t } from './i18n.js';

/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {NonNullable<ChatMessage['file']>} SharedFile */

/** How often a broken download is resumed before giving up. */
const MAX_RESUMES = 5;

/** A transfer that failed or was cancelled, with a message fit to show. */
export class TransferError extends Error {
  /**
   * @param {string} message
   * @param {{cancelled?: boolean, code?: string}} [options]
   */
  constructor(message, { cancelled = false, code = '' } = {}) {
    super(message);
    this.name = 'TransferError';
    this.cancelled = cancelled;
    this.code = code;
  }
}

/**
 * A running transfer: `done` settles when it ends, `cancel()` stops it (then `done`
 * rejects with a cancelled `TransferError`).
 * @template T
 * @typedef {object} Transfer
 * @property {Promise<T>} done
 * @property {() => void} cancel
 */

/** @typedef {(bytes: number, total: number) => void} ProgressCallback */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/**
 * A byte count for people, in the chosen language's notation: "512 B", "8.4 MiB",
 * "20 MiB" (German "8,4 MiB").
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) {
    return `${formatNumber(bytes)} B`;
  }
  const shown = formatNumber(value, { maximumFractionDigits: value >= 100 ? 0 : 1 });
  return `${shown} ${UNITS[unit]}`;
}

/**
 * "42% · 8.4 MiB of 20 MiB · 31 MiB/s".
 * @param {number} done
 * @param {number} total
 * @param {number} bytesPerSecond
 */
export function formatProgress(done, total, bytesPerSecond) {
  const fraction = total > 0 ? Math.floor((done / total) * 100) / 100 : 1;
  const percent = formatNumber(fraction, { style: 'percent' });
  const progress = t('files.progress', { percent, done: formatBytes(done), total: formatBytes(total) });
  return bytesPerSecond > 0 ? t('files.progress_speed', { progress, speed: formatBytes(bytesPerSecond) }) : progress;
}

/**
 * The user-facing text of an HTTP error answer (`{error, message}`), or a fallback.
 * @param {number} status
 * @param {string} body
 */
function httpErrorMessage(status, body) {
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed.message === 'string' && parsed.message) {
      return { message: parsed.message, code: String(parsed.error ?? '') };
    }
  } catch {
    // Not JSON: a proxy's page, say.
  }
  return { message: t('files.http_error', { status }), code: '' };
}

/**
 * Uploads `file` to share it with the room, or privately with the participants in `to`.
 * The body streams from disk; nothing reads the file into memory.
 * @param {File} file
 * @param {{token: string, to?: number[], onProgress?: ProgressCallback}} options
 * @returns {Transfer<SharedFile>}
 */
export function uploadFile(file, { token, to = [], onProgress = () => {} }) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', '/files');
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('X-File-Name', encodeURIComponent(file.name));
    if (to.length) {
      xhr.setRequestHeader('X-Recipients', to.join(','));
    }
    // The body's type would otherwise be taken from the File itself, or be empty.
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      if (xhr.status === 201) {
        try {
          resolve(JSON.parse(xhr.responseText).file);
        } catch {
          reject(new TransferError(t('files.bad_answer')));
        }
        return;
      }
      const { message, code } = httpErrorMessage(xhr.status, xhr.responseText);
      reject(new TransferError(message, { code }));
    };
    xhr.onerror = () => {
      reject(new TransferError(t('files.upload_broke')));
    };
    xhr.onabort = () => reject(new TransferError(t('files.upload_cancelled'), { cancelled: true }));
    xhr.send(file);
  });
  return { done, cancel: () => xhr.abort() };
}

/**
 * Downloads a shared file, hashing it as it arrives; resumes from where it broke off
 * (`Range: bytes=<received>-`) when the connection drops.
 * @param {SharedFile} file
 * @param {{token: string, onProgress?: ProgressCallback}} options
 * @returns {Transfer<{blob: Blob, sha256: string}>}
 */
export function downloadFile(file, { token, onProgress = () => {} }) {
  const controller = new AbortController();
  const cancelled = () => new TransferError(t('files.download_cancelled'), { cancelled: true });

  const done = (async () => {
    /** @type {BlobPart[]} */
    let parts = [];
    let received = 0;
    let hash = sha256.create();
    let resumes = 0;
    /** @param {unknown} err */
    const retryOrThrow = async (err) => {
      if (controller.signal.aborted) {
        throw cancelled();
      }
      resumes++;
      if (resumes > MAX_RESUMES) {
        throw new TransferError(t('files.download_gave_up', { count: resumes, reason: String(err) }));
      }
      await new Promise((r) => setTimeout(r, 250 * resumes));
    };

    for (;;) {
      /** @type {Record<string, string>} */
      const headers = { Authorization: `Bearer ${token}` };
      if (received > 0) {
        headers.Range = `bytes=${received}-`;
      }
      /** @type {Response} */
      let response;
      try {
        response = await fetch(file.url, { headers, signal: controller.signal, cache: 'no-store' });
      } catch (err) {
        await retryOrThrow(err);
        continue;
      }
      if (!response.ok || !response.body) {
        const { message, code } = httpErrorMessage(response.status, await response.text().catch(() => ''));
        throw new TransferError(
          response.status === 404 ? t('files.gone') : message,
          { code },
        );
      }
      if (received > 0 && response.status !== 206) {
        // The server sent the whole file again rather than the rest: start over.
        parts = [];
        received = 0;
        hash = sha256.create();
      }
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done: finished, value } = await reader.read();
          if (finished) {
            break;
          }
          parts.push(value);
          hash.update(value);
          received += value.length;
          onProgress(received, file.size);
        }
      } catch (err) {
        await retryOrThrow(err);
        continue;
      }
      if (received < file.size) {
        // The body ended early without an error: resume as after a broken connection.
        await retryOrThrow(new Error(`ended after ${received} of ${file.size} bytes`));
        continue;
      }
      break;
    }
    if (received !== file.size) {
      throw new TransferError(t('files.short', { received: formatNumber(received), size: formatNumber(file.size) }));
    }
    return { blob: new Blob(parts, { type: file.mime || 'application/octet-stream' }), sha256: bytesToHex(hash.digest()) };
  })();
  return { done, cancel: () => controller.abort() };
}

/**
 * Hands a blob to the browser's download machinery under `name`.
 * @param {Blob} blob
 * @param {string} name
 */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has taken its own reference by now; give it a moment regardless.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * Progress of one transfer: a bar, "42% · 8.4 MiB of 20 MiB · 31 MiB/s", a Cancel
 * button while it runs, and a final status.
 */
export class TransferView {
  /**
   * @param {'Upload' | 'Download'} kind
   * @param {string} fileName
   */
  constructor(kind, fileName) {
    this.root = document.createElement('div');
    this.root.className = 'transfer';
    this.bar = document.createElement('progress');
    this.bar.max = 100;
    this.bar.value = 0;
    this.bar.setAttribute('aria-label', t(kind === 'Upload' ? 'files.upload_progress' : 'files.download_progress'));
    this.text = document.createElement('span');
    this.text.className = 'transfer-text';
    this.cancelButton = document.createElement('button');
    this.cancelButton.type = 'button';
    this.cancelButton.className = 'transfer-cancel';
    this.cancelButton.textContent = t('common.cancel');
    this.cancelButton.setAttribute('aria-label', t(kind === 'Upload' ? 'files.cancel_upload' : 'files.cancel_download', { file: fileName }));
    const row = document.createElement('div');
    row.className = 'transfer-row';
    row.append(this.bar, this.cancelButton);
    this.status = document.createElement('p');
    this.status.className = 'transfer-status';
    this.status.setAttribute('role', 'status');
    this.root.append(row, this.text, this.status);
    this.started = 0;
    this.root.hidden = true;
  }

  /**
   * Starts showing progress; `cancel` runs when the user presses Cancel.
   * @param {() => void} cancel
   */
  begin(cancel) {
    this.started = performance.now();
    this.root.hidden = false;
    this.root.dataset.state = 'running';
    this.bar.hidden = false;
    this.bar.value = 0;
    this.text.textContent = '';
    this.status.textContent = '';
    this.status.classList.remove('error', 'ok');
    this.cancelButton.hidden = false;
    this.cancelButton.onclick = cancel;
  }

  /**
   * @param {number} bytes
   * @param {number} total
   */
  progress(bytes, total) {
    const seconds = (performance.now() - this.started) / 1000;
    this.bar.value = total > 0 ? Math.min(100, (bytes / total) * 100) : 100;
    this.text.textContent = formatProgress(bytes, total, seconds > 0.05 ? bytes / seconds : 0);
  }

  /**
   * Ends the transfer with a message.
   * @param {'ok' | 'error' | 'cancelled'} outcome
   * @param {string} message
   */
  finish(outcome, message) {
    this.root.dataset.state = outcome;
    this.cancelButton.hidden = true;
    this.cancelButton.onclick = null;
    if (outcome !== 'ok') {
      this.bar.hidden = true;
    }
    this.status.textContent = message;
    this.status.classList.toggle('error', outcome === 'error');
    this.status.classList.toggle('ok', outcome === 'ok');
    this.status.setAttribute('role', outcome === 'error' ? 'alert' : 'status');
  }
}

/**
 * A shared file in the chat: name, size, a "Download <name>" button and the download's
 * progress and verification.
 */
export class FileCard {
  /**
   * @param {SharedFile} file
   * @param {() => string | null} token The current bearer token (null when not joined).
   */
  constructor(file, token) {
    this.file = file;
    this.token = token;
    /** @type {Transfer<{blob: Blob, sha256: string}> | null} */
    this.transfer = null;

    this.root = document.createElement('div');
    this.root.className = 'file-card';
    const info = document.createElement('div');
    info.className = 'file-info';
    const name = document.createElement('span');
    name.className = 'file-name';
    name.textContent = file.name;
    const size = document.createElement('span');
    size.className = 'file-size';
    size.textContent = formatBytes(file.size);
    info.append(name, size);

    this.button = document.createElement('button');
    this.button.type = 'button';
    this.button.className = 'file-download';
    this.button.textContent = t('files.download');
    this.button.setAttribute('aria-label', t('files.download_label', { file: file.name }));
    this.button.addEventListener('click', () => this.download());

    this.view = new TransferView('Download', file.name);
    const head = document.createElement('div');
    head.className = 'file-head';
    head.append(info, this.button);
    this.root.append(head, this.view.root);
  }

  async download() {
    const token = this.token();
    if (this.transfer) {
      return;
    }
    if (!token) {
      this.view.root.hidden = false;
      this.view.finish('error', t('files.join_again'));
      return;
    }
    const transfer = downloadFile(this.file, { token, onProgress: (b, t) => this.view.progress(b, t) });
    this.transfer = transfer;
    this.button.disabled = true;
    this.view.begin(() => transfer.cancel());
    try {
      const { blob, sha256 } = await transfer.done;
      if (sha256 !== this.file.sha256.toLowerCase()) {
        this.view.finish(
          'error',
          t('files.checksum_mismatch', { got: `${sha256.slice(0, 12)}\u2026`, expected: `${this.file.sha256.slice(0, 12)}\u2026` }),
        );
        return;
      }
      this.view.progress(this.file.size, this.file.size);
      this.view.finish('ok', t('files.verified'));
      saveBlob(blob, this.file.name);
    } catch (err) {
      if (err instanceof TransferError && err.cancelled) {
        this.view.finish('cancelled', err.message);
      } else {
        this.view.finish('error', err instanceof Error ? err.message : String(err));
      }
    } finally {
      this.transfer = null;
      this.button.disabled = false;
    }
  }

  /** Stops a running download (leaving the room). */
  cancel() {
    this.transfer?.cancel();
  }
}

/**
 * Uploads in progress on the sender's side, each with its own progress row.
 */
export class Uploads {
  /** @param {HTMLElement} container */
  constructor(container) {
    this.container = container;
    /** @type {Set<Transfer<SharedFile>>} */
    this.running = new Set();
  }

  /**
   * Shares one file.
   * @param {File} file
   * @param {string} token
   * @param {number[]} to Private recipients; empty for the room.
   * @param {string} toLabel Who it goes to, for the row ("everyone", "Bob").
   */
  async start(file, token, to, toLabel) {
    const row = document.createElement('div');
    row.className = 'upload';
    const title = document.createElement('p');
    title.className = 'upload-title';
    title.textContent = t('files.sharing', { file: file.name, size: formatBytes(file.size), to: toLabel });
    const view = new TransferView('Upload', file.name);
    const dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'upload-dismiss';
    dismiss.textContent = '\u00d7';
    dismiss.setAttribute('aria-label', t('common.dismiss'));
    dismiss.hidden = true;
    dismiss.addEventListener('click', () => row.remove());
    row.append(title, dismiss, view.root);
    this.container.append(row);

    const transfer = uploadFile(file, { token, to, onProgress: (b, t) => view.progress(b, t) });
    this.running.add(transfer);
    view.begin(() => transfer.cancel());
    try {
      await transfer.done;
      view.progress(file.size, file.size);
      view.finish('ok', t('files.shared', { file: file.name }));
      // The chat entry now stands for the file; the row only confirms it for a moment.
      setTimeout(() => row.remove(), 4000);
    } catch (err) {
      const cancelled = err instanceof TransferError && err.cancelled;
      view.finish(cancelled ? 'cancelled' : 'error', err instanceof Error ? err.message : String(err));
      dismiss.hidden = false;
    } finally {
      this.running.delete(transfer);
    }
  }

  /** Cancels every upload and forgets the rows. */
  clear() {
    for (const transfer of this.running) {
      transfer.cancel();
    }
    this.running.clear();
    this.container.replaceChildren();
  }
}
