// Persistent rooms with a password in headless Chromium, one server and one browser:
// a `/r/<room>` link to a room from the config file asks for its password (the field
// appears with the focus, the name stays), refuses a wrong one with "Wrong password"
// and admits the right one; the admin creates a room with a password on the dashboard,
// and a joiner of that room is asked for it; a moderator's `?moderator` link gives the
// moderator password in a room whose participants need none.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { launchParticipant, pressJoin, scenarioSteps, startServer } from './harness.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

const CONFIG = `
[[rooms]]
name = "Vault"
password = "open sesame"

[[rooms]]
name = "Studio"
moderator_password = "director"
`;

describe('rooms with passwords', { timeout: 120_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Participant | undefined} */
  let ada;

  before(async () => {
    server = await startServer({ configToml: CONFIG });
  });

  after(async () => {
    await ada?.close();
    await server?.stop();
  });

  const step = scenarioSteps(() => server, () => (ada ? [ada] : []));

  step('a room link asks for the password, keeping the name', async () => {
    ada = await launchParticipant('Ada');
    const page = ada.page;
    await page.goto(`${server.url}r/vault?name=Ada`);
    const password = page.getByLabel('Password');
    assert.equal(await password.isVisible(), false, 'no password field before the server asks');
    await pressJoin(page);
    await page.getByText('This room needs a password.').waitFor({ timeout: 10_000 });
    await password.waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'join-password');
    assert.equal(await page.getByLabel('Name').inputValue(), 'Ada');
  }, { setsUp: true });

  step('a wrong password is refused, the right one admits', async () => {
    const page = /** @type {Participant} */ (ada).page;
    await page.getByLabel('Password').fill('open says me');
    await pressJoin(page);
    await page.getByText('Wrong password. Please try again.').waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).lanmeet?.conn?.you ?? null), null, 'not in the room');
    assert.equal(await page.getByLabel('Name').inputValue(), 'Ada');
    await page.getByLabel('Password').fill('open sesame');
    await pressJoin(page);
    await page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.room), 'Vault');
  });

  step('the admin creates a room with a password on the dashboard; joiners are asked for it', async () => {
    const { context } = /** @type {Participant} */ (ada);
    const password = readFileSync(join(server.dataDir, 'admin-password'), 'utf8').trim();
    const admin = await context.newPage();
    try {
      await admin.goto(`${server.url}admin`);
      await admin.getByLabel('Admin password').fill(password);
      await admin.getByRole('button', { name: 'Sign in' }).click();
      const list = admin.locator('#persistent-rooms');
      await list.locator('li[data-room="Vault"]').waitFor({ timeout: 10_000 });
      const form = admin.locator('#persistent-form');
      await form.getByLabel('Name').fill('Annex');
      await form.getByLabel('Password', { exact: true }).fill('side door');
      await form.getByRole('button', { name: 'Save room' }).click();
      await admin.getByText('Saved Annex.').waitFor({ timeout: 10_000 });
      const annex = list.locator('li[data-room="Annex"]');
      await annex.waitFor({ timeout: 5000 });
      assert.match(await annex.innerText(), /\(password;/);
    } finally {
      await admin.close();
    }
    const page = await context.newPage();
    try {
      await page.goto(`${server.url}r/annex?name=Bea`);
      await pressJoin(page);
      await page.getByText('This room needs a password.').waitFor({ timeout: 10_000 });
      await page.getByLabel('Password').fill('side door');
      await pressJoin(page);
      await page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    } finally {
      await page.close();
    }
  });

  step('a ?moderator link takes the moderator password where participants need none', async () => {
    const page = await /** @type {Participant} */ (ada).context.newPage();
    try {
      await page.goto(`${server.url}r/studio?moderator&name=Tess`);
      await page.getByLabel('Password').fill('director');
      await pressJoin(page);
      await page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.role), 'moderator');
    } finally {
      await page.close();
    }
  });
});
