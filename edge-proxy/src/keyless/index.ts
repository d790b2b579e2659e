export { KeyOperationError } from './key-operations';
export type { KeyOperations, SignResult, KeyDescription, MasterSecretResult, RsaMasterSecretInput, TicketKeys } from './key-operations';
export type { KeyServiceTarget } from './target';
export { KeyServiceClient, DEFAULT_MAX_IN_FLIGHT, DEFAULT_TIMEOUT_MS } from './key-service-client';
export type { KeyServiceClientOptions } from './key-service-client';
export { LambdaInvokeTarget, LambdaKeyClient, mapLambdaError } from './lambda-key-client';
export type { LambdaInvokeTargetOptions, LambdaKeyClientOptions } from './lambda-key-client';
export { schemeMatchesKey, toVerificationKey, verifyTls12ServerKeyExchange, verifyTls13CertificateVerify, verifyTlsSignature } from './verify';
export type { CertificateKeyInput } from './verify';
