// Bring your own Couch: a person registers their own Apache CouchDB for their account. It is
// checked as any node, becomes a node that holds their storage alone (placement never picks
// it for anyone else), and their database moves there live (federation/user-move.ts), with a
// replica on an operator's node if they ask for it (failover and failback then work as for any
// node). Given up, the node is emptied like any drained node — the storage moves back to a
// node the placement rules pick — and leaves the registry.
import type { Evacuator, EvacuationProgress } from './evacuation.js';
import { AdminError, type NodeAdmin, type NodeView } from './node-admin.js';
import type { Registry } from './registry.js';
import type { MoveStatus, Mover } from './user-move.js';

/** The node name of uid's own Couch. */
export const ownCouchNode = (uid: number): string => `own-${uid}`;

export class OwnCouches {
  constructor(
    private readonly registry: Registry,
    private readonly admin: NodeAdmin,
    private readonly mover: Mover,
    private readonly evacuator: Evacuator,
  ) {}

  async add(uid: number, url: string, replica: boolean): Promise<{ node: NodeView; move: MoveStatus }> {
    const placed = await this.registry.freshPlacement(uid);
    if (!placed) throw new AdminError(404, `no uid ${uid} in the registry`);
    const name = ownCouchNode(uid);
    const node = await this.admin.addOwnCouch(name, placed.email, url);
    if (placed.node === name) return { node, move: await this.mover.status(uid) };
    return { node, move: await this.mover.request(uid, name, { replica }) };
  }

  async remove(uid: number): Promise<EvacuationProgress> {
    const placed = await this.registry.freshPlacement(uid);
    if (!placed) throw new AdminError(404, `no uid ${uid} in the registry`);
    const name = ownCouchNode(uid);
    await this.admin.retireOwnCouch(name, placed.email);
    return this.evacuator.start(name);
  }
}
