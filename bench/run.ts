// npm run bench: not part of npm test. Prints ratios against baselines measured in the same
// run; the last line is the worst gateway/raw ratio over the Couch hot paths.
import { benchCouch } from './couch.js';
import { benchEmbedded } from './embedded.js';
import { benchReplication } from './replication.js';

// BENCH_ONLY: embedded, couch or replication (default: all three).
const only = process.env.BENCH_ONLY;
if (only === undefined || only === 'embedded') await benchEmbedded();
if (only === undefined || only === 'replication') await benchReplication();
if (only === 'embedded' || only === 'replication') process.exit(0);
const worst = await benchCouch();
console.log(`worst gateway/raw ratio: ${worst.toFixed(2)}`);
process.exit(0);
