// linux.devices for linuxParameters.devices: the instance's device node, as runc creates it
// in the container, and the devices-cgroup rule that lets the container use it with the
// permissions the definition asked for (read → r, write → w, mknod → m).
import { statSync } from 'node:fs';
import type { DeviceSpec } from '../protocol.js';
import { ContainerSpecError } from './errors.js';

export interface DeviceNode { type: 'c' | 'b'; major: number; minor: number; fileMode: number; uid: number; gid: number }

/** Stats a device node of the instance (what the agent itself sees at hostPath). */
export function statDevice(hostPath: string): DeviceNode {
  let st;
  try { st = statSync(hostPath); } catch (e) {
    throw new ContainerSpecError(`linuxParameters.devices hostPath '${hostPath}' does not exist on this instance (${(e as NodeJS.ErrnoException).code}).`);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new ContainerSpecError(`linuxParameters.devices hostPath '${hostPath}' is not a device node.`);
  // glibc's major()/minor() for the low 32 bits, which hold every device number in use.
  const rdev = st.rdev;
  return {
    type: st.isCharacterDevice() ? 'c' : 'b',
    major: (rdev >>> 8) & 0xfff,
    minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00),
    fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
  };
}

export function deviceAccess(permissions: DeviceSpec['permissions']): string {
  return [permissions.includes('read') ? 'r' : '', permissions.includes('write') ? 'w' : '', permissions.includes('mknod') ? 'm' : ''].join('');
}
