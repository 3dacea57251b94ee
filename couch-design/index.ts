import type { DocDb } from '../storage/doc-db.js';
import { buildDesignDoc, DESIGN_ID, DESIGN_VERSION } from './sync-design.js';

interface Installed {
  _id: string;
  _rev?: string;
  version?: number;
}

/** Installs or upgrades the design document; idempotent, never downgrades. */
async function install(db: DocDb): Promise<'installed' | 'upgraded' | 'current' | 'newer'> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await db.get<Installed>(DESIGN_ID);
    const have = existing?.version ?? 0;
    if (have === DESIGN_VERSION) return 'current';
    if (have > DESIGN_VERSION) return 'newer';
    const doc = { ...buildDesignDoc(), _id: DESIGN_ID } as Installed;
    if (existing?._rev) doc._rev = existing._rev;
    if ((await db.put(doc)) !== 'conflict') return existing ? 'upgraded' : 'installed';
  }
  return 'current';
}

export const designDoc = { install, id: DESIGN_ID, version: DESIGN_VERSION };
