// Resolving a container's `user` ("name", "uid", "name:group", "uid:gid"...) against the
// image's own /etc/passwd and /etc/group, with the semantics of Docker's (runc's)
// GetExecUser: a numeric uid needs no entry, a name must exist, the primary gid defaults to
// the passwd entry's (or 0), supplementary groups come from /etc/group membership when no
// group is given, and HOME comes from the passwd entry.
import { ContainerSpecError } from './errors.js';

export interface PasswdEntry { name: string; uid: number; gid: number; home: string }
export interface GroupEntry { name: string; gid: number; members: string[] }

const isNumeric = (s: string) => /^\d+$/.test(s);

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !isNumeric(f[2]!) || !isNumeric(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !isNumeric(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

export interface ResolvedUser { uid: number; gid: number; additionalGids: number[]; home: string }

const MAX_ID = 2 ** 31 - 1;

/** `spec` empty → root. `passwd`/`group` are the file contents from the rootfs ('' if absent). */
export function resolveUser(container: string, spec: string | undefined, passwdText: string, groupText: string): ResolvedUser {
  const [userPart = '', groupPart = ''] = (spec ?? '').trim().split(':', 2);
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (userPart === '') {
    const root = passwd.find((p) => p.uid === 0);
    if (root) ({ gid, home, name } = { gid: root.gid, home: root.home, name: root.name });
  } else {
    const entry = isNumeric(userPart) ? passwd.find((p) => p.uid === Number(userPart)) : passwd.find((p) => p.name === userPart);
    if (entry) {
      ({ uid, gid, home, name } = { uid: entry.uid, gid: entry.gid, home: entry.home, name: entry.name });
    } else if (isNumeric(userPart)) {
      uid = Number(userPart);
    } else {
      throw new ContainerSpecError(`Container '${container}': unable to find user ${userPart}: no matching entries in the image's /etc/passwd. Use a numeric uid[:gid] or a user the image defines.`);
    }
  }
  let additionalGids: number[] = [];
  if (groupPart !== '') {
    if (isNumeric(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((e) => e.name === groupPart);
      if (!g) throw new ContainerSpecError(`Container '${container}': unable to find group ${groupPart}: no matching entries in the image's /etc/group.`);
      gid = g.gid;
    }
  } else if (name) {
    additionalGids = groups.filter((g) => g.members.includes(name!) && g.gid !== gid).map((g) => g.gid);
  }
  if (uid > MAX_ID || gid > MAX_ID) throw new ContainerSpecError(`Container '${container}': user '${spec}' is out of range.`);
  return { uid, gid, additionalGids: [...new Set(additionalGids)], home };
}
