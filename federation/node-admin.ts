// Operators and nodes as an administrator manages them (the admin API and the `syncgate
// operator|node` commands call this): every change is a registry document that every gateway
// follows. Answers never carry node credentials.
import type { CouchInfo } from '../storage/couch/couch-backend.js';
import type { Doc, DocDb } from '../storage/doc-db.js';
import { checkNode } from './node-check.js';
import { splitCouchUrl, type NodeSecrets } from './node-secrets.js';
import { DEFAULT_NODE, type NodeDoc, type OperatorDoc, type UidDoc } from './registry.js';

export class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export interface NodeView {
  name: string;
  operator: string | null;
  url: string | null;
  capacity: number;
  weight: number;
  assigned: number;
  /** failed: its health checks fail; merging: it answers again, its users are being merged back. */
  state: 'active' | 'draining' | 'down' | 'failed' | 'merging';
  synchronous: boolean;
  /** What the node said of itself when it was added. */
  couch: CouchInfo | null;
  /** A person's own Couch: the account (as the registry names it) it holds alone. */
  owner?: string;
}

export function nodeView(n: NodeDoc): NodeView {
  return {
    name: n.name,
    operator: n.operator ?? null,
    url: n.couchUrl ?? null,
    capacity: n.capacity,
    weight: n.weight ?? 1,
    assigned: n.assigned ?? 0,
    state: n.downed ? 'down' : n.failedAt !== undefined ? 'failed' : n.needsMerge ? 'merging' : n.draining ? 'draining' : 'active',
    synchronous: n.synchronous ?? false,
    couch: n.couch ?? null,
    ...(n.owner === undefined ? {} : { owner: n.owner }),
  };
}

export class NodeAdmin {
  constructor(
    private readonly db: DocDb,
    private readonly secrets: NodeSecrets,
    /** Called after every change: this gateway sees it at once, others through _changes. */
    private readonly changed: () => Promise<void> = async () => {},
    private readonly check: (couchUrl: string) => Promise<CouchInfo | void> = checkNode,
  ) {}

  private async write(doc: Doc): Promise<string | 'conflict'> {
    const rev = await this.db.put(doc);
    if (rev !== 'conflict') await this.changed();
    return rev;
  }

  async addOperator(name: string, synchronous = false): Promise<OperatorDoc> {
    if (!NAME.test(name)) throw new AdminError(400, 'an operator name is 1-64 of a-z 0-9 _ . - (starting with a letter or digit)');
    const doc: OperatorDoc = { _id: `operator:${name}`, type: 'operator', name, synchronous, createdAt: Date.now() };
    if ((await this.write(doc)) === 'conflict') throw new AdminError(409, `operator ${name} exists`);
    return doc;
  }

  async operators(): Promise<OperatorDoc[]> {
    return this.db.range<OperatorDoc>('operator:', 'operator:\ufff0');
  }

