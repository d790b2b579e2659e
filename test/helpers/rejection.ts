import { KeyOperationError } from '../../edge-proxy/src/tls/key-operations';

/** The error a promise rejects with; fails the test when it resolves instead. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

/** The code of the KeyOperationError a key operation rejects with; fails the test on any other outcome. */
export async function keyOperationCode(p: Promise<unknown>): Promise<string> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(KeyOperationError);
  return (e as KeyOperationError).code;
}
