// The error catalog lives in the bottom floor (domain/errors.ts), so that every layer can
// raise API errors without importing the API layer; this keeps the old import path.
export * from '../domain/errors.js';
