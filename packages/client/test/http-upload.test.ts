import { describeTargets } from './helpers.js';
import { httpUploadSuite } from './suites/http-upload.js';

describeTargets('http-upload', httpUploadSuite);
