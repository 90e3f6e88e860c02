/**
 * Which suite fits the device under a folder: hdd only when it really spins. The kernel's
 * `rotational` flag alone is not enough: virtio, Xen and Hyper-V disks of virtual machines, and
 * QEMU's or VMware's emulated SCSI disks, report 1 whatever the host stores them on (usually
 * flash), and the hdd suite's single reader and strace would then measure the wrong machine.
 * Best effort and synchronous; every probe that fails counts as "does not spin".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { devToMajorMinor, isRotational } from '../disk/fsinfo.js';

/** The suite for a target, and why (for the report's first lines). */
export interface DeviceGuess {
  readonly suite: 'ssd' | 'hdd';
  readonly reason: string;
}

/** Parts of a block device's sysfs path that mark a paravirtual disk. */
const VIRTUAL_BUS = /\/(virtio|xen|vbd-|vmbus)/;
/** Vendor or model strings of emulated disks (QEMU, VMware, VirtualBox, Hyper-V). */
const VIRTUAL_MODEL = /qemu|vmware|vbox|virtual|msft/i;

/** Pick the suite for the device holding `target` (an existing folder). */
export function guessSuite(target: string): DeviceGuess {
  const spins = isRotational(target);
  if (spins !== true) {
    return { suite: 'ssd', reason: spins === false ? 'the device does not spin' : 'the device is not a disk' };
  }
  const virt = virtualDevice(target);
  if (virt !== undefined) {
    return { suite: 'ssd', reason: `the device says it spins, but it is ${virt}: its storage is the host's` };
  }
  return { suite: 'hdd', reason: 'the device spins' };
}

/** The paravirtual bus in a block device's sysfs path ("a virtio disk"), or undefined. Pure. */
export function virtualBus(sysPath: string): string | undefined {
  const bus = VIRTUAL_BUS.exec(sysPath)?.[1];
  if (bus === undefined) return undefined;
  return bus === 'vmbus' ? 'a Hyper-V disk' : bus === 'virtio' ? 'a virtio disk' : 'a Xen disk';
}

/** How the block device under `target` is virtual ("a virtio disk"), or undefined. */
export function virtualDevice(target: string): string | undefined {
  let sys: string;
  try {
    sys = fs.realpathSync(`/sys/dev/block/${devToMajorMinor(fs.statSync(target, { bigint: true }).dev)}`);
  } catch {
    return undefined;
  }
  const bus = virtualBus(sys);
  if (bus !== undefined) return bus;
  // A partition's device folder is its parent's.
  for (const dir of [sys, path.dirname(sys)]) {
    for (const file of ['vendor', 'model']) {
      let text: string;
      try {
        text = fs.readFileSync(path.join(dir, 'device', file), 'utf8').trim();
      } catch {
        continue;
      }
      if (VIRTUAL_MODEL.test(text)) return `an emulated disk (${text})`;
    }
  }
  return undefined;
}
