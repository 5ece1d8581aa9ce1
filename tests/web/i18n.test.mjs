// The message catalogues (web/i18n/<lang>.json): every language has exactly the keys of
// English, with the same {placeholders}; every key the client uses (t('area.key') in
// web/*.js, data-i18n attributes in index.html) is in English; the language menu lists
// exactly the catalogues; and the browser's languages pick the right one.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LANGUAGES, pickLanguage } from '../../web/i18n.js';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');
const DIR = path.join(WEB, 'i18n');

/** @param {string} lang @returns {Record<string, string>} */
function catalogue(lang) {
  return JSON.parse(readFileSync(path.join(DIR, `${lang}.json`), 'utf8'));
}

const english = catalogue('en');
const languages = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

/** @param {string} text */
function placeholders(text) {
  return [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
}

test('the language menu offers exactly the catalogues there are, English among them', () => {
  assert.deepEqual(Object.keys(LANGUAGES).sort(), languages);
  assert.ok(languages.includes('en'));
  assert.ok(languages.length >= 4, `English and at least three more: ${languages}`);
});

for (const lang of languages.filter((l) => l !== 'en')) {
  test(`${lang}.json has exactly the keys of en.json, each translated, with the same placeholders`, () => {
    const other = catalogue(lang);
    const missing = Object.keys(english).filter((k) => !(k in other));
    const extra = Object.keys(other).filter((k) => !(k in english));
    assert.deepEqual(missing, [], `${lang} lacks keys`);
    assert.deepEqual(extra, [], `${lang} has keys English has not`);
    for (const [key, text] of Object.entries(other)) {
      assert.equal(typeof text, 'string', `${lang} ${key}`);
      assert.ok(text.trim() !== '' || english[key].trim() === '', `${lang} ${key} is empty`);
      assert.deepEqual(placeholders(text), placeholders(english[key]), `${lang} ${key}: placeholders differ from English`);
    }
  });
}

test('every key the client uses is in en.json', () => {
  const areas = new Set(Object.keys(english).map((k) => k.split('.')[0]));
  /** @type {string[]} */
  const unknown = [];
  let used = 0;
  for (const file of readdirSync(WEB).filter((f) => f.endsWith('.js'))) {
    const source = readFileSync(path.join(WEB, file), 'utf8');
    // Every quoted 'area.key' of a known area: t('chat.send'), and keys chosen by a
    // condition, t(on ? 'announce.unmuted' : 'announce.muted').
    for (const m of source.matchAll(/'([a-z]+)\.([a-z0-9_.]+)'/g)) {
      if (areas.has(m[1])) {
        used++;
        if (!(`${m[1]}.${m[2]}` in english)) unknown.push(`${file}: ${m[1]}.${m[2]}`);
      }
    }
    // Keys made at run time must be listed here with all their values.
    for (const m of source.matchAll(/t\(`([a-z]+\.[a-z_.]*)\$\{/g)) {
      const known = ['quality.', 'stats.layer_', 'stats.source_', 'moderation.you_are_', 'moderation.source_', 'moderation.role_', 'moderation.make_'];
      known.push('admin.count.', 'admin.size.', 'admin.col.', 'admin.fact.who.');
      assert.ok(known.includes(m[1]), `${file}: a computed key ${m[1]}… the test does not know`);
    }
  }
  // The admin pages are the server's (crates/server/src/admin), translated by web/admin.js.
  const adminPages = ['dashboard.html', 'login.html'].map((p) => path.join(WEB, '../crates/server/src/admin', p));
  for (const page of ['index.html', 'stations.html'].map((p) => path.join(WEB, p)).concat(adminPages)) {
    const html = readFileSync(page, 'utf8');
    for (const m of html.matchAll(/data-i18n(?:-aria-label|-title|-placeholder)?="([^"]+)"/g)) {
      used++;
      if (!(m[1] in english)) unknown.push(`${page}: ${m[1]}`);
    }
  }
  const computed = ['quality.good', 'quality.fair', 'quality.poor', 'stats.layer_q', 'stats.layer_h', 'stats.layer_f']
    .concat(['camera', 'microphone', 'screen'].map((s) => `stats.source_${s}`))
    .concat(['camera', 'microphone', 'screen'].map((s) => `moderation.source_${s}`))
    .concat(['moderator', 'participant', 'viewer'].flatMap((r) => [`moderation.you_are_${r}`, `moderation.role_${r}`, `moderation.make_${r}`]))
    .concat(['rooms', 'participants', 'tracks', 'files'].flatMap((n) => [`admin.count.${n}.one`, `admin.count.${n}.other`]))
    .concat(['b', 'kib', 'mib', 'gib', 'tib'].map((u) => `admin.size.${u}`))
    .concat(['name', 'address', 'joined', 'devices', 'in', 'out', 'rtt', 'loss_to_server', 'loss_to_them', 'estimate', 'videos'].map((c) => `admin.col.${c}`))
    .concat(['everyone', 'moderators', 'nobody'].map((w) => `admin.fact.who.${w}`));
  unknown.push(...computed.filter((k) => !(k in english)));
  assert.deepEqual(unknown, []);
  assert.ok(used > 150, `found ${used} uses`);
});

test('the browser languages pick a catalogue by primary language, else English', () => {
  assert.equal(pickLanguage(['de-DE', 'en-US']), 'de');
  assert.equal(pickLanguage(['fr-CA']), 'fr');
  assert.equal(pickLanguage(['ES']), 'es');
  assert.equal(pickLanguage(['ja-JP', 'es-MX', 'de']), 'es');
  assert.equal(pickLanguage(['ja', 'zh-Hans']), 'en');
  assert.equal(pickLanguage([]), 'en');
});
