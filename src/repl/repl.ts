// `storage-sync repl`: a thin interactive shell over the engine's `plan` (in memory) and `apply`
// (of that in-memory plan, filtered). Everything a command prints goes through `say`, which
// redacts secrets; every command is wrapped so nothing typed can end the session by accident.
import fs from 'node:fs';
import path from 'node:path';
import repl, { type REPLServer } from 'node:repl';
import type { Action, PathState, PlanItem } from '../core/types.js';
import { CONFLICT_POLICIES, MODES } from '../core/types.js';
import { InterruptedError, SafetyError, oneLine } from '../core/errors.js';
import { localChange, remoteChange } from '../core/compare.js';
import { parseMaxDelete } from '../core/guards.js';
import { EventStream, makeRedactor, type SyncEvent } from '../engine/events.js';
import { run } from '../engine/run.js';
import type { Gathered } from '../engine/gather.js';
import type { PlanFile } from '../engine/plan-file.js';
import type { Settings } from '../engine/settings.js';
import { isReported } from '../engine/summary.js';
import { profilePaths } from '../manifest/manifest.js';
import { secretsOf, type Credentials } from '../credentials/source.js';
import { S3Store } from '../remote/s3-store.js';
import { RunLog } from '../render/log-file.js';
import { summaryLine } from '../render/human.js';
import { ellipsize, formatBytes, formatDuration } from '../render/format.js';
import type { CliIO } from '../cli/main.js';
import { ArgError, parseFlags, pathMatcher, positiveInt, tokenize } from './args.js';
import { LiveView } from './live.js';
import { colourWanted, makePaint, type Paint } from './paint.js';
import { ACTION_ORDER, ACTION_WORDS, REASON_WORDS } from './words.js';
import { diffCommand } from './diff.js';
import { listTrash, restoreFromTrash } from './trash.js';

const HISTORY_KEEP = 1000;
const LOG_KEEP = 5000;
const DEFAULT_ROWS = 30;

interface Scan {
  data: PlanFile;
  gathered: Gathered;
  /** Every path of the scan with its decision, `nothing` included (for explain). */
  all: Map<string, PlanItem>;
  at: Date;
}

interface Busy {
  what: 'scan' | 'apply' | 'diff';
  controller: AbortController;
  done: Promise<unknown>;
}

interface Command {
  usage: string;
  help: string;
  /** May run while an apply is in progress. */
  whileBusy?: boolean;
  run(words: string[]): Promise<void> | void;
}

export interface ReplHandle {
  server: REPLServer;
  /** Resolves with the exit code once the session is over. */
  closed: Promise<number>;
  /** What Tab offers for a line (exposed for tests). */
  complete(line: string): [string[], string];
}

export class Session {
  private settings: Settings;
  private scan: Scan | undefined;
  private rules: { pattern: string; skip: boolean }[] = [];
  private log: { at: Date; text: string; error: boolean }[] = [];
  private busy: Busy | undefined;
  private store: S3Store | undefined;
  private readonly redact: (s: string) => string;
  private readonly paint: Paint;
  private readonly tty: boolean;
  private readonly started = Date.now();
  private trashCache: string[] = [];
  private readonly stats = { scans: 0, applies: 0, stopped: 0, uploaded: 0, downloaded: 0, deletedRemote: 0, deletedLocal: 0, conflicts: 0, recorded: 0, failed: 0, skipped: 0, bytesUp: 0, bytesDown: 0 };
  private server: REPLServer | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private quietSummary = false;
  /** The live view of the running scan or apply, so notes print above it. */
  private view: LiveView | undefined;
  private readonly commands: Record<string, Command>;
  /** What was typed this session, for .save. */
  private readonly typed: string[] = [];
  private readonly aliases: Record<string, string> = { refresh: 'scan', quit: 'exit', '?': 'help', ls: 'plan' };

  /** `secrets`: more values to keep out of every output (the SQL password the credentials came with). */
  constructor(settings: Settings, private readonly credentials: Credentials, private readonly io: CliIO, secrets: string[] = []) {
    this.settings = { ...settings };
    this.redact = makeRedactor([...secretsOf(credentials), ...secrets]);
    this.tty = io.stdout.isTTY === true;
    this.paint = makePaint(colourWanted(this.tty, io.env));
    this.commands = this.table();
  }

  // ---- output ------------------------------------------------------------------------------

  private say = (line = ''): void => {
    this.io.stdout.write(this.redact(line) + '\n');
  };

  private error(message: string): void {
    const text = this.redact(message);
    this.say(this.paint.red(`error: ${text}`));
    this.remember(text, true);
  }

  private remember(text: string, error = false): void {
    this.log.push({ at: new Date(), text: this.redact(text), error });
    if (this.log.length > LOG_KEEP) this.log.splice(0, this.log.length - LOG_KEEP);
  }

