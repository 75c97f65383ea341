/**
 * The throttle on Dawn's Node polling loop: JavaScript callbacks of setImmediate are untouched,
 * native callbacks (the binding's) run at once for the first polls of a wait and then go through
 * a 1 ms timer.
 */
import { expect, test } from 'vitest';
import { throttleNativePolling } from '../src/backends/webgpu/polling.js';

test('native callbacks slow down after the first polls of a wait; JavaScript ones never do', async () => {
  expect(throttleNativePolling()).toBe(true);
  expect(throttleNativePolling()).toBe(true); // installs once
  const native = (() => {}).bind(null); // a bound function prints as native code
  await new Promise((resolve) => setTimeout(resolve, 10)); // any earlier wait has ended
  const kinds: string[] = [];
  for (let i = 0; i < 20; i++) kinds.push(setImmediate(native).constructor.name);
  expect(kinds.slice(0, 16).every((k) => k === 'Immediate')).toBe(true);
  expect(kinds.slice(16).every((k) => k === 'Timeout')).toBe(true);
  for (let i = 0; i < 20; i++) expect(setImmediate(() => {}).constructor.name).toBe('Immediate');
  // After a pause, a new wait starts fast again.
  await new Promise((resolve) => setTimeout(resolve, 10));
  expect(setImmediate(native).constructor.name).toBe('Immediate');
  // The promisified form still works.
  const { promisify } = await import('node:util');
  await expect(promisify(setImmediate)('value')).resolves.toBe('value');
});
