/**
 * Instances the spec digest gives byte vectors for, built once from its values and shared by
 * the codec tests.
 */
import { N } from '../../src/lwm2m/node.js';
import { V } from '../../src/lwm2m/value.js';
import { hex } from './arbitraries.js';

/** The example Device instance /3/0 of formats.md §3.5(a), §5.3 and §7 (Core spec values). */
export const SPEC_DEVICE_0 = N.instance(0, [
  N.resource(0, V.string('Open Mobile Alliance')),
  N.resource(1, V.string('Lightweight M2M Client')),
  N.resource(2, V.string('345000123')),
  N.resource(3, V.string('1.0')),
  N.multi(6, [[0, V.integer(1)], [1, V.integer(5)]]),
  N.multi(7, [[0, V.integer(3800)], [1, V.integer(5000)]]),
  N.multi(8, [[0, V.integer(125)], [1, V.integer(900)]]),
  N.resource(9, V.integer(100)),
  N.resource(10, V.integer(15)),
  N.multi(11, [[0, V.integer(0)]]),
  N.resource(13, V.time(1367491215)),
  N.resource(14, V.string('+02:00')),
  N.resource(16, V.string('U')),
]);

/** The PSK Security instance /0/1 of the worked Bootstrap-Write, formats.md §3.5(d), §5.3, §6. */
export const PSK_SECURITY_0_1 = N.instance(1, [
  N.resource(0, V.string('coaps://lwm2m.example.com:5684')),
  N.resource(1, V.boolean(false)),
  N.resource(2, V.integer(0)),
  N.resource(3, V.opaque(new TextEncoder().encode('urn:imei:490154203237518'))),
  N.resource(4, V.opaque(new Uint8Array(0))),
  N.resource(5, V.opaque(Uint8Array.from({ length: 16 }, (_, i) => i))),
  N.resource(10, V.integer(101)),
]);

/** Its Server instance /1/0, formats.md §3.5(e): SSID 101, lifetime 86400, storing, binding U. */
export const PSK_SERVER_1_0 = N.instance(0, [N.resource(0, V.integer(101)), N.resource(1, V.integer(86400)), N.resource(6, V.boolean(true)), N.resource(7, V.string('U'))]);

/** formats.md 3.5(d): PSK_SECURITY_0_1 as 90 bytes of resource TLVs (no instance wrapper, as Leshan sends it). */
export const PSK_SECURITY_0_1_TLV = hex(`C8 00 1E 63 6F 61 70 73 3A 2F 2F 6C 77 6D 32 6D 2E 65 78 61 6D 70 6C 65 2E 63 6F 6D 3A 35 36 38 34
  C1 01 00  C1 02 00
  C8 03 18 75 72 6E 3A 69 6D 65 69 3A 34 39 30 31 35 34 32 30 33 32 33 37 35 31 38
  C0 04
  C8 05 10 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F
  C1 0A 65`);

/** formats.md 3.5(e) without the 08 00 0F wrapper: ssid 101, lifetime 86400 (4 bytes), storing, "U". */
export const PSK_SERVER_1_0_TLV = hex('C1 00 65  C4 01 00 01 51 80  C1 06 01  C1 07 55');
