export { startLocalLambda } from './server';
export type { FunctionStats, LocalLambda, LocalLambdaContext, LocalLambdaHandler, LocalLambdaOptions } from './server';
