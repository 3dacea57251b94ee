// A minimal client of Firefox's Marionette protocol (what geckodriver speaks to Firefox):
// length-prefixed JSON over a stream, [0, id, command, params] out, [1, id, error, result]
// back. The npm geckodriver package downloads a binary at install, which fails here; this is
// the handful of commands the Firefox tests need.
import { connect, type Socket } from 'node:net';

export class Marionette {
  private buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private hello: ((v: unknown) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('Marionette connection closed'));
      this.pending.clear();
    });
  }

  /** Connects (a TCP port, or a Unix socket path), retrying until Firefox listens. */
  static async connect(target: { port: number } | { path: string }, timeoutMs = 60_000): Promise<Marionette> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = 'path' in target ? connect(target.path) : connect(target.port, '127.0.0.1');
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const m = new Marionette(socket);
        await new Promise((resolve, reject) => {
          m.hello = resolve;
          setTimeout(() => reject(new Error('no Marionette hello')), 10_000).unref();
        });
        await m.command('WebDriver:NewSession', { capabilities: { alwaysMatch: { acceptInsecureCerts: true } } });
        return m;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const colon = this.buffer.indexOf(':');
      if (colon < 0) return;
      const length = Number(this.buffer.subarray(0, colon).toString());
      if (this.buffer.length < colon + 1 + length) return;
      const message = JSON.parse(this.buffer.subarray(colon + 1, colon + 1 + length).toString()) as unknown;
      this.buffer = this.buffer.subarray(colon + 1 + length);
      if (!Array.isArray(message)) {
        this.hello?.(message);
        this.hello = undefined;
        continue;
      }
      const [, id, error, result] = message as [number, number, { error: string; message: string } | null, unknown];
      const p = this.pending.get(id);
      this.pending.delete(id);
      if (error) p?.reject(new Error(`${error.error}: ${error.message}`));
      else p?.resolve(result);
    }
  }

  command<T = unknown>(name: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    const body = Buffer.from(JSON.stringify([0, id, name, params]));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${body.length}:`);
      this.socket.write(body);
    });
  }

  setContext(context: 'chrome' | 'content'): Promise<unknown> {
    return this.command('Marionette:SetContext', { value: context });
  }

  /** Runs a script in the current context; its return value comes back as JSON. */
  async execute<T = unknown>(script: string, args: unknown[] = []): Promise<T> {
    return ((await this.command<{ value: T }>('WebDriver:ExecuteScript', { script, args })) as { value: T }).value;
  }

  /** Runs an async script: it calls `arguments[arguments.length - 1]` with its result. */
  async executeAsync<T = unknown>(script: string, args: unknown[] = [], timeoutMs = 60_000): Promise<T> {
    await this.command('WebDriver:SetTimeouts', { script: timeoutMs });
    return ((await this.command<{ value: T }>('WebDriver:ExecuteAsyncScript', { script, args })) as { value: T }).value;
  }

  navigate(url: string): Promise<unknown> {
    return this.command('WebDriver:Navigate', { url });
  }

  async find(css: string): Promise<string> {
    const found = await this.command<{ value: Record<string, string> }>('WebDriver:FindElement', { using: 'css selector', value: css });
    return Object.values(found.value)[0] as string;
  }

  async type(css: string, text: string): Promise<void> {
    await this.command('WebDriver:ElementSendKeys', { id: await this.find(css), text });
  }

  async click(css: string): Promise<void> {
    await this.command('WebDriver:ElementClick', { id: await this.find(css) });
  }

  async quit(): Promise<void> {
    await this.command('Marionette:Quit', { flags: ['eForceQuit'] }).catch(() => undefined);
    this.socket.destroy();
  }

  close(): void {
    this.socket.destroy();
  }
}
