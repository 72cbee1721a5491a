/**
 * The engine's view of assurance: the vocabulary itself lives in assurance/levels.ts, a leaf module
 * the factors import too.
 */
export * from '../assurance/levels.js';
