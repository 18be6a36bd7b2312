// Test images: the reproducible busybox images of src/tools/busybox-image.ts, plus a probe
// program for seccomp tests.
export { buildImage, pushImage, buildAndPush, PASSWD, GROUP, type ImageOptions, type BuiltImage } from '../../src/tools/busybox-image.js';

/**
 * A static x86-64 Linux program (a hand-assembled ELF, no compiler needed) that makes one raw
 * syscall `nr` with all-zero arguments and exits with the errno it got (0 on success): the
 * way to see what seccomp does to a syscall busybox has no applet for. ENOSYS (38) = blocked
 * by the profile's default action; EPERM (1) = blocked by an ERRNO rule; EFAULT/EINVAL = the
 * kernel ran it and rejected the null arguments.
 */
export function syscallProbe(nr: number): Buffer {
  const base = 0x400000;
  const code = Buffer.from([
    0xb8, nr & 0xff, (nr >> 8) & 0xff, 0, 0, // mov eax, nr
    0x31, 0xff, 0x31, 0xf6, 0x31, 0xd2, // xor edi,edi; xor esi,esi; xor edx,edx
    0x45, 0x31, 0xd2, 0x45, 0x31, 0xc0, 0x45, 0x31, 0xc9, // xor r10d,r10d; xor r8d,r8d; xor r9d,r9d
    0x0f, 0x05, // syscall
    0xf7, 0xd8, // neg eax  (-errno → errno)
    0x85, 0xc0, 0x79, 0x02, 0x31, 0xc0, // test eax,eax; jns +2; xor eax,eax (success → 0)
    0x89, 0xc7, // mov edi, eax
    0xb8, 60, 0, 0, 0, // mov eax, 60 (exit)
    0x0f, 0x05, // syscall
  ]);
  const headerSize = 64 + 56;
  const elf = Buffer.alloc(headerSize + code.length);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf, 0); // ELF64, little-endian, SysV
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BigInt(base + headerSize), 24); // entry
  elf.writeBigUInt64LE(64n, 32); // program headers right after the ELF header
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeUInt32LE(5, 68); // R+X
  elf.writeBigUInt64LE(0n, 72);
  elf.writeBigUInt64LE(BigInt(base), 80);
  elf.writeBigUInt64LE(BigInt(base), 88);
  elf.writeBigUInt64LE(BigInt(elf.length), 96);
  elf.writeBigUInt64LE(BigInt(elf.length), 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  code.copy(elf, headerSize);
  return elf;
}

/** Syscall numbers on x86-64. */
export const SYS = { add_key: 248, bpf: 321, getpid: 39 } as const;
