// npm run bench: not part of npm test. Prints ratios against baselines measured in the same
// run; the last line is the worst gateway/raw ratio over the Couch hot paths.
import { benchCouch } from './couch.js';
import { benchEmbedded } from './embedded.js';
import { benchReplication } from './replication.js';
import { benchSessionMix } from './session-mix.js';

// BENCH_ONLY: embedded, mix, couch or replication (default: all four).
const only = process.env.BENCH_ONLY;
if (only === undefined || only === 'embedded') await benchEmbedded();
if (only === undefined || only === 'mix') await benchSessionMix();
if (only === undefined || only === 'replication') await benchReplication();
if (only === 'embedded' || only === 'replication' || only === 'mix') process.exit(0);
const worst = await benchCouch();
console.log(`worst gateway/raw ratio: ${worst.toFixed(2)}`);
process.exit(0);
