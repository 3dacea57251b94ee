// Bundles the operator dashboard's page script with uPlot, and its stylesheet with uPlot's, into
// dist/dashboard/ (served by the gateway itself: no asset from elsewhere). Run by `npm run build`
// after tsc has checked the script (server/dashboard/client/tsconfig.json).
import { build } from 'esbuild';

await build({
  entryPoints: { dashboard: 'server/dashboard/client/dashboard.ts' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  outdir: 'dist/dashboard',
  legalComments: 'eof',
  logLevel: 'warning',
});
