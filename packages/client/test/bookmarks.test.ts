import { describeTargets } from './helpers.js';
import { bookmarksSuite } from './suites/bookmarks.js';

describeTargets('bookmarks', bookmarksSuite);
