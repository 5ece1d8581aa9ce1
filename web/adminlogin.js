// @ts-check
// The admin login page (/admin/login): its text in the meeting's language (i18n.js).
import { translatePage } from './i18n.js';

translatePage();
