import { nextStep, type StepFacts } from '../../../src/interactions/flow.js';

const facts = (over: Partial<StepFacts> = {}): StepFacts => ({
  satisfied: false,
  notice: false,
  hasSecondFactor: false,
  stepUp: false,
  resetPending: false,
  ...over,
});

describe('nextStep', () => {
  test('a satisfied sign-in is done, or shows its notice first', () => {
    expect(nextStep(facts({ satisfied: true, hasSecondFactor: true }))).toBe('done');
    expect(nextStep(facts({ satisfied: true, notice: true }))).toBe('notice');
    expect(nextStep(facts({ satisfied: true, stepUp: true }))).toBe('done');
  });

  test('an account with a second factor proves it: never enrolment', () => {
    expect(nextStep(facts({ hasSecondFactor: true }))).toBe('second-factor');
    expect(nextStep(facts({ hasSecondFactor: true, resetPending: true }))).toBe('second-factor');
  });

  test('step-up never enrols, even for an account without a second factor', () => {
    expect(nextStep(facts({ stepUp: true }))).toBe('second-factor');
    expect(nextStep(facts({ stepUp: true, hasSecondFactor: true }))).toBe('second-factor');
  });

  test('only an account without any second factor enrols; after an administrator reset, only through the link', () => {
    expect(nextStep(facts())).toBe('enrol');
    expect(nextStep(facts({ resetPending: true }))).toBe('reset-link');
  });

  test('enrolment is reachable only unsatisfied, without a second factor, outside step-up and without a pending reset', () => {
    const bools = [false, true];
    const enrolling: StepFacts[] = [];
    for (const satisfied of bools)
      for (const notice of bools)
        for (const hasSecondFactor of bools)
          for (const stepUp of bools)
            for (const resetPending of bools) {
              const f = { satisfied, notice, hasSecondFactor, stepUp, resetPending };
              if (nextStep(f) === 'enrol') enrolling.push(f);
            }
    expect(enrolling).toEqual([
      { satisfied: false, notice: false, hasSecondFactor: false, stepUp: false, resetPending: false },
      { satisfied: false, notice: true, hasSecondFactor: false, stepUp: false, resetPending: false },
    ]);
  });
});
