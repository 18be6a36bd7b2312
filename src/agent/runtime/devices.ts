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
  const node: DeviceNode = {
    type: st.isCharacterDevice() ? 'c' : 'b',
    major: (rdev >>> 8) & 0xfff,
    minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00),
    fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
  };
  const why = forbiddenDevice(node);
  if (why) throw new ContainerSpecError(`linuxParameters.devices hostPath '${hostPath}' is ${why}: never passed to a task, whatever the opt-in.`);
  return node;
}

/**
 * Devices no opt-in hands over. A local instance sees the machine's /dev: its memory
 * (mem, kmem, port), the kernel log (kmsg) and the loop devices that back every task's
 * storage and the volume area would give a task the machine or its neighbours' files.
 */
export function forbiddenDevice(d: Pick<DeviceNode, 'type' | 'major' | 'minor'>): string | undefined {
  if (d.type === 'b' && d.major === 7) return 'a loop device (it backs tasks\' storage)';
  if (d.type === 'c' && d.major === 1 && [1, 2, 4, 11].includes(d.minor)) return 'the machine\'s memory, I/O ports or kernel log';
  return undefined;
}

export function deviceAccess(permissions: DeviceSpec['permissions']): string {
  return [permissions.includes('read') ? 'r' : '', permissions.includes('write') ? 'w' : '', permissions.includes('mknod') ? 'm' : ''].join('');
}
