// A stand-in agent for attack tests, run as its own process (so a test can start it inside
// an instance's network namespace with nsenter). Modes, each printing one JSON line:
//   hello URL CA_FILE|- INSTANCE_ID CREDENTIAL [MESSAGES_FILE]
//     connects (wss: trusting only CA_FILE, or anything with '-'), sends a hello with the
//     credential, reports the first answer; after a welcome it sends the messages in
//     MESSAGES_FILE (a JSON array) and reports what comes back within 2 s.
//   flood URL CONNECTIONS FRAME_BYTES SECONDS
//     keeps CONNECTIONS unauthenticated connections open, each sending a FRAME_BYTES message
//     in 1 MiB fragments it never finishes (reconnecting when dropped) for SECONDS; reports
//     how many opened and failed.
//   raw URL TEXT...
//     opens one unauthenticated connection per TEXT, sends TEXT as its first message and
//     reports how each connection ended.
// Without arguments it does nothing (the test runner may load it).
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const [mode, ...args] = process.argv.slice(2);
const print = (o: unknown) => { process.stdout.write(JSON.stringify(o) + '\n'); };

function open(url: string, caFile: string | undefined): WebSocket {
  const tls = url.startsWith('wss:') ? (caFile && caFile !== '-' ? { ca: readFileSync(caFile, 'utf8') } : { rejectUnauthorized: false }) : {};
  return new WebSocket(url, { handshakeTimeout: 5_000, perMessageDeflate: false, ...tls });
}

async function hello(url: string, caFile: string, instanceId: string, credential: string, messagesFile?: string): Promise<void> {
  const ws = open(url, caFile);
  const out: { opened: boolean; error?: string; reply?: unknown; closeCode?: number; after: unknown[] } = { opened: false, after: [] };
  await new Promise<void>((done) => {
    const timer = setTimeout(() => { ws.terminate(); done(); }, 10_000);
    ws.on('open', () => {
      out.opened = true;
      ws.send(JSON.stringify({ type: 'hello', instanceId, credential, agentVersion: '0.1.0' }));
    });
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type: string };
      if (out.reply === undefined) {
        out.reply = m;
        if (m.type === 'welcome' && messagesFile) {
          for (const x of JSON.parse(readFileSync(messagesFile, 'utf8')) as unknown[]) ws.send(JSON.stringify(x));
          setTimeout(() => { clearTimeout(timer); ws.close(); done(); }, 2_000);
        } else if (m.type === 'welcome') { clearTimeout(timer); ws.close(); done(); }
        return;
      }
      if (m.type !== 'desired') out.after.push(m);
    });
    ws.on('error', (e) => { out.error = e.message; });
    ws.on('close', (code) => { out.closeCode = code; clearTimeout(timer); done(); });
  });
  print(out);
}

async function flood(url: string, connections: number, frameBytes: number, seconds: number): Promise<void> {
  const fragment = Buffer.alloc(Math.min(frameBytes, 1024 * 1024), 0x61);
  const end = Date.now() + seconds * 1000;
  const stats = { opened: 0, failed: 0, fragmentsSent: 0 };
  const one = async (): Promise<void> => {
    while (Date.now() < end) {
      await new Promise<void>((done) => {
        const ws = open(url, '-');
        const stop = setTimeout(() => ws.terminate(), Math.max(0, end - Date.now()));
        ws.on('open', () => {
          stats.opened++;
          // One big message in 1 MiB fragments, never finished: the server holds what it got
          // for as long as it keeps the connection.
          let sent = 0;
          const pump = () => {
            if (ws.readyState !== ws.OPEN || sent + fragment.length >= frameBytes) return;
            ws.send(fragment, { binary: true, fin: false });
            sent += fragment.length;
            stats.fragmentsSent++;
            setTimeout(pump, 10);
          };
          pump();
        });
        ws.on('error', () => { stats.failed++; });
        ws.on('close', () => { clearTimeout(stop); done(); });
      });
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await Promise.all(Array.from({ length: connections }, one));
  print(stats);
}

async function raw(url: string, texts: string[]): Promise<void> {
  const out: { text: string; opened: boolean; closeCode?: number }[] = [];
  for (const text of texts) {
    const r: { text: string; opened: boolean; closeCode?: number } = { text, opened: false };
    await new Promise<void>((done) => {
      const ws = open(url, '-');
      const timer = setTimeout(() => { ws.terminate(); done(); }, 5_000);
      ws.on('open', () => { r.opened = true; ws.send(text); });
      ws.on('error', () => undefined);
      ws.on('close', (code) => { r.closeCode = code; clearTimeout(timer); done(); });
    });
    out.push(r);
  }
  print(out);
}

if (mode === 'raw') await raw(args[0]!, args.slice(1));
else if (mode === 'hello') await hello(args[0]!, args[1]!, args[2]!, args[3]!, args[4]);
else if (mode === 'flood') await flood(args[0]!, Number(args[1]), Number(args[2]), Number(args[3]));