  private columns(): number {
    return this.io.stdout.columns ?? 100;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async start(): Promise<ReplHandle> {
    const terminal = this.tty && this.io.stdin?.isTTY === true;
    const input = this.io.stdin ?? process.stdin;
    // The process-wide handler (bin.ts) hands SIGINT to us instead of ending the process.
    this.io.claimSignals?.((sig) => {
      if (sig !== 'SIGINT') return false;
      if (!this.interrupt()) this.server?.emit('SIGINT');
      return true;
    });
    this.say(this.paint.bold('storage-sync REPL') + ` — bucket ${this.credentials.bucket} at ${this.credentials.endpoint}, root ${this.settings.root}`);
    this.say(`type ${this.paint.cyan('help')} for commands, ${this.paint.cyan('exit')} to leave; scanning both sides first…`);
    // The first scan runs before the prompt appears; what is typed meanwhile waits in the stream.
    await this.dispatch('scan');

    const server = repl.start({
      input,
      output: this.io.stdout,
      prompt: this.prompt(),
      terminal,
      useColors: this.paint.on,
      ignoreUndefined: true,
      preview: false,
      completer: (line: string) => this.complete(line),
      eval: (cmd, _ctx, _file, cb) => {
        // After `exit` no prompt: the session is over.
        const done = (): void => void (this.closed || cb(null, undefined));
        this.enqueue(cmd).then(done, done);
      },
    });
    this.server = server;
    // `.editor` and `.clear` belong to JavaScript sessions; here they would only confuse.
    const dot = server.commands as unknown as Record<string, unknown>;
    delete dot['editor'];
    delete dot['clear'];
    // node's own .save writes the typed lines as they are: a secret pasted by mistake would land
    // in the file. Ours writes them redacted, and not at all under --dry-run.
    server.defineCommand('save', {
      help: 'Save the commands typed in this session to a file (secrets redacted)',
      action: (file: string) => {
        const say = (text: string): void => {
          this.say(text);
          server.displayPrompt();
        };
        if (!file.trim()) return say('error: give a file name');
        if (this.settings.dryRun) return say('dry run: .save writes nothing (set dry-run off first)');
        try {
          fs.writeFileSync(path.resolve(file.trim()), this.typed.map((l) => this.redact(l)).join('\n') + '\n');
          say(`session saved to ${file.trim()}`);
        } catch (err) {
          say(`error: ${(err as Error).message.split('\n')[0]}`);
        }
      },
    });
    this.setupHistory(server);
    this.takeSigint(server);

    let resolveClosed!: (code: number) => void;
    const closed = new Promise<number>((r) => (resolveClosed = r));
    let exitCode = 0;
    const onAbort = (): void => {
      exitCode = this.io.signal.reason === 'SIGTERM' ? 143 : 130;
      this.busy?.controller.abort('SIGINT');
      server.close();
    };
    if (this.io.signal.aborted) onAbort();
    else this.io.signal.addEventListener('abort', onAbort, { once: true });
    server.on('exit', () => {
      this.closed = true;
      this.io.signal.removeEventListener('abort', onAbort);
      // Ctrl+D at a terminal means "leave now"; the end of piped input lets the script finish.
      if (terminal || this.io.signal.aborted) this.busy?.controller.abort('SIGINT');
      void this.queue
        .catch(() => undefined)
        .finally(() => {
          this.store?.close();
          resolveClosed(exitCode);
        });
    });
    return { server, closed, complete: (line) => this.complete(line) };
  }

  private prompt(): string {
    const flags = [this.settings.mode, ...(this.settings.dryRun ? ['dry-run'] : [])].join(' ');
    return `storage-sync [${flags}]> `;
  }

  private setupHistory(server: REPLServer): void {
    const file = path.join(profilePaths(this.settings.manifestDir, this.settings.profile).dir, 'repl_history');
    let lines: string[] = [];
    try {
      lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
      if (lines.length > 2 * HISTORY_KEEP && !this.settings.dryRun) {
        lines = lines.slice(-HISTORY_KEEP);
        fs.writeFileSync(file, lines.join('\n') + '\n');
      }
    } catch {
      // no history yet
    }
    // readline keeps the newest entry first.
    (server as unknown as { history: string[] }).history = lines.slice(-HISTORY_KEEP).reverse();
    server.on('line', (line: string) => {
      const t = line.trim();
      if (t) this.typed.push(t.replace(/\n/g, ' '));
      // --dry-run writes nothing anywhere (the CLI contract), the history file included.
      if (!t || this.settings.dryRun) return;
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        // A secret pasted at the prompt by mistake must not be kept on disk in the clear.
        fs.appendFileSync(file, this.redact(t.replace(/\n/g, ' ')) + '\n');
      } catch {
        // history is a convenience; an unwritable manifest folder must not break the session
      }
    });
  }

  /**
   * Ctrl+C while something runs stops that, and only that. At an idle prompt node's own handling
   * stays: the first clears the line and says how to exit, the second exits.
   */
  private takeSigint(server: REPLServer): void {
    const original = server.listeners('SIGINT') as ((...a: unknown[]) => void)[];
    server.removeAllListeners('SIGINT');
    server.on('SIGINT', () => {
      if (this.interrupt()) return;
      for (const l of original) l.call(server);
    });
  }

  /** Stops what is running; false when nothing was. */
  private interrupt(): boolean {
    if (!this.busy) return false;
    if (!this.busy.controller.signal.aborted) {
      const line = this.paint.yellow(`stopping the ${this.busy.what} after in-flight work is cleanly stopped…`);
      if (this.view) this.view.note(line);
      else {
        if (this.tty) this.io.stdout.write('\n');
        this.say(line);
      }
      this.busy.controller.abort('SIGINT');
    }
    return true;
  }

  // ---- dispatch ----------------------------------------------------------------------------

