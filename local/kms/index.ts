/** Local KMS-compatible endpoint (AWS JSON 1.1, `TrentService`) for the no-AWS development stack. */
export { startLocalKms, type LocalKms, type LocalKmsOptions, type LocalKmsStats } from './server';
export { KmsError } from './errors';