  /** `synchronous` overrides the operator's durability mode for this node. */
  async addNode(input: { name: string; operator: string; url: string; capacity: number; weight?: number; synchronous?: boolean }): Promise<NodeView> {
    const { name, operator, capacity } = input;
    const weight = input.weight ?? 1;
    if (!NAME.test(name)) throw new AdminError(400, 'a node name is 1-64 of a-z 0-9 _ . - (starting with a letter or digit)');
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new AdminError(400, 'capacity must be a positive integer (users)');
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) throw new AdminError(400, 'weight must be a number >= 0');
    const op = await this.db.get<OperatorDoc>(`operator:${operator}`);
    if (!op) throw new AdminError(404, `no operator ${operator}`);
    if (await this.db.get<NodeDoc>(`node:${name}`)) throw new AdminError(409, `node ${name} exists`);
    let split;
    try {
      split = splitCouchUrl(input.url);
    } catch {
      throw new AdminError(400, 'url must be an http(s) Couch URL such as http://user:pass@host:5984');
    }
    let couch: CouchInfo | void;
    try {
      couch = await this.check(input.url);
    } catch (e) {
      throw new AdminError(422, `node ${name} refused: ${(e as Error).message}`);
    }
    const doc: NodeDoc = {
      _id: `node:${name}`,
      type: 'node',
      name,
      operator,
      couchUrl: split.url,
      capacity,
      weight,
      assigned: 0,
      downed: false,
      draining: false,
      synchronous: input.synchronous ?? op.synchronous,
      createdAt: Date.now(),
    };
    if (couch) doc.couch = couch;
    if (split.credentials) doc.credentials = await this.secrets.seal(split.credentials);
    if ((await this.write(doc)) === 'conflict') throw new AdminError(409, `node ${name} exists`);
    return nodeView(doc);
  }

  /**
   * A person's own Couch, for their account alone (`owner`, as the registry names it): checked
   * as any node (reachable, version, admin rights, _security honoured), credentials sealed as
   * any node's. It takes no placements (weight 0, and placement skips owned nodes); asked again
   * with another URL or password, it is updated.
   */
  async addOwnCouch(name: string, owner: string, url: string): Promise<NodeView> {
    let split;
    try {
      split = splitCouchUrl(url);
    } catch {
      throw new AdminError(400, 'url must be an http(s) Couch URL such as https://user:pass@couch.example:6984');
    }
    let couch: CouchInfo | void;
    try {
      couch = await this.check(url);
    } catch (e) {
      throw new AdminError(422, `that Couch was refused: ${(e as Error).message}`);
    }
    for (;;) {
      const existing = await this.db.get<NodeDoc>(`node:${name}`);
      if (existing && existing.owner !== owner) throw new AdminError(409, `node ${name} exists`);
      const doc: NodeDoc = {
        ...(existing ?? {}),
        _id: `node:${name}`,
        type: 'node',
        name,
        owner,
        couchUrl: split.url,
        capacity: 1,
        weight: 0,
        assigned: existing?.assigned ?? 0,
        downed: false,
        draining: false,
        synchronous: false,
        createdAt: existing?.createdAt ?? Date.now(),
      };
      delete doc.removeWhenEmpty;
      if (couch) doc.couch = couch;
      if (split.credentials) doc.credentials = await this.secrets.seal(split.credentials);
      else delete doc.credentials;
      if ((await this.write(doc)) !== 'conflict') return nodeView(doc);
    }
  }

  /** Marks a person's own Couch to leave the registry once its user has moved off it. */
  async retireOwnCouch(name: string, owner: string): Promise<void> {
    for (;;) {
      const node = await this.db.get<NodeDoc>(`node:${name}`);
      if (!node || node.owner !== owner) throw new AdminError(404, 'this account has no own Couch');
      if (node.removeWhenEmpty) return;
      if ((await this.write({ ...node, removeWhenEmpty: true } as NodeDoc)) !== 'conflict') return;
    }
  }

  async nodes(): Promise<NodeView[]> {
    return (await this.db.range<NodeDoc>('node:', 'node:\ufff0')).map(nodeView);
  }

  /** drain: no new users; down: not served either (manual override); up: active again. */
  async setState(name: string, state: 'drain' | 'down' | 'up'): Promise<NodeView> {
    for (;;) {
      const node = await this.db.get<NodeDoc>(`node:${name}`);
      if (!node) throw new AdminError(404, `no node ${name}`);
      const next: NodeDoc = { ...node, draining: state === 'drain', downed: state === 'down' };
      // Its users are served from their replicas while it is down: merged back before it serves.
      if (state === 'down' && !node.downed) next.needsMerge = true;
      if ((await this.write(next)) !== 'conflict') return nodeView(next);
    }
  }

  /** Where a uid lives: its primary and replica nodes. */
  /** Where a uid lives, and whether its storage was refused (account deleted) or deleted (ms). */
  async placement(uid: number): Promise<{ uid: number; node: string; replica: string | null; revokedAt?: number; purgedAt?: number } | undefined> {
    if (!Number.isSafeInteger(uid)) return undefined;
    const doc = await this.db.get<UidDoc>(`uid:${uid}`);
    if (!doc) return undefined;
    return {
      uid,
      node: doc.node,
      replica: doc.replica ?? null,
      ...(doc.revokedAt === undefined ? {} : { revokedAt: doc.revokedAt }),
      ...(doc.purgedAt === undefined ? {} : { purgedAt: doc.purgedAt }),
    };
  }

  /** How many live uids have their primary or replica on the node, or a move bringing them there. */
  async usersOn(name: string, pageSize = 1000): Promise<number> {
    let held = 0;
    let start = 'uid:';
    for (;;) {
      const page = await this.db.range<UidDoc>(start, 'uid:\ufff0', pageSize + 1);
      for (const u of page.slice(0, pageSize)) {
        // Deleted accounts' storage is queued for deletion, not moved.
        if (u.purgedAt !== undefined || u.revokedAt !== undefined) continue;
        if ([u.node, u.replica, u.move?.to, u.move?.replica].includes(name)) held++;
      }
      if (page.length <= pageSize) return held;
      start = (page[pageSize] as UidDoc)._id;
    }
  }

  async removeNode(name: string): Promise<void> {
    if (name === DEFAULT_NODE) throw new AdminError(409, 'the default node is this gateway\'s own store and cannot be removed');
    const node = await this.db.get<NodeDoc>(`node:${name}`);
    if (!node) throw new AdminError(404, `no node ${name}`);
    // The count is kept at placement and moves; the placements themselves decide (a move
    // interrupted between its switch and its count leaves the count off by one).
    const held = await this.usersOn(name);
    if (held > 0) throw new AdminError(409, `node ${name} still holds ${held} user databases; drain it and move them first`);
    if ((await this.write({ ...node, _deleted: true })) === 'conflict') throw new AdminError(409, `node ${name} changed meanwhile; try again`);
  }
}
