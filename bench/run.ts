// npm run bench: not part of npm test. Prints ratios against baselines measured in the same
// run; the last line is the worst gateway/raw ratio over the Couch hot paths.
import { benchCouch } from './couch.js';
import { benchEmbedded } from './embedded.js';

if (process.env.BENCH_ONLY !== 'couch') await benchEmbedded();
const worst = await benchCouch();
console.log(`worst gateway/raw ratio: ${worst.toFixed(2)}`);
process.exit(0);