  /**
   * Lines run one after another, in the order typed or pasted. `stop`, and the read-only
   * commands while something runs, answer at once instead of waiting their turn.
   */
  enqueue(raw: string): Promise<void> {
    const first = raw.trim().split(/\s+/)[0] ?? '';
    const found = this.lookup(first);
    const now = found?.[0] === 'stop' || (this.busy !== undefined && found?.[1].whileBusy === true && found[0] !== 'exit');
    if (now) return this.dispatch(raw);
    if (this.busy && first) this.say(this.paint.dim(`(${first}: runs after the ${this.busy.what}; stop or Ctrl+C stops it)`));
    const next = this.queue.then(() => this.dispatch(raw));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The command a typed name stands for (aliases resolved); never an Object.prototype member. */
  private lookup(name: string): [string, Command] | undefined {
    const n = name.toLowerCase();
    const key = Object.hasOwn(this.aliases, n) ? this.aliases[n]! : n;
    return Object.hasOwn(this.commands, key) ? [key, this.commands[key]!] : undefined;
  }

  async dispatch(raw: string): Promise<void> {
    let words: string[];
    try {
      words = tokenize(raw.trim());
    } catch (err) {
      this.error(oneLine(err));
      return;
    }
    if (words.length === 0) return;
    const cmd = this.lookup(words[0]!)?.[1];
    if (!cmd) {
      this.error(`unknown command "${ellipsize(words[0]!, 40)}" (type help for the list)`);
      return;
    }
    if (this.busy && !cmd.whileBusy) {
      this.error(`a ${this.busy.what} is running: wait for it, or type stop (or press Ctrl+C)`);
      return;
    }
    try {
      await cmd.run(words.slice(1));
    } catch (err) {
      if (err instanceof ArgError) this.error(`${err.message} (usage: ${cmd.usage})`);
      else this.error(oneLine(err));
    }
  }

  private table(): Record<string, Command> {
    return {
      help: { usage: 'help [COMMAND]', help: 'list the commands, or explain one', whileBusy: true, run: (w) => this.help(w) },
      status: { usage: 'status', help: 'settings, bucket, the last scan and what is pending', whileBusy: true, run: () => this.status() },
      scan: { usage: 'scan', help: 'rescan both sides (alias refresh) and show what changed since the last scan', run: () => this.rescan(true) },
      plan: { usage: 'plan [GLOB] [--action A[,B]] [--sort path|size|action|reason] [--limit N|all]', help: 'the pending plan as a table, grouped and counted by action', run: (w) => this.plan(w) },
      explain: { usage: 'explain PATH', help: 'local stat, manifest base, remote object, and the rule that picked the action', run: (w) => this.explain(w) },
      diff: { usage: 'diff PATH [--limit N]', help: 'unified diff local vs remote (text ≤ 1 MiB), else size/MD5/mtime side by side', run: (w) => this.diff(w) },
      skip: { usage: 'skip [GLOB]', help: 'take matching items out of the pending plan (no GLOB: list the skip rules)', run: (w) => this.skip(w, true) },
      unskip: { usage: 'unskip GLOB|all', help: 'put matching items back into the plan', run: (w) => this.skip(w, false) },
      apply: { usage: 'apply [GLOB]', help: 'carry out the plan (or the part matching GLOB) with a live view; stop or Ctrl+C stops it', run: (w) => this.apply(w) },
      stop: { usage: 'stop', help: 'stop a running apply or scan cleanly; the REPL stays open', whileBusy: true, run: () => void (this.interrupt() || this.say('nothing is running')) },
      mode: { usage: 'mode two-way|upload|download', help: 'switch the sync direction (rescans)', run: (w) => this.mode(w) },
      set: { usage: 'set [conflict|dry-run|delete|force|max-delete|concurrency|trash VALUE]', help: 'change a setting (no arguments: show them)', run: (w) => this.set(w) },
      conflicts: { usage: 'conflicts', help: 'the paths changed on both sides, and what the policy does', run: () => this.conflicts() },
      log: { usage: 'log [N]', help: 'the last N events of this session (default 20), errors highlighted', whileBusy: true, run: (w) => this.showLog(w) },
      clear: { usage: 'clear', help: 'clear the session log', whileBusy: true, run: () => this.clearLog() },
      stats: { usage: 'stats', help: 'totals of this session', whileBusy: true, run: () => this.showStats() },
      trash: { usage: 'trash [GLOB]', help: 'files kept in the trash, by run', run: (w) => this.trash(w) },
      restore: { usage: 'restore PATH [--run RUN_ID]', help: 'put a trashed file back (a file in its place goes to the trash first)', run: (w) => this.restore(w) },
      exit: { usage: 'exit', help: 'leave (alias quit; Ctrl+D or Ctrl+C twice also work)', whileBusy: true, run: () => this.exit() },
    };
  }

  private help(w: string[]): void {
    if (w[0]) {
      const c = this.lookup(w[0])?.[1];
      if (!c) throw new ArgError(`no command "${ellipsize(w[0], 40)}"`);
      this.say(`${c.usage}\n  ${c.help}`);
      return;
    }
    const width = Math.max(...Object.values(this.commands).map((c) => c.usage.length));
    const wide = this.columns() >= width + 40;
    for (const c of Object.values(this.commands)) this.say(wide ? `  ${c.usage.padEnd(width)}  ${this.paint.dim(c.help)}` : `  ${c.usage}\n      ${this.paint.dim(c.help)}`);
    this.say('GLOB: a glob (media/**/*.png), a path, or a folder (media/avatars). Tab completes commands and plan paths.');
  }

  private exit(): void {
    if (this.busy) this.interrupt();
    this.server?.close();
  }

  // ---- scanning ----------------------------------------------------------------------------

  private async runBusy<T>(what: Busy['what'], fn: (signal: AbortSignal) => Promise<T>, view?: LiveView): Promise<T> {
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.io.signal]);
    const done = fn(signal);
    this.busy = { what, controller, done };
    this.view = view;
    try {
      return await done;
    } finally {
      this.busy = undefined;
      this.view = undefined;
      view?.finish();
    }
  }

  private eventsFor(view?: LiveView): EventStream {
    const events = new EventStream();
    if (view) events.on(view.listener);
    events.on((e) => this.logEvent(e));
    return events;
  }

  private logEvent(e: SyncEvent): void {
    switch (e.event) {
      case 'warning':
        return this.remember(`warning: ${e.path ?? e.key ?? ''}: ${e.message}`);
      case 'file': {
        const name = e.path ?? e.key;
        if (e.status === 'failed') this.stats.failed++;
        if (e.status === 'skipped') this.stats.skipped++;
        if (e.status === 'done') this.count(e.action, e.bytes);
        return this.remember(`${e.status} ${e.action} ${name}${e.error ? ': ' + e.error : ''}`, e.status === 'failed');
      }
      case 'summary':
        if (!this.quietSummary) this.remember(summaryLine(e));
        return;
      default:
        return;
    }
  }

  private count(action: string, bytes: number): void {
    const s = this.stats;
    if (action === 'upload' || action === 'conflict-upload') (s.uploaded++, (s.bytesUp += bytes));
    if (action === 'download' || action === 'conflict-download') (s.downloaded++, (s.bytesDown += bytes));
    if (action.startsWith('conflict')) s.conflicts++;
    if (action === 'delete-remote') s.deletedRemote++;
    if (action === 'delete-local') s.deletedLocal++;
    if (action === 'record') s.recorded++;
  }

  private async rescan(report: boolean): Promise<void> {
    const before = this.scan;
    const view = this.tty ? new LiveView(this.io.stdout, true, () => this.columns(), this.paint, this.say, () => undefined) : undefined;
    const t0 = Date.now();
    try {
      this.quietSummary = true;
      const res = await this.runBusy('scan', (signal) =>
        run({ command: 'plan', savePlan: false, settle: true, settings: this.settings, credentials: this.credentials, events: this.eventsFor(view), signal }),
      view);
      if (!res.planData || !res.gathered) throw new Error('internal: the engine returned no in-memory plan');
      this.scan = { data: res.planData, gathered: res.gathered, all: new Map(res.plan.items.map((i) => [i.path, i])), at: new Date() };
      this.stats.scans++;
    } catch (err) {
      view?.finish();
      this.scan = undefined;
      this.quietSummary = false;
      if (err instanceof InterruptedError) {
        this.say(this.paint.yellow('scan stopped; no plan (type scan to try again)'));
        return;
      }
      const hint = err instanceof SafetyError ? ' (see `set force on`, `set max-delete`)' : '';
      throw new Error(oneLine(err) + hint);
    }
    view?.finish();
    this.quietSummary = false;
    const g = this.scan.gathered;
    const sum = (a: number[]): number => a.reduce((n, x) => n + x, 0);
    if (report) this.say(`scanned in ${formatDuration(Date.now() - t0)}: ${sum(g.localCount)} local files, ${sum(g.remoteCount)} remote objects, ${g.hashed} read and hashed`);
    this.sayPending();
    for (const p of g.problems.slice(0, 5)) this.error(`${p.path ?? p.key}: ${p.error}`);
    if (g.problems.length > 5) this.error(`… and ${g.problems.length - 5} more problems (log)`);
    for (const p of g.problems) this.remember(`problem ${p.path ?? p.key}: ${p.error}`, true);
    if (report && before) this.sayChanges(before, this.scan);
  }

  /** Items a user is told about; bookkeeping (refresh, forget) rides along silently. */
  private pending(): PlanItem[] {
    return (this.scan?.data.plan.items ?? []).filter((i) => isReported(i.action));
  }

  /** The rule that takes an item out; a rule may name its local path or, as `apply` and `explain` accept, its key. */
  private skipped(i: { path: string; key: string }): string | undefined {
    let hit: string | undefined;
    for (const r of this.rules) {
      const m = pathMatcher(r.pattern);
      if (m(i.path) || m(i.key)) hit = r.skip ? r.pattern : undefined;
    }
    return hit;
  }

  private sayPending(): void {
    if (!this.scan) return;
    const items = this.pending();
    const mine = items.filter((i) => this.skipped(i));
    const live = items.filter((i) => !this.skipped(i));
    const work = live.filter((i) => i.action !== 'skip');
    const leftAlone = live.length - work.length;
    const inSync = [...this.scan.all.values()].filter((i) => i.action === 'nothing' || i.action === 'refresh').length;
    const tail = (leftAlone ? `; ${leftAlone} left alone by this mode or policy (plan --action skip)` : '') + (mine.length ? `; ${mine.length} skipped by you` : '');
    if (work.length === 0) {
      this.say(this.paint.green(`nothing to do: ${inSync} paths in sync`) + tail);
      return;
    }
    const bytes = work.reduce((n, i) => n + i.bytes, 0);
    this.say(`pending: ${countsLine(work, this.paint)} (${formatBytes(bytes)} to move); ${inSync} in sync` + tail);
    this.say(this.paint.dim('type plan to see them, explain PATH for why, apply to carry them out'));
  }

  private sayChanges(before: Scan, after: Scan): void {
    const old = new Map(before.data.plan.items.filter((i) => isReported(i.action)).map((i) => [i.path, `${i.action} (${i.reason})`]));
    const now = new Map(after.data.plan.items.filter((i) => isReported(i.action)).map((i) => [i.path, `${i.action} (${i.reason})`]));
    const added = [...now.keys()].filter((p) => !old.has(p));
    const gone = [...old.keys()].filter((p) => !now.has(p));
    const changed = [...now.keys()].filter((p) => old.has(p) && old.get(p) !== now.get(p));
    if (added.length + gone.length + changed.length === 0) {
      this.say('since the last scan: no change in the plan');
      return;
    }
    this.say(`since the last scan: ${added.length} new, ${gone.length} gone, ${changed.length} changed`);
    const show = (mark: string, list: string[], text: (p: string) => string): void => {
      for (const p of list.slice(0, 5)) this.say(`  ${mark} ${p}  ${this.paint.dim(text(p))}`);
      if (list.length > 5) this.say(`    … and ${list.length - 5} more`);
    };
    show('+', added, (p) => now.get(p)!);
    show('-', gone, (p) => `was ${old.get(p)!}`);
    show('~', changed, (p) => `${old.get(p)!} → ${now.get(p)!}`);
  }

  private async needScan(): Promise<Scan> {
    if (!this.scan) await this.rescan(true);
    if (!this.scan) throw new Error('no plan: the scan did not finish');
    return this.scan;
  }

  // ---- viewing -----------------------------------------------------------------------------

  private status(): void {
    const s = this.settings;
    const c = this.credentials;
    const on = (b: boolean): string => (b ? 'on' : 'off');
    this.say(`root ${s.root}, profile ${s.profile}, bucket ${c.bucket} at ${c.endpoint}`);
    this.say(`mappings: ${s.mappings.map((m) => `${m.local}/ ↔ ${m.remote || '(bucket root)'}`).join(', ')}`);
    this.say(`mode ${s.mode}, conflict ${s.conflict}, dry-run ${on(s.dryRun)}, delete ${on(s.delete)}, force ${on(s.force)}, max-delete ${s.maxDelete}, concurrency ${s.concurrency}, trash ${on(s.trash)}`);
    if (this.busy) this.say(this.paint.yellow(`a ${this.busy.what} is running (stop or Ctrl+C to stop it)`));
    if (!this.scan) this.say('no scan yet (type scan)');
    else {
      this.say(`last scan ${this.scan.at.toISOString().slice(11, 19)} UTC (${formatDuration(Date.now() - this.scan.at.getTime())} ago)`);
      this.sayPending();
    }
    if (this.rules.length) this.say(`skip rules: ${this.rules.map((r) => (r.skip ? '' : '!') + r.pattern).join(', ')}`);
  }

  private async plan(w: string[]): Promise<void> {
    const { positional, flags } = parseFlags(w, ['action', 'sort', 'limit']);
    if (positional.length > 1) throw new ArgError('one GLOB at most (quote a pattern with spaces)');
    const actions = flags.get('action')?.split(',').filter(Boolean);
    const known = new Set<string>([...ACTION_ORDER.filter((a) => isReported(a)), 'conflict', 'delete', 'skipped']);
    for (const a of actions ?? []) if (!known.has(a)) throw new ArgError(`unknown action "${ellipsize(a, 30)}" (one of ${[...known].join(', ')})`);
    const sort = flags.get('sort') ?? 'action';
    if (!['path', 'size', 'action', 'reason'].includes(sort)) throw new ArgError(`cannot sort by "${ellipsize(sort, 30)}" (path, size, action or reason)`);
    const limitFlag = flags.get('limit');
    const limit = limitFlag === undefined ? DEFAULT_ROWS : limitFlag === 'all' ? Infinity : positiveInt(limitFlag, '--limit');
    const scan = await this.needScan();
    const match = positional[0] ? pathMatcher(positional[0]) : () => true;
    type Row = PlanItem & { group: string };
    const rows: Row[] = this.pending()
      .filter((i) => match(i.path) || match(i.key))
      .map((i) => ({ ...i, group: this.skipped(i) ? 'skipped' : i.action }))
      .filter((r) => !actions || actions.some((a) => r.group === a || (a === 'conflict' && r.group.startsWith('conflict')) || (a === 'delete' && r.group.startsWith('delete'))));
    if (rows.length === 0) {
      this.say(this.pending().length === 0 ? this.paint.green(`nothing to do (${scan.all.size} paths in sync)`) : 'no pending item matches');
      return;
    }
    const rank = (g: string): number => (g === 'skipped' ? 99 : ACTION_ORDER.indexOf(g as Action));
    const by: Record<string, (a: Row, b: Row) => number> = {
      path: (a, b) => natural(a.path, b.path),
      size: (a, b) => b.bytes - a.bytes || natural(a.path, b.path),
      reason: (a, b) => a.reason.localeCompare(b.reason) || natural(a.path, b.path),
      action: (a, b) => rank(a.group) - rank(b.group) || natural(a.path, b.path),
    };
    rows.sort(by[sort]);
    const counts = countsLine(rows.map((r) => ({ action: r.group as Action, bytes: r.bytes })), this.paint);
    this.say(`${rows.length} item${rows.length === 1 ? '' : 's'}: ${counts}; ${formatBytes(rows.filter((r) => r.group !== 'skipped').reduce((n, r) => n + r.bytes, 0))} to move`);
    // Truncated by action, every group keeps a share of the rows: a few hundred uploads must not
    // hide the one conflict or delete.
    const groups = new Map<string, Row[]>();
    for (const r of rows) groups.set(sort === 'action' ? r.group : '', [...(groups.get(sort === 'action' ? r.group : '') ?? []), r]);
    const quota = new Map([...groups.keys()].map((g) => [g, 0]));
    for (let left = Math.min(limit, rows.length); left > 0; ) {
      for (const [g, list] of groups) {
        if (left > 0 && quota.get(g)! < list.length) (quota.set(g, quota.get(g)! + 1), left--);
      }
    }
    const shown = [...groups].flatMap(([g, list]) => list.slice(0, quota.get(g)));
    const actW = Math.max(6, ...shown.map((r) => label(r.group).length));
    const sizeW = 9;
    const reasonW = Math.max(6, ...shown.map((r) => r.reason.length));
    const pathW = Math.max(10, Math.min(Math.max(...shown.map((r) => r.path.length)), this.columns() - actW - sizeW - reasonW - 8));
    this.say(this.paint.dim(`${'action'.padEnd(actW)}  ${'path'.padEnd(pathW)}  ${'size'.padStart(sizeW)}  reason`));
    for (const [g, list] of groups) {
      const n = quota.get(g)!;
      list.slice(0, n).forEach((r, i) => {
        const act = (i === 0 || sort !== 'action' ? label(r.group) : '').padEnd(actW);
        const size = (r.bytes ? formatBytes(r.bytes) : '-').padStart(sizeW);
        this.say(`${colourAction(r.group, act, this.paint)}  ${ellipsize(r.path, pathW).padEnd(pathW)}  ${size}  ${this.paint.dim(r.reason)}`);
      });
      if (sort === 'action' && list.length > n) this.say(this.paint.dim(`${''.padEnd(actW)}  … ${list.length - n} more ${label(g)}`));
    }
    if (rows.length > shown.length) this.say(this.paint.yellow(`… ${rows.length - shown.length} more of ${rows.length} (narrow with a GLOB or --action, or --limit N|all)`));
  }

  private find(scan: Scan, p: string): { state: PathState; item: PlanItem | undefined } | undefined {
    const clean = p.replace(/^\.\//, '').replace(/\/+$/, '');
    const item = scan.all.get(clean) ?? [...scan.all.values()].find((i) => i.key === clean);
    const state = item ?? scan.gathered.states.find((s) => s.path === clean || s.key === clean);
    return state ? { state, item } : undefined;
  }

  private notFound(scan: Scan, p: string): never {
    const near = [...scan.all.keys()].filter((k) => k.endsWith('/' + p.split('/').pop())).slice(0, 3);
    throw new ArgError(`${ellipsize(p, 80)} is not in the last scan${near.length ? `; did you mean ${near.join(', ')}?` : ''}`);
  }

  private async explain(w: string[]): Promise<void> {
    const { positional } = parseFlags(w, []);
    if (positional.length !== 1) throw new ArgError('give one PATH');
    const scan = await this.needScan();
    const found = this.find(scan, positional[0]!);
    if (!found) this.notFound(scan, positional[0]!);
    const { state: s, item } = found;
    const m = this.settings.mappings[s.mapping];
    const time = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
    const nsTime = (ns: string): string => time(Number(BigInt(ns) / 1_000_000n));
    this.say(this.paint.bold(s.path) + this.paint.dim(`  (key ${s.key}${m ? `; mapping ${m.local}/ ↔ ${m.remote || '(bucket root)'}` : ''})`));
    const l = s.local;
    this.say(`  local   ${l ? `${formatBytes(l.size)} (${l.size} B), modified ${nsTime(l.mtimeNs)}, inode ${l.ino}${l.md5 ? `, MD5 ${l.md5}` : ''}` : 'absent'}`);
    const b = s.base;
    this.say(`  base    ${b ? `synced ${nsTime(b.recordedAtNs)}: local ${b.local.size} B MD5 ${b.local.md5}, modified ${nsTime(b.local.mtimeNs)}; remote ETag ${b.remote.etag}` : 'none: never synced (the manifest has no entry)'}`);
    const r = s.remote;
    this.say(`  remote  ${r ? `${formatBytes(r.size)} (${r.size} B), ETag ${r.etag}, LastModified ${time(r.lastModified)}${r.md5 ? `, MD5 ${r.md5}` : ''}` : 'absent'}`);
    try {
      this.say(`  change  L ${localChange(l, b)} since the base, R ${remoteChange(r, b)} since the base`);
    } catch {
      // an unhashed changed stat cannot be classified here; the rule line still says what the planner saw
    }
    if (!item) {
      this.say(`  action  none: the path was excluded from the plan`);
      return;
    }
    const mode = `${scan.data.plan.mode}${item.reason.startsWith('conflict') ? `, conflict ${scan.data.plan.conflict}` : ''}`;
    this.say(`  rule    ${item.rule ?? item.action}  ${this.paint.dim(`(sync-semantics.md, ${mode})`)}`);
    this.say(`  action  ${colourAction(item.action, item.action, this.paint)}: ${ACTION_WORDS[item.action]}`);
    this.say(`  why     ${REASON_WORDS[item.reason] ?? item.reason}`);
    if (item.keepBoth) this.say(`  keep    the local version becomes ${item.keepBoth.path}`);
    if (item.reason.startsWith('conflict')) this.say(this.paint.dim(`  options diff ${item.path} to compare; set conflict remote|local|newer|keep-both; skip ${item.path}`));
    const skip = this.skipped(item);
    if (skip && isReported(item.action)) this.say(this.paint.yellow(`  skipped by you (skip ${skip}); unskip ${skip} puts it back`));
  }

  private async diff(w: string[]): Promise<void> {
    const { positional, flags } = parseFlags(w, ['limit']);
    if (positional.length !== 1) throw new ArgError('give one PATH');
    const limitFlag = flags.get('limit');
    const limit = limitFlag === undefined ? 200 : limitFlag === 'all' ? Infinity : positiveInt(limitFlag, '--limit');
    const scan = await this.needScan();
    const found = this.find(scan, positional[0]!);
    if (!found) this.notFound(scan, positional[0]!);
    this.store ??= new S3Store({ ...this.credentials, concurrency: 2, multipartThreshold: this.settings.multipartThreshold, partSize: this.settings.partSize });
    const store = this.store;
    await this.runBusy('diff', (signal) => diffCommand({ root: this.settings.root, state: found.state, store, signal, paint: this.paint, say: this.say, limit }));
  }

  private conflicts(): void {
    const items = this.pending().filter((i) => i.action.startsWith('conflict') || i.reason === 'conflict-skipped');
    if (!this.scan) return void this.say('no scan yet (type scan)');
    if (items.length === 0) return void this.say('no conflicts: no path changed differently on both sides');
    this.say(`${items.length} conflict${items.length === 1 ? '' : 's'} (policy ${this.settings.conflict}; set conflict remote|local|newer|keep-both to change it):`);
    for (const i of items.slice(0, DEFAULT_ROWS)) {
      const lt = i.local ? new Date(Number(BigInt(i.local.mtimeNs) / 1_000_000n)).toISOString().slice(0, 19) : '-';
      const rt = i.remote ? new Date(i.remote.lastModified).toISOString().slice(0, 19) : '-';
      this.say(`  ${colourAction(i.action, i.action.padEnd(17), this.paint)} ${i.path}  ${this.paint.dim(`local ${formatBytes(i.local?.size ?? 0)} @ ${lt}, remote ${formatBytes(i.remote?.size ?? 0)} @ ${rt}`)}`);
    }
    if (items.length > DEFAULT_ROWS) this.say(`  … and ${items.length - DEFAULT_ROWS} more (plan --action conflict --limit all)`);
  }

  private showLog(w: string[]): void {
    if (w.length > 1) throw new ArgError('at most one number');
    const n = w[0] === undefined ? 20 : positiveInt(w[0], 'N');
    if (this.log.length === 0) return void this.say('the log is empty');
    for (const e of this.log.slice(-n)) {
      const line = `${e.at.toISOString().slice(11, 19)} ${e.text}`;
      this.say(e.error ? this.paint.red(line) : line);
    }
  }

  private clearLog(): void {
    const n = this.log.length;
    this.log = [];
    this.say(`log cleared (${n} entries)`);
  }

  private showStats(): void {
    const s = this.stats;
    this.say(`this session (${formatDuration(Date.now() - this.started)}): ${s.scans} scans, ${s.applies} applies (${s.stopped} stopped)`);
    this.say(`  ${s.uploaded} uploaded, ${s.downloaded} downloaded, ${s.deletedRemote} deleted remote, ${s.deletedLocal} deleted local, ${s.conflicts} conflicts, ${s.recorded} recorded`);
    this.say(`  ${s.failed ? this.paint.red(`${s.failed} failed`) : '0 failed'}, ${s.skipped} skipped; ${formatBytes(s.bytesUp)} up, ${formatBytes(s.bytesDown)} down`);
  }

  // ---- changing the plan and the settings ----------------------------------------------------

  private skip(w: string[], skip: boolean): void {
    if (w.length === 0) {
      if (!skip) throw new ArgError('give a GLOB (or all)');
      if (this.rules.length === 0) return void this.say('no skip rules (skip GLOB adds one)');
      for (const r of this.rules) this.say(`  ${r.skip ? 'skip  ' : 'unskip'} ${r.pattern}`);
      return;
    }
    if (w.length > 1) throw new ArgError('one GLOB at a time (quote a pattern with spaces)');
    const pattern = w[0]!.replace(/^\.\//, '');
    if (!skip && pattern === 'all') {
      this.rules = [];
    } else {
      // The last matching rule wins, so `unskip one/file` can reopen part of an earlier `skip one/**`.
      this.rules = this.rules.filter((r) => r.pattern !== pattern);
      if (skip || this.rules.some((r) => r.skip)) this.rules.push({ pattern, skip });
    }
    const m = pathMatcher(pattern);
    const hits = this.pending().filter((i) => pattern === 'all' || m(i.path) || m(i.key));
    const now = hits.filter((i) => Boolean(this.skipped(i)) === skip);
    if (hits.length === 0) this.say(this.paint.yellow(`${skip ? 'skip' : 'unskip'} ${pattern}: matches nothing pending now (kept for later scans)`));
    else {
      this.say(`${skip ? 'skipping' : 'back in the plan'}: ${now.length} item${now.length === 1 ? '' : 's'}${now.length ? ': ' + now.slice(0, 5).map((i) => i.path).join(', ') : ''}${now.length > 5 ? ', …' : ''}`);
    }
    this.sayPending();
  }

  private async mode(w: string[]): Promise<void> {
    const m = w[0];
    if (w.length !== 1 || !MODES.includes(m as Settings['mode'])) throw new ArgError(`mode is one of ${MODES.join(', ')}`);
    this.settings.mode = m as Settings['mode'];
    this.server?.setPrompt(this.prompt());
    this.say(`mode ${m}`);
    await this.rescan(false);
  }

  private async set(w: string[]): Promise<void> {
    if (w.length === 0) return this.status();
    if (w.length !== 2) throw new ArgError('set KEY VALUE');
    const [key, value] = w as [string, string];
    const onOff = (): boolean => {
      if (['on', 'true', 'yes', '1'].includes(value)) return true;
      if (['off', 'false', 'no', '0'].includes(value)) return false;
      throw new ArgError(`${key} is on or off`);
    };
    let replan = false;
    switch (key) {
      case 'conflict':
        if (!CONFLICT_POLICIES.includes(value as Settings['conflict'])) throw new ArgError(`conflict is one of ${CONFLICT_POLICIES.join(', ')}`);
        this.settings.conflict = value as Settings['conflict'];
        replan = true;
        break;
      case 'dry-run':
        this.settings.dryRun = onOff();
        break;
      case 'delete':
        this.settings.delete = onOff();
        replan = true;
        break;
      case 'force':
        this.settings.force = onOff();
        replan = true;
        break;
      case 'trash':
        this.settings.trash = onOff();
        break;
      case 'max-delete':
        try {
          parseMaxDelete(value);
        } catch {
          throw new ArgError('max-delete is a count or a percentage like 50%');
        }
        this.settings.maxDelete = value;
        replan = true;
        break;
      case 'concurrency': {
        const n = positiveInt(value, 'concurrency');
        if (n > 256) throw new ArgError('concurrency is at most 256');
        this.settings.concurrency = n;
        break;
      }
      case 'mode':
        return this.mode([value]);
      default:
        throw new ArgError(`no setting "${ellipsize(key, 30)}" (conflict, dry-run, delete, force, max-delete, concurrency, trash, mode)`);
    }
    this.server?.setPrompt(this.prompt());
    this.say(`${key} ${value}`);
    if (replan) await this.rescan(false);
  }

  // ---- applying ------------------------------------------------------------------------------

  private async apply(w: string[]): Promise<void> {
    if (w.length > 1) throw new ArgError('one GLOB at most');
    const scan = await this.needScan();
    const match = w[0] ? pathMatcher(w[0]) : () => true;
    const items = scan.data.plan.items.filter((i) => !(isReported(i.action) && this.skipped(i)) && (match(i.path) || match(i.key)));
    const work = items.filter((i) => isReported(i.action) && i.action !== 'skip');
    // Touched files (same bytes, new stat) and paths gone on both sides move nothing, but until an
    // apply records them every scan reads and hashes those files again.
    const bookkeeping = items.filter((i) => i.action === 'refresh' || i.action === 'forget').length;
    if (work.length === 0 && (bookkeeping === 0 || this.settings.dryRun)) {
      this.say(w[0] ? `nothing to apply matches ${w[0]}` : 'nothing to apply');
      return;
    }
    const planData: PlanFile = { ...scan.data, plan: { ...scan.data.plan, items } };
    const actions = new Map(items.map((i) => [i.path, i.action]));
    const view = new LiveView(this.io.stdout, this.tty, () => this.columns(), this.paint, this.say, (p) => actions.get(p));
    const events = this.eventsFor(view);
    let runId = '';
    events.on((e) => {
      if (e.event === 'start') runId = e.runId;
    });
    const log = new RunLog(() => [path.join(profilePaths(this.settings.manifestDir, this.settings.profile).logs, `${runId}.ndjson`)], this.redact);
    events.on(log.listener);
    if (work.length === 0) this.say(`nothing to transfer; recording ${bookkeeping} unchanged path${bookkeeping === 1 ? '' : 's'} in the manifest`);
    else this.say(`applying ${work.length} item${work.length === 1 ? '' : 's'}${this.settings.dryRun ? ' (dry run: nothing changes)' : ''}; ${this.paint.dim('stop or Ctrl+C stops cleanly')}`);
    this.stats.applies++;
    let stopped = false;
    try {
      const res = await this.runBusy('apply', (signal) => run({ command: 'apply', planData, settings: this.settings, credentials: this.credentials, events, signal }), view);
      view.finish();
      const line = summaryLine(res.summary);
      this.say(res.summary.failed ? this.paint.red(line) : this.paint.green(line));
      if (res.summary.failed) this.say(this.paint.dim('log shows the failures'));
    } catch (err) {
      view.finish();
      if (!(err instanceof InterruptedError)) {
        this.error(oneLine(err) + (err instanceof SafetyError && /stale plan/.test(oneLine(err)) ? ' (type scan, then apply)' : ''));
        if (!(err instanceof SafetyError)) this.scan = undefined;
        return;
      }
      stopped = true;
      this.stats.stopped++;
      this.say(this.paint.yellow('stopped: what finished is recorded; nothing is half-written'));
    } finally {
      log.close();
    }
    if (this.settings.dryRun) return;
    // The manifest moved on, so the old plan is stale: rescan so `apply` resumes from here.
    if (this.io.signal.aborted) return;
    await this.rescan(false);
    if (stopped && this.pending().some((i) => !this.skipped(i))) this.say('type apply to resume');
  }

  // ---- trash ---------------------------------------------------------------------------------

  private async trash(w: string[]): Promise<void> {
    if (w.length > 1) throw new ArgError('one GLOB at most');
    const dir = profilePaths(this.settings.manifestDir, this.settings.profile).trash;
    const all = await listTrash(dir, this.settings.mappings.map((m) => m.local));
    this.trashCache = [...new Set(all.map((e) => e.path))];
    const match = w[0] ? pathMatcher(w[0]) : () => true;
    const entries = all.filter((e) => match(e.path));
    if (entries.length === 0) return void this.say(w[0] ? `nothing in the trash matches ${w[0]}` : 'the trash is empty');
    const runs = new Map<string, typeof entries>();
    for (const e of entries) runs.set(e.runId, [...(runs.get(e.runId) ?? []), e]);
    let shown = 0;
    for (const [runId, list] of [...runs].reverse()) {
      this.say(`${this.paint.bold(runId)}: ${list.length} file${list.length === 1 ? '' : 's'}, ${formatBytes(list.reduce((n, e) => n + e.size, 0))}`);
      for (const e of list.slice(0, 10)) {
        if (shown++ >= 50) break;
        this.say(`  ${e.path}  ${this.paint.dim(formatBytes(e.size) + (e.remote ? ' (the remote version, kept when the local one won a conflict)' : ''))}`);
      }
      if (list.length > 10) this.say(`  … and ${list.length - 10} more (trash GLOB narrows)`);
      if (shown >= 50) {
        this.say('… more runs not shown (trash GLOB narrows)');
        break;
      }
    }
    this.say(this.paint.dim('restore PATH puts the newest copy back (--run RUN_ID for an older one)'));
  }

  private async restore(w: string[]): Promise<void> {
    const { positional, flags } = parseFlags(w, ['run']);
    if (positional.length !== 1) throw new ArgError('give one PATH');
    const paths = profilePaths(this.settings.manifestDir, this.settings.profile);
    const r = await restoreFromTrash({ root: this.settings.root, profileDir: paths.dir, trashDir: paths.trash, rel: positional[0]!, runId: flags.get('run'), mappedFolders: this.settings.mappings.map((m) => m.local), dryRun: this.settings.dryRun });
    const others = r.others.length ? this.paint.dim(` (also in runs ${r.others.join(', ')})`) : '';
    if (r.dryRun) {
      this.say(`dry run: would restore ${r.remote ? 'the remote version of ' : ''}${r.rel} from run ${r.runId}${r.displaced ? ', moving the file now there to the trash first' : ''}${others}; nothing changed (set dry-run off to restore)`);
      return;
    }
    if (r.displaced) this.say(this.paint.yellow(`the file that was at ${r.rel} went to the trash first: ${path.relative(this.settings.root, r.displaced)}`));
    this.say(`restored ${r.remote ? 'the remote version of ' : ''}${r.rel} from run ${r.runId}${others}`);
    this.remember(`restored ${r.rel} from run ${r.runId}`);
    this.say(this.paint.dim('type scan to see what the next apply does with it'));
  }

  // ---- completion ------------------------------------------------------------------------------

  complete(line: string): [string[], string] {
    try {
      const { words, raw, quote } = completionWords(line);
      const last = words[words.length - 1] ?? '';
      if (words.length <= 1) {
        const names = [...Object.keys(this.commands), ...Object.keys(this.aliases).filter((a) => a !== '?')].sort();
        return [names.filter((n) => n.startsWith(last)), last];
      }
      const cmd = this.lookup(words[0]!)?.[0] ?? '';
      const values = (list: readonly string[]): [string[], string] => [list.filter((v) => v.startsWith(last)), last];
      if (cmd === 'mode' && words.length === 2) return values(MODES);
      if (cmd === 'set' && words.length === 2) return values(['conflict', 'dry-run', 'delete', 'force', 'max-delete', 'concurrency', 'trash', 'mode']);
      if (cmd === 'set' && words.length === 3) {
        const k = words[1];
        return values(k === 'conflict' ? CONFLICT_POLICIES : k === 'mode' ? MODES : ['on', 'off']);
      }
      if (cmd === 'help' && words.length === 2) return values(Object.keys(this.commands));
      if (last.startsWith('--')) {
        const f: Record<string, string[]> = { plan: ['--action', '--sort', '--limit'], diff: ['--limit'], restore: ['--run'] };
        return values(f[cmd] ?? []);
      }
      const prev = words[words.length - 2];
      if (prev === '--sort') return values(['path', 'size', 'action', 'reason']);
      if (prev === '--action') return values(ACTION_ORDER.filter((a) => isReported(a)));
      const source =
        cmd === 'restore' ? this.trashCache
        : cmd === 'unskip' ? this.rules.map((r) => r.pattern).concat(this.pending().filter((i) => this.skipped(i)).map((i) => i.path))
        : ['explain', 'diff', 'skip', 'apply', 'plan', 'trash'].includes(cmd) ? (cmd === 'explain' || cmd === 'diff' ? [...(this.scan?.all.keys() ?? [])] : this.pending().map((i) => i.path))
        : [];
      // Names with spaces or quotes come back quoted, as the command parser reads them; a folder
      // stays open so that Tab can go on into it.
      const quoted = segments(source, last).map((c) => {
        const q = quote ?? (/[\s"']/.test(c) ? (c.includes('"') ? "'" : '"') : undefined);
        return q === undefined ? c : q + c + (c.endsWith('/') ? '' : q);
      });
      return [quoted, raw];
    } catch {
      return [[], line];
    }
  }
}

/**
 * The words of a line being typed, as `tokenize` reads them but tolerant of an open quote; `raw`
 * is the last word as typed (quotes included), which the completion replaces.
 */
export function completionWords(line: string): { words: string[]; raw: string; quote?: string } {
  const words: string[] = [];
  let cur = '';
  let start = 0;
  let quote: string | undefined;
  let open = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      if (!open) start = i;
      quote = ch;
      open = true;
    } else if (/\s/.test(ch)) {
      if (open) words.push(cur);
      cur = '';
      open = false;
    } else {
      if (!open) start = i;
      cur += ch;
      open = true;
    }
  }
  if (!open) start = line.length;
  words.push(cur);
  const raw = line.slice(start);
  return quote ? { words, raw, quote } : { words, raw };
}

/** Completes one folder level at a time, so a big plan offers a handful of names, not thousands. */
function segments(paths: Iterable<string>, prefix: string): string[] {
  const out = new Set<string>();
  for (const p of paths) {
    if (!p.startsWith(prefix)) continue;
    const slash = p.indexOf('/', prefix.length);
    out.add(slash < 0 ? p : p.slice(0, slash + 1));
  }
  return [...out].sort();
}

function label(group: string): string {
  return group === 'skipped' ? 'skipped (you)' : group;
}

function colourAction(action: string, text: string, paint: Paint): string {
  if (action.startsWith('delete')) return paint.red(text);
  if (action.startsWith('conflict')) return paint.yellow(text);
  if (action === 'skip' || action === 'skipped') return paint.dim(text);
  if (action === 'upload' || action === 'download') return paint.green(text);
  return text;
}

function countsLine(items: { action: Action | string; bytes: number }[], paint: Paint): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i.action, (counts.get(i.action) ?? 0) + 1);
  const order = (a: string): number => (a === 'skipped' ? 99 : ACTION_ORDER.indexOf(a as Action));
  return [...counts]
    .sort((a, b) => order(a[0]) - order(b[0]))
    .map(([a, n]) => colourAction(a, `${n} ${label(a)}`, paint))
    .join(', ');
}

/** The `repl` command: resolves with the process exit code when the session ends. */
export async function replCommand(settings: Settings, credentials: Credentials, io: CliIO, secrets: string[] = []): Promise<number> {
  return (await new Session(settings, credentials, io, secrets).start()).closed;
}

/** p2 before p10, as a person sorts. */
function natural(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
