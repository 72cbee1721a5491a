import { isValidJmbg } from '../../../src/assurance/jmbg.js';

describe('JMBG checksum and date', () => {
  test.each(['0101990710008', '1705990712341', '3112999800126'])('accepts %s', (v) => {
    expect(isValidJmbg(v)).toBe(true);
  });
  test.each([
    ['0101990710007', 'wrong check digit'],
    ['3102990710006', 'no 31 February'],
    ['010199071000', 'twelve digits'],
    ['01019907100081', 'fourteen digits'],
    ['01019907100O8', 'a letter'],
    ['', 'empty'],
  ])('refuses %s (%s)', (v) => {
    expect(isValidJmbg(v)).toBe(false);
  });
});
