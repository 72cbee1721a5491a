/**
 * One description of a device for the account portal's session list and the new-device notice:
 * browser and system when both are known, else what is known, else the start of the user agent.
 */
import { describeDevice } from '../../../src/notices/device.js';

const UA = {
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0',
  edgeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  operaMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0',
  safariIphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  chromeAndroid: 'Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
};

test.each([
  [UA.firefoxLinux, 'Firefox, Linux'],
  [UA.edgeWindows, 'Edge, Windows'],
  [UA.operaMac, 'Opera, macOS'],
  [UA.safariIphone, 'Safari, iOS'],
  [UA.chromeAndroid, 'Chrome, Android'],
])('%s is "%s"', (ua, expected) => {
  expect(describeDevice(ua)).toBe(expected);
});

test('an unknown agent is shown by its first 80 characters; none at all by the placeholder the caller gives', () => {
  expect(describeDevice(`curl/8.0 ${'x'.repeat(100)}`)).toBe(`curl/8.0 ${'x'.repeat(71)}`);
  expect(describeDevice(null)).toBe('—');
  expect(describeDevice('', '?')).toBe('?');
});
