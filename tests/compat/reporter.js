'use strict';
// A mocha reporter for the conformance runner (tests/compat/run_ably_js.py): one JSON line per
// test outcome, appended to the file named by COMPAT_REPORT. Written for this project.
const fs = require('fs');

// No `require('mocha')`: this file lives outside the checkout, so it uses only the runner.
class CompatReporter {
  constructor(runner) {
    const out = process.env.COMPAT_REPORT;
    const write = (status, test, err) => {
      const line = {
        status,
        title: test.fullTitle(),
        hook: test.type === 'hook',
        duration: test.duration || 0,
      };
      if (err) line.error = String((err && (err.message || err)) || '').slice(0, 500);
      const text = JSON.stringify(line) + '\n';
      if (out) fs.appendFileSync(out, text);
      else process.stdout.write(text);
    };
    runner.on('pass', (test) => write('pass', test));
    runner.on('fail', (test, err) => write('fail', test, err));
    runner.on('pending', (test) => write('skip', test));
  }
}

module.exports = CompatReporter;
