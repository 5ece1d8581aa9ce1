// @ts-check
/**
 * The dashboard's "Stations" section (/admin): every station with its state, what it
 * plays and its viewers; create one (upload with a progress bar, a file from the data
 * directory's media folder, or live), edit its description, move it up or down, delete
 * it, and show or renew a live station's token. Reads and writes
 * `/admin/api/stations` (docs/stations.md); the session cookie goes along by itself.
 * It draws into `<section id="stations-admin">` and nothing else.
 */

import { el } from './dom.js';
import { t, formatNumber } from './i18n.js';

const API = '/admin/api/stations';
const REFRESH_MS = 1000;

/**
 * @typedef {{name: string, description: string, playing: string, position_ms: number,
 *   duration_ms: number, viewers: number, video: boolean}} Playing
 * @typedef {{name: string, description: string, source: 'config' | 'upload' | 'file' | 'live',
 *   file?: string, state: 'on_air' | 'off_air' | 'converting' | 'failed', reason?: string,
 *   progress?: number, playing?: Playing, viewers: number, token?: string, editable: boolean}} AdminStation
 * @typedef {{stations: AdminStation[], media_files: string[], max_bytes: number}} StationsReply
 */

/** @param {number} ms */
function clock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(total / 60)).padStart(2, '0')}:${String(total % 60).padStart(2, '0')}`;
}

/**
 * The server's message from an error answer, or a generic one.
 * @param {Response | XMLHttpRequest} resp
 * @param {string} body
 */
function errorText(resp, body) {
  try {
    const parsed = JSON.parse(body);
    if (parsed && typeof parsed.message === 'string') return parsed.message;
  } catch {
    // Not JSON: the status says it.
  }
  return t('adminStations.failed', { status: String(resp.status) });
}

const section = /** @type {HTMLElement} */ (document.getElementById('stations-admin'));
const status = el('p', 'stations-status');
status.setAttribute('role', 'status');
status.id = 'stations-status';
const table = el('div');
/** @type {StationsReply | null} */
let latest = null;

/**
 * Sends a JSON request; says what happened in the status line; refreshes.
 * @param {string} url
 * @param {RequestInit} init
 * @param {string} done what to say on success
 */
async function request(url, init, done) {
  try {
    const resp = await fetch(url, { credentials: 'same-origin', ...init });
    if (resp.ok) {
      status.textContent = done;
    } else {
      status.textContent = errorText(resp, await resp.text());
    }
  } catch (e) {
    status.textContent = String(e);
  }
  await refresh();
}

/** @param {unknown} body */
function json(body) {
  return { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** @param {AdminStation} s */
function stateText(s) {
  switch (s.state) {
    case 'on_air':
      return t('adminStations.onAir');
    case 'converting':
      return t('adminStations.converting', { percent: formatNumber(Math.floor((s.progress ?? 0) / 10)) });
    case 'failed':
      return t('adminStations.conversionFailed', { reason: s.reason ?? '' });
    default:
      return t('adminStations.offAir', { reason: s.reason ?? '' });
  }
}

/** @param {AdminStation} s */
function sourceText(s) {
  const file = s.file ?? '';
  switch (s.source) {
    case 'config':
      return t('adminStations.sourceConfig', { file });
    case 'upload':
      return t('adminStations.sourceUpload', { file });
    case 'file':
      return t('adminStations.sourceFile', { file });
    default:
      return t('adminStations.sourceLive');
  }
}

/**
 * A button with a visible label (its accessible name is `label`, or `aria` when given).
 * @param {string} label
 * @param {() => void} action
 * @param {string} [aria]
 */
function button(label, action, aria) {
  const b = el('button', '', label);
  b.type = 'button';
  if (aria) b.setAttribute('aria-label', aria);
  b.addEventListener('click', action);
  return b;
}

/**
 * One row of the table.
 * @param {AdminStation} s
 */
function row(s) {
  const tr = el('tr');
  tr.dataset.station = s.name;
  const name = encodeURIComponent(s.name);
  const description = el('td');
  if (s.editable && s.state !== 'converting' && s.state !== 'failed') {
    const input = el('input');
    input.value = s.description;
    input.maxLength = 500;
    input.setAttribute('aria-label', t('adminStations.descriptionOf', { name: s.name }));
    // A refresh must not overwrite what the admin is typing.
    input.dataset.keep = 'true';
    description.append(
      input,
      button(t('adminStations.save'), () =>
        request(`${API}/${name}`, { method: 'PATCH', ...json({ description: input.value }) }, t('adminStations.saved', { name: s.name })),
        t('adminStations.saveOf', { name: s.name }),
      ),
    );
  } else {
    description.textContent = s.description;
  }
  const state = el('td', '', stateText(s));
  if (s.state === 'converting') {
    const bar = el('progress');
    bar.max = 1000;
    bar.value = s.progress ?? 0;
    bar.setAttribute('aria-label', t('adminStations.conversionOf', { name: s.name }));
    state.append(' ', bar);
  }
  const playing = s.playing
    ? t('adminStations.playing', { file: s.playing.playing, position: clock(s.playing.position_ms), duration: clock(s.playing.duration_ms) })
    : '';
  const actions = el('td');
  if (s.editable) {
    if (s.state !== 'converting' && s.state !== 'failed') {
      actions.append(
        button(t('adminStations.up'), () => request(`${API}/${name}/move`, { method: 'POST', ...json({ direction: 'up' }) }, t('adminStations.moved', { name: s.name })), t('adminStations.upOf', { name: s.name })),
        button(t('adminStations.down'), () => request(`${API}/${name}/move`, { method: 'POST', ...json({ direction: 'down' }) }, t('adminStations.moved', { name: s.name })), t('adminStations.downOf', { name: s.name })),
      );
    }
    if (s.source === 'live') {
      actions.append(
        button(t('adminStations.newToken'), () => request(`${API}/${name}/token`, { method: 'POST' }, t('adminStations.tokenRenewed', { name: s.name })), t('adminStations.newTokenOf', { name: s.name })),
      );
    }
    if (s.state !== 'converting') {
      actions.append(
        button(t('adminStations.delete'), () => {
          if (confirm(t('adminStations.confirmDelete', { name: s.name }))) {
            void request(`${API}/${name}`, { method: 'DELETE' }, t('adminStations.deleted', { name: s.name }));
          }
        }, t('adminStations.deleteOf', { name: s.name })),
      );
    }
  }
  const nameCell = el('th', '', s.name);
  nameCell.scope = 'row';
  if (s.token) {
    const token = el('code', 'station-token', s.token);
    token.setAttribute('aria-label', t('adminStations.tokenOf', { name: s.name }));
    nameCell.append(el('br'), t('adminStations.token'), ' ', token);
  }
  tr.append(nameCell, description, el('td', '', sourceText(s)), state, el('td', '', playing), el('td', '', formatNumber(s.viewers)), actions);
  return tr;
}

/** Draws the table, keeping description fields the admin is editing. */
function render() {
  if (!latest) return;
  const focused = document.activeElement;
  if (focused instanceof HTMLInputElement && table.contains(focused)) return;
  if (!latest.stations.length) {
    table.replaceChildren(el('p', '', t('adminStations.none')));
  } else {
    const head = el('tr');
    for (const key of ['name', 'description', 'source', 'state', 'playing', 'viewers', 'actions']) {
      const th = el('th', '', t(`adminStations.column.${key}`));
      th.scope = 'col';
      head.append(th);
    }
    const thead = el('thead');
    thead.append(head);
    const tbody = el('tbody');
    tbody.append(...latest.stations.map(row));
    const tableEl = el('table');
    tableEl.append(thead, tbody);
    table.replaceChildren(tableEl);
  }
  const select = /** @type {HTMLSelectElement} */ (form.elements.namedItem('file'));
  const chosen = select.value;
  select.replaceChildren(...latest.media_files.map((f) => {
    const option = el('option', '', f);
    option.value = f;
    return option;
  }));
  if (latest.media_files.includes(chosen)) select.value = chosen;
}

async function refresh() {
  try {
    const resp = await fetch(API, { credentials: 'same-origin' });
    if (!resp.ok) {
      status.textContent = errorText(resp, await resp.text());
      return;
    }
    latest = /** @type {StationsReply} */ (await resp.json());
    render();
  } catch (e) {
    status.textContent = String(e);
  }
}

// The form: name, description, source (upload, media folder, live) and its file.
const form = el('form', 'stations-form');
form.id = 'stations-form';
/**
 * @param {string} label
 * @param {HTMLElement} control
 */
function labelled(label, control) {
  const l = el('label', '', label);
  l.append(' ', control);
  return l;
}
const nameInput = el('input');
nameInput.name = 'name';
nameInput.required = true;
nameInput.maxLength = 96;
nameInput.autocomplete = 'off';
const descriptionInput = el('input');
descriptionInput.name = 'description';
descriptionInput.maxLength = 500;
const sources = el('fieldset');
sources.append(el('legend', '', t('adminStations.source')));
for (const [value, key] of [['upload', 'adminStations.sourceChoiceUpload'], ['file', 'adminStations.sourceChoiceFile'], ['live', 'adminStations.sourceChoiceLive']]) {
  const radio = el('input');
  radio.type = 'radio';
  radio.name = 'source';
  radio.value = value;
  radio.checked = value === 'upload';
  sources.append(labelled(t(key), radio));
}
const fileInput = el('input');
fileInput.type = 'file';
fileInput.name = 'upload';
fileInput.accept = 'video/*,audio/*,.webm,.mkv,.ogg,.opus';
const mediaSelect = el('select');
mediaSelect.name = 'file';
const progress = el('progress');
progress.max = 1;
progress.value = 0;
progress.hidden = true;
progress.setAttribute('aria-label', t('adminStations.uploadProgress'));
const progressText = el('span', 'stations-progress');
const submit = el('button', '', t('adminStations.create'));
submit.type = 'submit';
form.append(
  el('h3', '', t('adminStations.add')),
  labelled(t('adminStations.name'), nameInput),
  labelled(t('adminStations.description'), descriptionInput),
  sources,
  labelled(t('adminStations.uploadFile'), fileInput),
  labelled(t('adminStations.mediaFile'), mediaSelect),
  submit,
  progress,
  progressText,
);

/** The chosen source. */
function source() {
  const checked = /** @type {HTMLInputElement | null} */ (form.querySelector('input[name="source"]:checked'));
  return checked?.value ?? 'upload';
}

/** Shows only the control the chosen source needs. */
function showSource() {
  const s = source();
  /** @type {HTMLElement} */ (fileInput.parentElement).hidden = s !== 'upload';
  /** @type {HTMLElement} */ (mediaSelect.parentElement).hidden = s !== 'file';
}
form.addEventListener('change', showSource);

/**
 * Uploads `file` as station `name` with a progress bar (XMLHttpRequest, which reports
 * upload progress; fetch does not).
 * @param {string} name
 * @param {string} description
 * @param {File} file
 */
function upload(name, description, file) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/${encodeURIComponent(name)}/upload`);
    xhr.setRequestHeader('x-file-name', encodeURIComponent(file.name));
    xhr.setRequestHeader('x-description', encodeURIComponent(description));
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.addEventListener('progress', (e) => {
      if (!e.lengthComputable) return;
      progress.value = e.loaded / e.total;
      progressText.textContent = t('adminStations.uploading', { percent: formatNumber(Math.floor((100 * e.loaded) / e.total)) });
    });
    xhr.addEventListener('load', () => {
      progress.value = 1;
      if (xhr.status === 201) {
        status.textContent = t('adminStations.created', { name });
      } else if (xhr.status === 202) {
        status.textContent = t('adminStations.convertingStarted', { name });
      } else {
        status.textContent = errorText(xhr, xhr.responseText);
      }
      progressText.textContent = '';
      progress.hidden = true;
      resolve(undefined);
    });
    xhr.addEventListener('error', () => {
      status.textContent = t('adminStations.uploadFailed');
      progress.hidden = true;
      progressText.textContent = '';
      resolve(undefined);
    });
    xhr.send(file);
  });
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = nameInput.value.trim();
  const description = descriptionInput.value.trim();
  submit.disabled = true;
  try {
    const s = source();
    if (s === 'upload') {
      const file = fileInput.files?.[0];
      if (!file) {
        status.textContent = t('adminStations.chooseFile');
        return;
      }
      await upload(name, description, file);
      await refresh();
    } else {
      const body = s === 'live' ? { name, description, source: 'live' } : { name, description, source: 'file', file: mediaSelect.value };
      await request(API, { method: 'POST', ...json(body) }, t('adminStations.created', { name }));
    }
  } finally {
    submit.disabled = false;
  }
});

section.append(el('h2', '', t('adminStations.title')), status, table, form);
showSource();
void refresh();
setInterval(() => void refresh(), REFRESH_MS);
